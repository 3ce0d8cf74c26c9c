"""At the centre: check-in (its daily QR code), calling and serving, and the waits and handling
times measured against their targets."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from chalicelib.domain.bookings.booking import Booking, BookingStatus, _require_status
from chalicelib.domain.bookings.centres import Channel, Complexity, at, today_of
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.errors import RuleViolation


def check_in(booking: Booking, now: datetime, rules: BookingRules) -> Booking:
    if booking.channel is not Channel.COUNTER:
        raise RuleViolation("只有窗口预约需要到场签到", code="not_a_counter_booking")
    _require_status(booking, {BookingStatus.BOOKED}, "check_in_not_allowed", "签到")
    opens = booking.starts_at - timedelta(minutes=rules.check_in_opens_minutes_before)
    closes = booking.starts_at + timedelta(minutes=rules.no_show_grace_minutes)
    if today_of(now) != booking.day or now < opens:
        raise RuleViolation(
            f"签到时间为预约开始前{rules.check_in_opens_minutes_before}分钟起",
            code="check_in_too_early",
        )
    if now > closes:
        raise RuleViolation("已超过签到时间，预约将记为爽约", code="check_in_closed")
    return replace(booking, status=BookingStatus.CHECKED_IN, checked_in_at=now)


def call(booking: Booking, now: datetime, staff_id: str) -> Booking:
    _require_status(booking, {BookingStatus.CHECKED_IN}, "call_not_allowed", "叫号")
    since = booking.waiting_since or now
    waited = max(0, int((now - since).total_seconds()))
    return replace(
        booking,
        status=BookingStatus.CALLED,
        called_at=now,
        called_by=staff_id,
        wait_seconds=waited,
    )


def serve(booking: Booking, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.CALLED}, "serve_not_allowed", "办结")
    called = booking.called_at or now
    return replace(
        booking,
        status=BookingStatus.SERVED,
        served_at=now,
        handling_seconds=max(0, int((now - called).total_seconds())),
    )


@dataclass(frozen=True)
class WaitSample:
    """One call at a centre: how long the person waited, and (once served) the handling."""

    booking_id: str
    complexity: Complexity
    called_at: datetime
    wait_seconds: int
    staff_id: str
    handling_seconds: int | None = None
    item_id: str | None = None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def average_wait_minutes(
    samples: Iterable[WaitSample], complexity: Complexity, now: datetime, rules: BookingRules
) -> float | None:
    """Rolling average wait of one complexity over the rules' window (default 60 minutes)."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    return _mean(
        [
            s.wait_seconds / 60
            for s in samples
            if s.complexity is complexity and since <= s.called_at <= now
        ]
    )


def average_handling_minutes(
    samples: Iterable[WaitSample], item_id: str, now: datetime, rules: BookingRules
) -> float | None:
    """Rolling average handling (call → served) of one item over the rules' window."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    return _mean(
        [
            s.handling_seconds / 60
            for s in samples
            if s.item_id == item_id
            and s.handling_seconds is not None
            and since <= s.called_at <= now
        ]
    )


@dataclass(frozen=True)
class QueueEstimate:
    waiting: int
    waiting_priority: int
    counters: int
    average_wait_minutes: dict[Complexity, float | None]
    targets_minutes: dict[Complexity, int]
    average_handling_minutes: float
    estimated_wait_minutes: int

    @property
    def over_target(self) -> dict[Complexity, bool]:
        return {
            c: (avg is not None and avg > self.targets_minutes[c])
            for c, avg in self.average_wait_minutes.items()
        }


def estimate_queue(
    waiting: int,
    waiting_priority: int,
    samples: list[WaitSample],
    now: datetime,
    rules: BookingRules,
    default_handling_minutes: float,
) -> QueueEstimate:
    """A newcomer waits for everyone ahead, shared among the counters that called recently."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    recent = [s for s in samples if since <= s.called_at <= now]
    counters = max(1, len({s.staff_id for s in recent}))
    handled = [s.handling_seconds / 60 for s in recent if s.handling_seconds is not None]
    handling = _mean(handled) or default_handling_minutes
    return QueueEstimate(
        waiting=waiting,
        waiting_priority=waiting_priority,
        counters=counters,
        average_wait_minutes={c: average_wait_minutes(samples, c, now, rules) for c in Complexity},
        targets_minutes={c: rules.wait_target_minutes(c) for c in Complexity},
        average_handling_minutes=round(handling, 1),
        estimated_wait_minutes=math.ceil(math.ceil(waiting / counters) * handling),
    )


CHECK_IN_KIND = "check-in"


def check_in_claims(center_id: str, day: date) -> tuple[list[str], datetime]:
    """The code the centre's QR poster carries for one day; scanning it proves presence."""
    return [center_id, day.isoformat()], at(day + timedelta(days=1), time(0))
