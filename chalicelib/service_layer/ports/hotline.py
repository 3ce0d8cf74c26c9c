"""Ports of the 12345 hotline: its work orders, call transfers, and the check of its calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from chalicelib.domain.hotline import Transfer


class HotlineStore(Protocol):
    """`adapters/dynamodb/operations.py` DynamoHotlineStore."""

    def claim_order(self, order_no: str, ticket_id: str, received_at: str) -> str:
        """The ticket id the order is taken in as: `ticket_id` if this call claimed the
        order number, else the one its first arrival claimed."""
        ...

    def order_ticket(self, order_no: str) -> str | None: ...
    def record_transfer(self, transfer: Transfer) -> bool:
        """Store a transfer once per id; False when it was stored before."""
        ...

    def transfers_in_month(self, month: str) -> list[Transfer]: ...


class InboundVerifier(Protocol):
    """Checks that a call claiming to come from 12345 does (adapters/webhook.py, Standard
    Webhooks under 12345's secret); raises `Unauthenticated` when it does not."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None: ...
