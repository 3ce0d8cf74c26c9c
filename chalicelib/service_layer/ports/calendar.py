"""Ports of the calendar capability: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.calendar import WorkingCalendar, YearSchedule


@dataclass(frozen=True)
class LoadedYear:
    schedule: YearSchedule
    version: int
    loaded_at: str
    loaded_by: str


class CalendarStore(Protocol):
    """`adapters/dynamodb/calendar.py` DynamoCalendarStore."""

    def get(self, year: int) -> LoadedYear | None: ...
    def official_schedule(self, year: int) -> YearSchedule | None: ...
    def put(self, schedule: YearSchedule, by: str, now: datetime) -> int: ...
    def calendar(self) -> WorkingCalendar: ...


class RecomputeQueue(Protocol):
    """`adapters/calendar_jobs.py` SqsRecomputeQueue."""

    def send(self, job: dict[str, Any]) -> None: ...
