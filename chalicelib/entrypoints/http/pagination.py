"""Cursor pagination: opaque, signed cursors over DynamoDB's LastEvaluatedKey, a page-size cap."""

from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import Field

from chalicelib.domain.errors import InvalidInput
from chalicelib.entrypoints.http.schema import ApiModel

T = TypeVar("T")

PAGE_SIZE_CAP = 100


class PageQuery(ApiModel):
    limit: int = Field(default=20, ge=1, le=PAGE_SIZE_CAP, description="每页条数，最多100")
    cursor: str | None = Field(default=None, max_length=2048, description="上一页返回的游标")


class Page(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


# A cursor outlives a page view, not a day: the listing it continues may have moved on.
CURSOR_TTL = timedelta(days=1)
CURSOR_KIND = "cursor"


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    from chalicelib.bootstrap import container

    c = container()
    return c.signer.sign(CURSOR_KIND, last_key, c.clock.now() + CURSOR_TTL)


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    from chalicelib.adapters.signing import TokenRefused
    from chalicelib.bootstrap import container

    c = container()
    try:
        return c.signer.verify(CURSOR_KIND, cursor, c.clock.now())
    except TokenRefused as exc:
        raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor") from exc
