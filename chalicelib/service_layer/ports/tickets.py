"""Ports of the tickets capability: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.tickets.limits import TicketLimitsVersion
from chalicelib.domain.tickets.routing import RuleSet
from chalicelib.domain.tickets.ticket import Ticket, TicketState
from chalicelib.service_layer.ports import Page


class TicketStore(Protocol):
    """`adapters/dynamodb/tickets.py` DynamoTicketStore."""

    def get(self, ticket_id: str) -> Ticket | None: ...
    def create(self, ticket: Ticket) -> Ticket | None: ...
    def save(self, ticket: Ticket) -> Ticket: ...
    def by_owner(
        self, owner_key: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Ticket]: ...
    def by_department(
        self,
        department_id: str,
        state: TicketState | None,
        due_before: datetime | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> Page[Ticket]: ...
    def open_for_owner_item(
        self, owner_key: str, service_item_id: str
    ) -> list[tuple[str, str, str | None, TicketState]]:
        """(ticket id, owner key, service item, state) of the newest open tickets."""
        ...

    def queue(
        self, queue_key: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Ticket]: ...
    def current_rule_set(self) -> RuleSet: ...
    def put_rule_set(self, rules: RuleSet) -> bool: ...
    def limits_versions(self) -> list[TicketLimitsVersion]: ...
    def put_limits_version(self, version: TicketLimitsVersion) -> bool: ...
    def count(
        self,
        ticket_id: str,
        seq: int,
        department_id: str,
        month: str,
        amounts: dict[str, int],
        now: datetime,
    ) -> bool: ...
    def month_counters(self, month: str) -> dict[str, dict[str, int]]: ...
