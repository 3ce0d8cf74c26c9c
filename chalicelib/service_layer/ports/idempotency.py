"""Ports of the idempotency capability: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from chalicelib.domain.idempotency import KeyRecord, StoredResponse


class IdempotencyStore(Protocol):
    """`adapters/dynamodb/idempotency.py` DynamoIdempotencyStore."""

    def claim(
        self,
        record_id: str,
        fingerprint: str,
        now: datetime,
        lock_until: datetime,
        expires: datetime,
    ) -> KeyRecord | None: ...
    def complete(
        self, record_id: str, fingerprint: str, response: StoredResponse, expires: datetime
    ) -> None: ...
    def release(self, record_id: str) -> None: ...
