"""Ports of the 跨省通办 capability: the signed channel to the partner regions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.domain.notifications import SendResult


class CrossRegionGateway(Protocol):
    """`adapters/crossregion.py` SignedCrossRegionGateway."""

    def send(self, region: str, message_id: str, payload: Mapping[str, Any]) -> SendResult: ...

    def verify(self, region: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raises Unauthenticated unless the region signed this body, recently."""
        ...
