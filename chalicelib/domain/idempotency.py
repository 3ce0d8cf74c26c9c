"""Idempotency-Key rules: what a second request with a key already seen gets.

The key is scoped to its caller; the record holds a fingerprint of the first request (method,
route, path parameters and body) and, once answered, the response it got.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import Conflict

IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body, "headers": self.headers}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredResponse:
        return cls(int(data["status"]), str(data["body"]), dict(data.get("headers") or {}))


@dataclass(frozen=True)
class KeyRecord:
    status: str
    fingerprint: str
    response: StoredResponse | None = None


def fingerprint(method: str, route: str, path_params: dict[str, str], body: Any) -> str:
    text = json.dumps(
        [method, route, path_params, body], sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def replay(record: KeyRecord, request_fingerprint: str) -> StoredResponse:
    """The stored answer for a repeated request, or the refusal of one that cannot be replayed."""
    if record.fingerprint != request_fingerprint:
        raise Conflict(
            "该 Idempotency-Key 已用于内容不同的另一项请求，请换用新的 Idempotency-Key",
            code="idempotency_key_reused",
        )
    if record.status != COMPLETED or record.response is None:
        raise Conflict(
            "相同 Idempotency-Key 的请求正在处理中，请稍后重试", code="idempotency_in_progress"
        )
    return record.response
