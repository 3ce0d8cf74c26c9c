"""A booking: its seat, its guard per person, item and day, cancelling and moving it, and its
signed cancel link."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.bookings.centres import Channel, Complexity, Slot, at, hhmm, service_id
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import RuleViolation


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CALLED = "called"
    SERVED = "served"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


STATUS_LABELS = {
    BookingStatus.BOOKED: "已预约",
    BookingStatus.CHECKED_IN: "已签到",
    BookingStatus.CALLED: "已叫号",
    BookingStatus.SERVED: "已办理",
    BookingStatus.CANCELLED: "已取消",
    BookingStatus.NO_SHOW: "爽约",
}


class GuardOutcome(StrEnum):
    """What taking the one-booking-per-person-per-item-per-day guard answered."""

    TAKEN = "taken"  # newly taken by this booking
    MINE = "mine"  # this booking held it already (a retried request)
    OTHER = "other"  # another booking holds it


@dataclass(frozen=True)
class VideoRoom:
    room_id: str
    join_url: str


@dataclass(frozen=True)
class HomeAddress:
    town: str  # 街道或镇
    detail: str


@dataclass(frozen=True)
class Booking:
    booking_id: str
    user_id: str
    person_key: str  # hash of the person (ID number, else account): the per-person rules
    center_id: str
    center_name: str
    item_id: str
    item_name: str
    channel: Channel
    complexity: Complexity
    day: date
    start: time
    end: time
    seat: int
    status: BookingStatus
    created_at: datetime
    priority: bool = False
    revision: int = 0  # +1 per reschedule: reminders and no-show jobs belong to one revision
    video: VideoRoom | None = None
    address: HomeAddress | None = None
    staff_id: str | None = None
    checked_in_at: datetime | None = None
    called_at: datetime | None = None
    called_by: str | None = None
    served_at: datetime | None = None
    cancelled_at: datetime | None = None
    no_show_at: datetime | None = None
    wait_seconds: int | None = None
    handling_seconds: int | None = None
    history: tuple[dict[str, Any], ...] = ()  # earlier slots, oldest first
    version: int | None = None

    @property
    def slot(self) -> Slot:
        return Slot(self.day, self.start, self.end)

    @property
    def starts_at(self) -> datetime:
        return at(self.day, self.start)

    @property
    def ends_at(self) -> datetime:
        return at(self.day, self.end)

    @property
    def service_id(self) -> str:
        return service_id(self.item_id, self.channel)

    @property
    def waiting_since(self) -> datetime | None:
        """An early arrival waits from the booked time: the centre is measured from then."""
        if self.checked_in_at is None:
            return None
        return max(self.checked_in_at, self.starts_at)


def snapshot(booking: Booking) -> dict[str, Any]:
    """What the audit trail keeps of a booking (no address, no personal data)."""
    return {
        "status": booking.status.value,
        "center_id": booking.center_id,
        "item_id": booking.item_id,
        "channel": booking.channel.value,
        "day": booking.day.isoformat(),
        "start": hhmm(booking.start),
        "seat": booking.seat,
        "revision": booking.revision,
        "staff_id": booking.staff_id,
    }


def _require_status(booking: Booking, allowed: set[BookingStatus], code: str, what: str) -> None:
    if booking.status not in allowed:
        raise RuleViolation(
            f"预约当前状态为“{STATUS_LABELS[booking.status]}”，不能{what}", code=code
        )


def check_cancellable(booking: Booking, now: datetime, rules: BookingRules) -> None:
    _require_status(booking, {BookingStatus.BOOKED}, "booking_not_cancellable", "取消或改约")
    cutoff = booking.starts_at - timedelta(minutes=rules.cancel_until_minutes_before)
    if now > cutoff:
        raise RuleViolation(
            f"开始前{_duration(rules.cancel_until_minutes_before)}内不能在线取消或改约",
            code="cancel_window_closed",
        )


def cancel(booking: Booking, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.BOOKED}, "booking_not_cancellable", "取消")
    return replace(booking, status=BookingStatus.CANCELLED, cancelled_at=now)


def move(booking: Booking, slot: Slot, seat: int, staff_id: str | None, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.BOOKED}, "booking_not_cancellable", "改约")
    earlier = {
        "day": booking.day.isoformat(),
        "start": hhmm(booking.start),
        "seat": booking.seat,
        "moved_at": now.isoformat(),
    }
    return replace(
        booking,
        day=slot.day,
        start=slot.start,
        end=slot.end,
        seat=seat,
        staff_id=staff_id,
        revision=booking.revision + 1,
        history=(*booking.history, earlier),
    )


def check_not_suspended(until: datetime | None, now: datetime) -> None:
    if until is not None and now < until:
        raise RuleViolation(
            f"因多次爽约，{until.astimezone(CHINA_TZ):%Y-%m-%d} 前暂停在线预约，"
            "可到服务中心现场办理",
            code="booking_suspended",
        )


def person_key(user_id: str, subject_id: str | None) -> str:
    """The person the per-person rules count, without keeping the ID number in a key."""
    basis = f"subject:{subject_id}" if subject_id else f"user:{user_id}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


# What a signed link or code stands for and until when; the signing itself is the platform's
# one token scheme (adapters/signing.py), with the keys kept out of the domain.
CANCEL_LINK_KIND = "booking-cancel"


def cancel_link_claims(booking: Booking) -> tuple[list[str], datetime]:
    """A cancel link names one revision of one booking (a reschedule sends a new one) and is of
    no use once the booking has started."""
    return [booking.booking_id, str(booking.revision)], booking.starts_at


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{minutes // 60}小时"
    return f"{minutes}分钟"
