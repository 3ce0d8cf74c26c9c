"""Ports of the signing capability: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol


class Signer(Protocol):
    """`adapters/signing.py` Signer."""

    @property
    def current_key_id(self) -> str: ...
    def sign(self, kind: str, data: Mapping[str, Any], expires_at: datetime) -> str: ...
    def verify(self, kind: str, token: str, now: datetime) -> dict[str, Any]: ...
    def sign_detached(self, kind: str, parts: Sequence[str], expires_at: datetime) -> str: ...
    def verify_detached(
        self, kind: str, token: str, parts: Sequence[str], now: datetime
    ) -> None: ...
