"""Calendar use cases: due dates and working-day counts for anyone, official schedules for admins.

Loading a year's official schedule stores it, audits it and enqueues the recompute job, which
moves every open deadline of that year onto the official calendar (see deadlines.recompute_year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.calendar import ScheduleSource, YearSchedule, validate_year_schedule
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Principal
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.deadlines import DeadlineDeps


def due_date(deps: DeadlineDeps, start: date, working_days: int) -> tuple[date, bool]:
    return deps.calendar().add_working_days(start, working_days)


def working_days(deps: DeadlineDeps, start: date, end: date) -> tuple[int, bool]:
    """Working days after `start` through `end`, and whether an estimated year is involved."""
    calendar = deps.calendar()
    count = calendar.working_days_between(start, end)
    first, last = sorted((start, end))
    return count, calendar.provisional_between(first, last)


def year_schedule(deps: DeadlineDeps, year: int) -> YearSchedule:
    if not 1950 <= year <= 2200:
        raise InvalidInput("年份应在1950至2200之间", code="year_out_of_range")
    return deps.calendar().schedule(year)


@dataclass(frozen=True)
class LoadedYearResult:
    schedule: YearSchedule
    version: int
    job: dict[str, Any]


def load_official_year(
    deps: DeadlineDeps,
    principal: Principal,
    year: int,
    holidays: list[date],
    makeup_workdays: list[date],
    reference: str,
) -> LoadedYearResult:
    """Store a year's official schedule (replacing any earlier one) and enqueue the recompute
    of every open deadline in that year."""
    require(principal, Action.MANAGE_CALENDAR)
    off, on = validate_year_schedule(year, holidays, makeup_workdays)
    schedule = YearSchedule(year, off, on, ScheduleSource.OFFICIAL, reference=reference)
    before = deps.calendars.get(year)
    now = deps.clock.now()
    version = deps.calendars.put(schedule, principal.user_id, now)
    deps.audit_log.append(
        AuditEntry(
            actor_id=principal.user_id,
            actor_role=principal.role.value,
            action="calendar.year_loaded",
            subject_type="calendar_year",
            subject_id=str(year),
            before=_summary(before.schedule, before.version) if before else None,
            after=_summary(schedule, version),
            correlation_id=get_correlation_id(),
            details={"reference": reference},
        )
    )
    job = {
        "job_id": f"calendar-{year}-v{version}",
        "year": year,
        "version": version,
        "requested_by": principal.user_id,
    }
    deps.recompute_queue().send(job)
    return LoadedYearResult(schedule, version, job)


def _summary(schedule: YearSchedule, version: int) -> dict[str, Any]:
    return {
        "version": version,
        "holidays": sorted(d.isoformat() for d in schedule.holidays),
        "makeup_workdays": sorted(d.isoformat() for d in schedule.makeup_workdays),
    }
