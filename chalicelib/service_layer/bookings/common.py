"""What every booking use case shares: its dependencies, the calendar they cache, audit and
notification helpers, and reading a booking the caller may act on."""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.bookings.booking import Booking, VideoRoom
from chalicelib.domain.bookings.live_help import HelpRequest
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.errors import NotFound
from chalicelib.domain.identity import Principal
from chalicelib.domain.notifications import RecipientKind
from chalicelib.observability import emit_metric
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.notify import notify

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.ports import Directory
    from chalicelib.service_layer.ports.bookings import BookingJobs, BookingStore, PreparingNotifier
    from chalicelib.service_layer.ports.calendar import CalendarStore
    from chalicelib.service_layer.ports.operations import OperationsFacts
    from chalicelib.service_layer.ports.signing import Signer


_ID_NAMESPACE = uuid.UUID("2b7c4e1a-9d3f-4a6b-8e2c-5f1a0b9c7d34")
_MAX_ID_LENGTH = 64


# Every booking request needs the working-day calendar: one per calendar store is kept this long
# (a newly loaded official year applies to bookings within a minute).
CALENDAR_CACHE_SECONDS = 60.0
_calendars: weakref.WeakKeyDictionary[Any, tuple[float, WorkingCalendar]] = (
    weakref.WeakKeyDictionary()
)
_calendars_lock = threading.Lock()


class TimeSource(Protocol):
    def now(self) -> datetime: ...


class VideoRoomProvider(Protocol):
    """The port to the video platform (local: adapters/video.py LocalVideoRooms)."""

    def create_room(
        self, room_key: str, *, title: str, starts_at: datetime, participant_id: str
    ) -> VideoRoom: ...


@dataclass
class BookingDeps:
    store: BookingStore
    jobs: BookingJobs
    calendars: CalendarStore
    directory: Directory
    notifier: PreparingNotifier
    audit_log: AuditLog
    video: VideoRoomProvider
    clock: TimeSource
    signer: Signer  # cancel links and check-in codes
    completed: Callable[[str, str], None]  # (handling type, id): the container invites a review
    links_base_url: str = "https://haoban.qingpu.example"
    metric: Callable[..., None] = emit_metric
    items: Any = None  # the service guide (`latest_item(code)`): services name its items
    # The month's facts for the operations report (help pick-up and outcome, window handling).
    facts: OperationsFacts | None = None
    # (agent, help request, reason) → the 办不成事 ticket id; the container files it.
    file_ticket: Callable[[Principal, HelpRequest, str], str] | None = None

    @classmethod
    def from_container(cls, c: Any) -> BookingDeps:
        return cls(
            store=c.booking_store,
            jobs=c.booking_jobs,
            calendars=c.calendar_store,
            directory=c.directory,
            notifier=c.notifier,
            audit_log=c.audit_log,
            video=c.video_rooms,
            clock=c.clock,
            signer=c.signer,
            completed=c.handling_completed_strict,
            items=c.application_store,
            facts=c.operations_store,
            file_ticket=c.file_help_ticket,
        )

    def calendar(self) -> WorkingCalendar:
        moment = time.monotonic()
        with _calendars_lock:
            kept = _calendars.get(self.calendars)
        if kept is not None and kept[0] > moment:
            return kept[1]
        calendar = self.calendars.calendar()
        with _calendars_lock:
            _calendars[self.calendars] = (moment + CALENDAR_CACHE_SECONDS, calendar)
        return calendar

    def rules(self) -> BookingRules:
        return self.store.get_rules()[0]


def _audit(
    deps: BookingDeps,
    actor: Principal,
    action: str,
    subject_type: str,
    subject_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    **details: Any,
) -> None:
    record_change(
        deps.audit_log,
        actor,
        action,
        subject_type,
        subject_id,
        before,
        after,
        details,
    )


def _notify(
    deps: BookingDeps,
    key: str,
    recipient_id: str,
    category: str,
    title: str,
    body: str,
    data: dict[str, Any],
    kind: RecipientKind = RecipientKind.USER,
) -> bool:
    """Ask for a notification once per key; answers whether this call created it."""
    return notify(deps.notifier, key, kind, recipient_id, category, title, body, data)


def _check_id(value: str, code: str, message: str) -> None:
    if not value or len(value) > _MAX_ID_LENGTH or not value.replace("-", "").isalnum():
        raise NotFound(message, code=code)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    last_key: dict[str, Any] | None


def _new_booking_id(principal: Principal, idempotency_key: str | None) -> str:
    """With an Idempotency-Key the id follows from caller + key, so every retry of a request
    (even one that crashed half-way) works on the same seat, guard and booking items."""
    if idempotency_key:
        return uuid.uuid5(_ID_NAMESPACE, f"{principal.user_id}\n{idempotency_key}").hex
    return uuid.uuid4().hex


def _visible_booking(
    deps: BookingDeps, principal: Principal, action: Action, booking_id: str
) -> Booking:
    """The booking if the caller may act on it; someone else's answers exactly like a missing
    one."""
    require(principal, action)
    _check_id(booking_id, "booking_not_found", "预约不存在")
    booking = deps.store.get_booking(booking_id)
    if booking is None or not can(principal, action, Resource(owner_user_id=booking.user_id)):
        raise NotFound("预约不存在", code="booking_not_found")
    return booking


def _signed(deps: BookingDeps, kind: str, token: str, parts: list[str], now: datetime) -> bool:
    from chalicelib.domain.errors import TokenRefused

    try:
        deps.signer.verify_detached(kind, token, parts, now)
    except TokenRefused:
        return False
    return True
