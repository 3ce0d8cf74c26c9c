"""Readiness of answers before a policy version takes effect: the target day (a working day
before it) and the clock that runs until an article linked to the version is approved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.knowledge.common import (
    READINESS_LEAD_DAYS,
    iso_or_none,
    moment_or_none,
)

# ---- readiness before a policy takes effect -------------------------------------------------


class ReadinessState(StrEnum):
    PENDING = "pending"  # no approved article yet, deadline not passed
    READY = "ready"  # an approved (or published) article links the version
    MISSED = "missed"  # the deadline passed without one (the clock keeps escalating)
    WITHDRAWN = "withdrawn"  # the version no longer takes effect


@dataclass(frozen=True)
class Readiness:
    policy_id: str
    version: int
    title: str
    department_id: str
    effective_from: date
    target_date: date  # the last working day before effective_from
    state: ReadinessState = ReadinessState.PENDING
    clock_id: str | None = None
    article_id: str | None = None
    ready_at: datetime | None = None


def readiness_target(calendar: WorkingCalendar, effective_from: date) -> date:
    """The working day `READINESS_LEAD_DAYS` before the effective date: an answer approved by the
    end of that day is in the knowledge base one working day before the policy takes effect."""
    day = effective_from
    for _ in range(READINESS_LEAD_DAYS):
        day -= timedelta(days=1)
        while not calendar.is_working_day(day):
            day -= timedelta(days=1)
    return day


def readiness_clock_plan(calendar: WorkingCalendar, today: date, target: date) -> tuple[date, int]:
    """(start day, limit in working days) of a clock due at the end of `target`. The deadline
    engine counts forward from a start, so the limit is the working days from today to the
    target; when fewer than one is left the clock starts on the working day before the target
    with a limit of 1 (so it is due, or already breached, at the right moment)."""
    limit = calendar.working_days_between(today, target)
    if limit >= 1:
        return today, limit
    start = target - timedelta(days=1)
    while not calendar.is_working_day(start):
        start -= timedelta(days=1)
    return start, 1


def readiness_to_dict(r: Readiness) -> dict[str, Any]:
    return {
        "policy_id": r.policy_id,
        "version": r.version,
        "title": r.title,
        "department_id": r.department_id,
        "effective_from": r.effective_from.isoformat(),
        "target_date": r.target_date.isoformat(),
        "state": r.state.value,
        "clock_id": r.clock_id,
        "article_id": r.article_id,
        "ready_at": iso_or_none(r.ready_at),
    }


def readiness_from_dict(d: dict[str, Any]) -> Readiness:
    return Readiness(
        policy_id=d["policy_id"],
        version=int(d["version"]),
        title=d["title"],
        department_id=d["department_id"],
        effective_from=date.fromisoformat(d["effective_from"]),
        target_date=date.fromisoformat(d["target_date"]),
        state=ReadinessState(d["state"]),
        clock_id=d.get("clock_id"),
        article_id=d.get("article_id"),
        ready_at=moment_or_none(d.get("ready_at")),
    )
