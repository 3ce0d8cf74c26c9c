"""Ports of the deadlines capability: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.clocks import (
    Clock,
    Ladder,
)
from chalicelib.service_layer.ports import Page


class ClockStore(Protocol):
    """`adapters/dynamodb/clocks.py` DynamoClockStore."""

    @property
    def shards(self) -> int: ...  # deadline years are split this many ways

    def get(self, clock_id: str) -> Clock | None: ...
    def create(self, clock: Clock, now: datetime) -> Clock | None: ...
    def save(self, clock: Clock, now: datetime) -> Clock: ...
    def put_many(self, clocks: Iterable[Clock], now: datetime) -> None: ...
    def by_subject(
        self, subject_type: str, subject_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Clock]: ...
    def open_due_in_year(
        self,
        year: int,
        shard: int,
        started_before: datetime | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> Page[Clock]: ...


class EscalationStore(Protocol):
    """`adapters/dynamodb/clocks.py` DynamoEscalationStore."""

    def claim_step(
        self, clock: Clock, step: str, now: datetime, details: dict[str, Any]
    ) -> str: ...
    def finish_step(self, clock_id: str, step: str, now: datetime) -> None: ...
    def steps_of(self, clock_id: str) -> list[dict[str, Any]]: ...
    def steps_in_month(
        self, step: str, month: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[dict[str, Any]]: ...
    def increment(self, month: str, kind: str, department_id: str | None, name: str) -> None: ...
    def counters(self, month: str) -> list[tuple[str, str | None, str, int]]: ...
    def get_ladder(self, kind: str) -> Ladder | None: ...
    def put_ladder(self, kind: str, ladder: Ladder, by: str, now: datetime) -> None: ...
