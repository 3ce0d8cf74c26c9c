"""Ports of the operations report: the month's facts other capabilities record for it, the
stored reports, and what it reads of the capabilities' own monthly figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from chalicelib.domain.applications import KpiFacts
from chalicelib.domain.reviews import Review


class OperationsFacts(Protocol):
    """`adapters/dynamodb/operations.py` DynamoOperationsStore: one fact per (month, kind, id),
    written again with the same id to update it (help pick-up, then its outcome)."""

    def put_fact(self, month: str, kind: str, fact_id: str, data: dict[str, Any]) -> None: ...
    def facts(self, month: str, kind: str) -> list[dict[str, Any]]: ...


class OperationsStore(OperationsFacts, Protocol):
    def put_report_once(self, month: str, report: dict[str, Any]) -> bool: ...
    def get_report(self, month: str) -> dict[str, Any] | None: ...


class ApplicationFacts(Protocol):
    def facts(self, month: str) -> list[KpiFacts]: ...


class MonthReviews(Protocol):
    def reviews_in_month(self, month: str) -> Iterator[Review]: ...


class TicketCounters(Protocol):
    def month_counters(self, month: str) -> dict[str, dict[str, int]]: ...
