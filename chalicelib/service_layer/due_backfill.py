"""Backfill of the due index: clocks opened before the due-items engine existed carry their next
attention time but have no due item, so the due sweep never looks at them again (no reminder,
no escalation, never marked breached).

Open clocks are found through the clocks' sparse `open_year_index` (year of the deadline x
shard): one Query per year and shard plus its pages, never a Scan. A clock that needs attention
and has no due item gets one, filed "once" (a clock written meanwhile files its own due item in
the same transaction as itself, and that one is kept). Running it again files nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain import clocks as domain
from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.clocks import DUE_KIND, Clock
from chalicelib.domain.due import DueItem
from chalicelib.service_layer.ports import TimeSource
from chalicelib.service_layer.ports.calendar import CalendarStore
from chalicelib.service_layer.ports.deadlines import ClockStore
from chalicelib.service_layer.ports.due import DueStore

PAGE = 100
# Deadlines this many years either side of now: a clock open longer than that is not a clock
# the engine ever made (the longest limits are counted in months).
YEARS_AROUND = 3


@dataclass
class BackfillDeps:
    clocks: ClockStore
    due: DueStore
    calendars: CalendarStore
    clock: TimeSource

    @classmethod
    def from_container(cls, c: Any) -> BackfillDeps:
        return cls(clocks=c.clock_store, due=c.due_store, calendars=c.calendar_store, clock=c.clock)


@dataclass
class BackfillReport:
    examined: int = 0
    filed: int = 0
    already_filed: int = 0
    nothing_due: int = 0
    years: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "filed": self.filed,
            "already_filed": self.already_filed,
            "nothing_due": self.nothing_due,
            "years": self.years,
        }


def backfill_clock_due_items(
    deps: BackfillDeps, years: Iterable[int] | None = None, page: int = PAGE
) -> BackfillReport:
    """File the missing due item of every open clock whose deadline falls in `years` (by
    default the years around now); idempotent."""
    now = deps.clock.now()
    chosen = (
        list(years)
        if years is not None
        else list(range(now.year - YEARS_AROUND, now.year + YEARS_AROUND + 1))
    )
    report = BackfillReport(years=chosen)
    calendar: list[WorkingCalendar] = []  # read once, only if a clock needs it
    for year in chosen:
        for shard in range(deps.clocks.shards):
            key: dict[str, Any] | None = None
            while True:
                found = deps.clocks.open_due_in_year(year, shard, None, page, key)
                for clock in found.items:
                    report.examined += 1
                    _backfill(deps, clock, now, calendar, report)
                key = found.last_key
                if key is None:
                    break
    return report


def _backfill(
    deps: BackfillDeps,
    clock: Clock,
    now: datetime,
    calendar: list[WorkingCalendar],
    report: BackfillReport,
) -> None:
    attention = clock.next_attention_at if clock.in_due_index else None
    if attention is None and clock.is_open and not clock.is_paused:
        # Stored without its attention time: work it out as the clock's next write would.
        if not calendar:
            calendar.append(deps.calendars.calendar())
        attention = domain.refresh(clock, calendar[0], now).next_attention_at
    if attention is None:
        report.nothing_due += 1
        return
    if deps.due.get(DUE_KIND, clock.clock_id) is not None:
        report.already_filed += 1
        return
    deps.due.file(DueItem(DUE_KIND, clock.clock_id, attention), now, once=True)
    report.filed += 1
