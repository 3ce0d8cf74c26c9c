"""Timed booking jobs: reminders, the no-show check and the suspension it may start, help
pick-up alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.domain.bookings.booking import Booking, BookingStatus, _require_status
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.due import DueItem


class ReminderKind(StrEnum):
    DAY_BEFORE = "day_before"
    TWO_HOURS = "two_hours"


class JobKind(StrEnum):
    """Timed work the booking job runner does, each once per subject (and booking revision)."""

    REMIND_DAY_BEFORE = "remind_day_before"
    REMIND_TWO_HOURS = "remind_two_hours"
    NO_SHOW = "no_show"
    HELP_PICKUP = "help_pickup"


@dataclass(frozen=True)
class Job:
    """A timed job: due at `run_at`, done once (per subject, kind and booking revision)."""

    job_id: str
    subject_type: str  # "booking" | "help"
    subject_id: str
    kind: str
    revision: int
    run_at: datetime


def job_id_for(subject_id: str, kind: str, revision: int) -> str:
    return f"{subject_id}#{kind}#r{revision}"


REMINDER_OF_JOB = {
    JobKind.REMIND_DAY_BEFORE: ReminderKind.DAY_BEFORE,
    JobKind.REMIND_TWO_HOURS: ReminderKind.TWO_HOURS,
}


def mark_no_show(booking: Booking, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.BOOKED}, "no_show_not_applicable", "记为爽约")
    return replace(booking, status=BookingStatus.NO_SHOW, no_show_at=now)


def no_show_due(booking: Booking, rules: BookingRules) -> datetime:
    return booking.starts_at + timedelta(minutes=rules.no_show_grace_minutes)


def reminder_times(booking: Booking, now: datetime, rules: BookingRules) -> dict[JobKind, datetime]:
    """When to remind: the day before and 2 hours before; a time already past is skipped."""
    times = {
        JobKind.REMIND_DAY_BEFORE: booking.starts_at
        - timedelta(minutes=rules.remind_day_before_minutes),
        JobKind.REMIND_TWO_HOURS: booking.starts_at
        - timedelta(minutes=rules.remind_before_minutes),
    }
    return {kind: moment for kind, moment in times.items() if moment > now}


def reminder_key(kind: ReminderKind, revision: int) -> str:
    """The reminder's name in its notification key: a rescheduled booking is reminded again."""
    return kind.value if revision == 0 else f"{kind.value}-r{revision}"


def suspension_until(
    no_shows: Iterable[datetime], now: datetime, rules: BookingRules
) -> datetime | None:
    """2 no-shows within 30 days → 90 days without online booking (defaults)."""
    since = now - timedelta(days=rules.no_show_window_days)
    recent = [moment for moment in no_shows if since <= moment <= now]
    if len(recent) < rules.no_show_limit or rules.suspension_days == 0:
        return None
    return now + timedelta(days=rules.suspension_days)


def job_of(item: DueItem) -> Job:
    """The timed job a due-index item stands for."""
    return Job(
        job_id=item.subject_id,
        subject_type=item.data["subject_type"],
        subject_id=item.data["subject_id"],
        kind=item.data["kind"],
        revision=int(item.data.get("revision", 0)),
        run_at=item.due_at,
    )
