"""Cursor pagination: opaque, signed cursors over DynamoDB's LastEvaluatedKey, a page-size cap."""

import base64
import hashlib
import hmac
import json
from typing import Any, Generic, TypeVar

from pydantic import Field

from chalicelib.domain.errors import InvalidInput
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.settings import get_settings

T = TypeVar("T")

PAGE_SIZE_CAP = 100


class PageQuery(ApiModel):
    limit: int = Field(default=20, ge=1, le=PAGE_SIZE_CAP, description="每页条数，最多100")
    cursor: str | None = Field(default=None, max_length=2048, description="上一页返回的游标")


class Page(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def _key() -> bytes:
    return hashlib.sha256(get_settings().cursor_secret.encode()).digest()


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    payload = json.dumps(last_key, sort_keys=True, separators=(",", ":"), default=str).encode()
    mac = hmac.new(_key(), payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        mac, payload = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, hmac.new(_key(), payload, hashlib.sha256).digest()[:16]):
            raise ValueError("bad signature")
        value = json.loads(payload)
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return value
    except (ValueError, TypeError) as exc:
        raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor") from exc
