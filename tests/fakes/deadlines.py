"""In-memory clock, escalation and calendar stores with the semantics the deadline use cases
rely on: optimistic versions on clocks, the due index filed on write (never behind `now`), each
ladder step claimed once with a lease, and the sweep cursor."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ, ScheduleSource, WorkingCalendar, YearSchedule
from chalicelib.domain.clocks import Clock, Ladder, StepClaim
from chalicelib.domain.errors import Conflict
from chalicelib.service_layer.ports import Page
from chalicelib.service_layer.ports.calendar import CalendarStore, LoadedYear, RecomputeQueue
from chalicelib.service_layer.ports.deadlines import ClockStore, EscalationStore


def _page(items: list[Any], limit: int, start_key: dict[str, Any] | None) -> Page[Any]:
    offset = int(start_key["offset"]) if start_key else 0
    end = offset + limit
    return Page(items[offset:end], {"offset": end} if end < len(items) else None)


@dataclass(frozen=True)
class _Stored:
    clock: Clock


@dataclass
class InMemoryClockStore:
    shards: int = 4
    _clocks: dict[str, _Stored] = field(default_factory=dict)

    def shard_of(self, clock_id: str) -> int:
        return zlib.crc32(clock_id.encode()) % self.shards

    def _store(self, clock: Clock, now: datetime, version: int) -> Clock:
        stored = replace(clock, version=version)
        self._clocks[clock.clock_id] = _Stored(stored)
        return stored

    def get(self, clock_id: str) -> Clock | None:
        found = self._clocks.get(clock_id)
        return found.clock if found else None

    def create(self, clock: Clock, now: datetime) -> Clock | None:
        if clock.clock_id in self._clocks:
            return None
        return self._store(clock, now, 1)

    def save(self, clock: Clock, now: datetime) -> Clock:
        current = self._clocks.get(clock.clock_id)
        if current is not None and current.clock.version != clock.version:
            raise Conflict("计时已被他人更新，请重试", code="clock_changed")
        return self._store(clock, now, (clock.version or 0) + 1)

    def put_many(self, clocks: Iterable[Clock], now: datetime) -> None:
        for clock in clocks:
            self._store(clock, now, (clock.version or 0) + 1)

    def by_subject(
        self, subject_type: str, subject_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Clock]:
        found = [
            s.clock
            for s in self._clocks.values()
            if (s.clock.subject_type, s.clock.subject_id) == (subject_type, subject_id)
        ]
        return _page(sorted(found, key=lambda c: c.clock_id), limit, start_key)

    def open_due_in_year(
        self,
        year: int,
        shard: int,
        started_before: datetime | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> Page[Clock]:
        found = [
            s.clock
            for s in self._clocks.values()
            if s.clock.is_open
            and s.clock.due_date is not None
            and s.clock.due_date.year == year
            and self.shard_of(s.clock.clock_id) == shard
            and (started_before is None or s.clock.started_at < started_before)
        ]
        return _page(sorted(found, key=lambda c: c.started_at), limit, start_key)


@dataclass
class InMemoryEscalationStore:
    lease: timedelta = timedelta(minutes=2)
    steps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    totals: dict[tuple[str, str, str | None, str], int] = field(default_factory=dict)
    ladders: dict[str, Ladder] = field(default_factory=dict)

    def claim_step(self, clock: Clock, step: str, now: datetime, details: dict[str, Any]) -> str:
        existing = self.steps.get((clock.clock_id, step))
        if existing is None:
            month = f"{step}#{now.astimezone(CHINA_TZ):%Y-%m}"
            self.steps[(clock.clock_id, step)] = {
                "clock_id": clock.clock_id,
                "step": step,
                "status": "started",
                "taken_at": now.isoformat(),
                "attempt_at": now,
                "finished_at": None,
                "step_month": month,
                **details,
            }
            return StepClaim.TAKEN
        if existing["status"] == "done":
            return StepClaim.DONE
        if existing["attempt_at"] > now - self.lease:
            return StepClaim.BUSY
        existing["attempt_at"] = now
        return StepClaim.TAKEN

    def finish_step(self, clock_id: str, step: str, now: datetime) -> None:
        self.steps[(clock_id, step)].update(status="done", finished_at=now.isoformat())

    def _view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in ("attempt_at", "step_month")}

    def steps_of(self, clock_id: str) -> list[dict[str, Any]]:
        found = [r for (c, _), r in sorted(self.steps.items()) if c == clock_id]
        return [self._view(r) for r in found]

    def steps_in_month(
        self, step: str, month: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[dict[str, Any]]:
        found = [self._view(r) for r in self.steps.values() if r["step_month"] == f"{step}#{month}"]
        return _page(found, limit, start_key)

    def increment(self, month: str, kind: str, department_id: str | None, name: str) -> None:
        key = (month, kind, department_id, name)
        self.totals[key] = self.totals.get(key, 0) + 1

    def counters(self, month: str) -> list[tuple[str, str | None, str, int]]:
        return [(k, d, n, total) for (m, k, d, n), total in self.totals.items() if m == month]

    def get_ladder(self, kind: str) -> Ladder | None:
        return self.ladders.get(kind)

    def put_ladder(self, kind: str, ladder: Ladder, by: str, now: datetime) -> None:
        self.ladders[kind] = ladder


@dataclass
class InMemoryCalendarStore:
    years: dict[int, LoadedYear] = field(default_factory=dict)

    def get(self, year: int) -> LoadedYear | None:
        return self.years.get(year)

    def official_schedule(self, year: int) -> YearSchedule | None:
        loaded = self.years.get(year)
        return loaded.schedule if loaded else None

    def put(self, schedule: YearSchedule, by: str, now: datetime) -> int:
        version = (self.years[schedule.year].version + 1) if schedule.year in self.years else 1
        official = replace(schedule, source=ScheduleSource.OFFICIAL)
        self.years[schedule.year] = LoadedYear(official, version, now.isoformat(), by)
        return version

    def calendar(self) -> WorkingCalendar:
        return WorkingCalendar(official=self.official_schedule)


@dataclass
class RecordingQueue:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, job: dict[str, Any]) -> None:
        self.sent.append(job)


def _checked() -> tuple[ClockStore, EscalationStore, CalendarStore, RecomputeQueue]:
    return (
        InMemoryClockStore(),
        InMemoryEscalationStore(),
        InMemoryCalendarStore(),
        RecordingQueue(),
    )
