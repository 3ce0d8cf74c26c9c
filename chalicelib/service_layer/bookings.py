"""Booking use cases: centres and slots, booking, cancelling and rescheduling, video assistance
and live help, check-in and calling at the centre, and the job runner for reminders, no-shows
and help alerts.

Capacity is never guarded by a transaction: a booking takes one seat item of its slot with one
conditional write (`take_seat`), and the one-booking-per-person-per-item-per-day rule is a
conditional write of a guard item. A reschedule takes the new seat before it lets go of the old
one, so a failed reschedule leaves the original booking as it was.

    from chalicelib.bootstrap import container
    from chalicelib.service_layer import bookings

    deps = bookings.BookingDeps.from_container(container())
    result = bookings.book(deps, principal, bookings.BookRequest(...), idempotency_key="...")
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain import bookings as domain
from chalicelib.domain.bookings import (
    CHANNEL_LABELS,
    COMPLEXITY_LABELS,
    REMINDER_OF_JOB,
    Booking,
    BookingRules,
    BookingStatus,
    Center,
    Channel,
    Complexity,
    GuardOutcome,
    HelpRequest,
    HelpStatus,
    HomeAddress,
    Job,
    JobKind,
    QueueEstimate,
    ReminderKind,
    Service,
    Slot,
    VideoRoom,
    WaitSample,
    hhmm,
    job_id_for,
    today_of,
)
from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.clocks import StepClaim
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal, Role
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import emit_metric, get_correlation_id
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.notify import notify

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.ports import Directory
    from chalicelib.service_layer.ports.bookings import (
        BookingJobs,
        BookingStore,
        PreparingNotifier,
    )
    from chalicelib.service_layer.ports.calendar import CalendarStore
    from chalicelib.service_layer.ports.operations import OperationsFacts
    from chalicelib.service_layer.ports.signing import Signer


# A guard whose booking was never written is taken over after this long (its request crashed).
GUARD_GRACE = timedelta(minutes=2)
DEFAULT_HANDLING_MINUTES = 15.0
_ID_NAMESPACE = uuid.UUID("2b7c4e1a-9d3f-4a6b-8e2c-5f1a0b9c7d34")
_MAX_ID_LENGTH = 64
_BOOKING_JOBS = (JobKind.REMIND_DAY_BEFORE, JobKind.REMIND_TWO_HOURS, JobKind.NO_SHOW)
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


# ---- centres, services and slots ------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Any]
    last_key: dict[str, Any] | None


def list_centers(
    deps: BookingDeps, kind: str | None, limit: int, start_key: dict[str, Any] | None
) -> Page:
    page = deps.store.list_centers(kind, limit, start_key)
    return Page(page.items, page.last_key)


# Centres are a short catalogue (district, sub-centres, communities): a few pages at most.
_MANAGED_PAGE = 100
_MANAGED_PAGES = 10


def centres_managed_by(deps: BookingDeps, principal: Principal) -> list[str]:
    """The centres whose manager (值班长) `principal` is: window staff only, a bounded walk of
    the catalogue."""
    if principal.role is not Role.WINDOW_STAFF:
        return []
    managed: list[str] = []
    start_key: dict[str, Any] | None = None
    for _ in range(_MANAGED_PAGES):
        page = deps.store.list_centers(None, _MANAGED_PAGE, start_key)
        managed += [c.center_id for c in page.items if c.manager_id == principal.user_id]
        start_key = page.last_key
        if start_key is None:
            break
    return managed


def get_center(deps: BookingDeps, center_id: str) -> Center:
    _check_id(center_id, "center_not_found", "服务中心不存在")
    center = deps.store.get_center(center_id)
    if center is None:
        raise NotFound("服务中心不存在", code="centre_not_found")
    return center


def center_detail(deps: BookingDeps, center_id: str) -> tuple[Center, list[Service]]:
    center = get_center(deps, center_id)
    return center, deps.store.services_of(center_id)


def _center_and_service(
    deps: BookingDeps, center_id: str, item_id: str, channel: Channel
) -> tuple[Center, Service]:
    center = get_center(deps, center_id)
    service = deps.store.get_service(center_id, domain.service_id(item_id, channel))
    if service is None:
        _refuse_unknown_item(deps, item_id)
        raise NotFound(
            f"{center.name}不提供该事项的{CHANNEL_LABELS[Channel(channel)]}预约",
            code="service_not_offered",
        )
    return center, service


def _refuse_unknown_item(deps: BookingDeps, code: str) -> None:
    """An item the guide does not know is a bad request, not a service the centre lacks."""
    if deps.items is not None and deps.items.latest_item(code) is None:
        raise InvalidInput(
            f"办事事项 {code} 不存在，请填写办事指南中的事项编码", code="item_not_found"
        )


@dataclass(frozen=True)
class SlotAvailability:
    slot: Slot
    seats: int
    free_general: int
    free_held: int  # held back for elderly and disabled people
    held_released: bool  # held-back seats are open to everybody now

    def free_for(self, priority: bool) -> int:
        if priority or self.held_released:
            return self.free_general + self.free_held
        return self.free_general


@dataclass(frozen=True)
class DaySlots:
    center: Center
    day: date
    open: bool  # a working day
    bookable: bool  # inside the booking window
    services: list[tuple[Service, list[SlotAvailability]]] = field(default_factory=list)


def day_slots(
    deps: BookingDeps, center_id: str, item_id: str, day: date, channel: Channel | None
) -> DaySlots:
    """Every slot of the item at the centre on `day`, with the seats still free."""
    center = get_center(deps, center_id)
    services = [
        s
        for s in deps.store.services_of(center_id)
        if s.item_id == item_id and (channel is None or s.channel is Channel(channel))
    ]
    if not services:
        _refuse_unknown_item(deps, item_id)
        raise NotFound(f"{center.name}不提供该事项的预约", code="service_not_offered")
    now, rules, calendar = deps.clock.now(), deps.rules(), deps.calendar()
    is_open = calendar.is_working_day(day)
    try:
        domain.check_booking_day(rules, calendar, now, day)
        bookable = True
    except RuleViolation:
        bookable = False
    result = DaySlots(center, day, is_open, bookable)
    if not is_open:
        return result
    for service in services:
        taken = deps.store.seats_taken(center_id, service.service_id, day)
        result.services.append(
            (
                service,
                [
                    _availability(service, s, taken, now, rules)
                    for s in domain.slots_of(center, service, day)
                ],
            )
        )
    return result


def _availability(
    service: Service,
    slot: Slot,
    taken: dict[str, dict[int, str]],
    now: datetime,
    rules: BookingRules,
) -> SlotAvailability:
    held_by = taken.get(slot.label, {})
    general = sum(1 for n in range(service.general_seats) if n not in held_by)
    held = sum(1 for n in range(service.general_seats, service.seats) if n not in held_by)
    return SlotAvailability(
        slot, service.seats, general, held, domain.priority_released(slot, now, rules)
    )


# ---- booking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookRequest:
    center_id: str
    item_id: str
    channel: Channel
    day: date
    start: str
    town: str | None = None  # home visits: the 街道 or 镇 of the address
    address_detail: str | None = None


@dataclass(frozen=True)
class BookingResult:
    booking: Booking
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def book(
    deps: BookingDeps,
    principal: Principal,
    request: BookRequest,
    idempotency_key: str | None = None,
) -> BookingResult:
    require(principal, Action.BOOK)
    now = deps.clock.now()
    center, service = _center_and_service(deps, request.center_id, request.item_id, request.channel)
    slot = domain.find_slot(center, service, request.day, request.start)
    # A rerun of a keyed request whose first run died half-way works on the same items (the
    # HTTP layer answers every other repeat from the stored response before this runs).
    booking_id = _new_booking_id(principal, idempotency_key)

    rules = deps.rules()
    domain.check_booking_day(rules, deps.calendar(), now, slot.day)
    person = domain.person_key(principal.user_id, principal.subject_id)
    # Who the person is (elderly, disabled) decides the seats only where seats are held back
    # or the channel requires it; elsewhere it only sets the booking's priority.
    tags = _tags(deps, principal) if _tags_decide_seats(service) else None
    priority = domain.is_priority(tags or (), rules)
    # Reads first: a request for a slot seen full writes nothing at all.
    free = _free_seats(deps, service, slot, booking_id, priority, now, rules)
    domain.check_home_visit(center, service, request.town, tags or (), rules)
    if tags is None:
        priority = domain.is_priority(_tags(deps, principal), rules)
    video = _video_room(deps, principal, service, slot, booking_id)

    # The suspension check, the person's guard, the seat, the booking, its reminders and its
    # confirmation are one transaction: a seat is never held without its booking, so one
    # person's concurrent taps never keep a seat from others, and a crash leaves nothing half
    # done. A refused part decides what to try next.
    tried: set[int] = set()
    replaced_guard = False
    for _ in range(len(free) + _GUARD_SETTLE_ATTEMPTS):
        seat = free[0]
        tried.add(seat)
        booking = _new_booking(
            principal, booking_id, person, center, service, slot, seat, priority, request, now
        )
        booking = replace(booking, video=video)
        effects = _booking_effects(deps, booking, center, rules, now)
        created, refused = deps.store.create_booking_atomically(
            booking, now, guard=rules.one_per_item_per_day, effects=effects
        )
        if created is not None:
            break
        if "suspended" in refused:
            domain.check_not_suspended(deps.store.suspended_until(person), now)
        if "booking" in refused:
            return BookingResult(_settle_duplicate(deps, booking), created=False)
        if "guard" in refused:
            replaced_guard = _settle_guard(deps, person, service.item_id, slot.day, booking_id, now)
        if "seat" in refused:
            free = [
                n
                for n in _refreshed_seats(
                    deps, service, slot, booking_id, priority, now, rules, replaced_guard, person
                )
                if n not in tried
            ]
            if not free:
                _give_back_guard(
                    deps, replaced_guard, person, service.item_id, slot.day, booking_id
                )
                raise Conflict("该时段已约满，请选择其他时段", code="slot_full")
    else:
        _give_back_guard(deps, replaced_guard, person, service.item_id, slot.day, booking_id)
        raise Conflict("预约正在处理中，请稍后查询", code="booking_in_progress")
    _audit(
        deps, principal, "booking.created", "booking", booking_id, None, domain.snapshot(created)
    )
    deps.metric("BookingCreated", 1, "Count", channel=created.channel.value)
    return BookingResult(created, created=True)


# Tries beyond one per seat: settling a guard left by a crashed request, a transaction conflict.
_GUARD_SETTLE_ATTEMPTS = 3


def _video_room(
    deps: BookingDeps, principal: Principal, service: Service, slot: Slot, booking_id: str
) -> VideoRoom | None:
    """Created before the booking is written (the booking carries its link); keyed by the
    booking, so a retry or another seat gets the same room."""
    if service.channel is not Channel.VIDEO:
        return None
    return deps.video.create_room(
        f"booking:{booking_id}",
        title=f"{service.item_name}视频帮办",
        starts_at=slot.starts_at,
        participant_id=principal.user_id,
    )


def _settle_guard(
    deps: BookingDeps, person: str, item_id: str, day: date, booking_id: str, now: datetime
) -> bool:
    """The person's guard is held by another booking: refused if that booking exists; answered
    in progress while it may still be written; taken over (True) once its request is older than
    the grace (guards written before bookings were one transaction)."""
    held = deps.store.guard_holder(person, item_id, day)
    if held is None or held[0] == booking_id:
        return False  # given back meanwhile, or ours: the next try takes it
    holder, taken_at = held
    if deps.store.get_booking(holder) is not None:
        raise RuleViolation(
            f"您已预约 {day.isoformat()} 的同一事项，每人每天每个事项只能预约一次",
            code="one_booking_per_item_per_day",
        )
    if taken_at is not None and now - taken_at < GUARD_GRACE:
        raise Conflict("您的另一次预约请求正在处理中，请稍后查询", code="booking_in_progress")
    return deps.store.replace_guard(person, item_id, day, holder, booking_id, now)


def _give_back_guard(
    deps: BookingDeps, replaced: bool, person: str, item_id: str, day: date, booking_id: str
) -> None:
    if replaced:
        deps.store.release_guard(person, item_id, day, booking_id)


def _refreshed_seats(
    deps: BookingDeps,
    service: Service,
    slot: Slot,
    booking_id: str,
    priority: bool,
    now: datetime,
    rules: BookingRules,
    replaced_guard: bool,
    person: str,
) -> list[int]:
    try:
        return _free_seats(deps, service, slot, booking_id, priority, now, rules)
    except Conflict:
        _give_back_guard(deps, replaced_guard, person, service.item_id, slot.day, booking_id)
        raise


def _new_booking_id(principal: Principal, idempotency_key: str | None) -> str:
    """With an Idempotency-Key the id follows from caller + key, so every retry of a request
    (even one that crashed half-way) works on the same seat, guard and booking items."""
    if idempotency_key:
        return uuid.uuid5(_ID_NAMESPACE, f"{principal.user_id}\n{idempotency_key}").hex
    return uuid.uuid4().hex


def _tags_decide_seats(service: Service) -> bool:
    return service.priority_seats > 0 or service.channel is Channel.HOME_VISIT


def _tags(deps: BookingDeps, principal: Principal) -> frozenset[str]:
    profile = deps.directory.get_user(principal.user_id)
    return profile.tags if profile is not None else frozenset()


def _take_guard(
    deps: BookingDeps,
    rules: BookingRules,
    person: str,
    item_id: str,
    day: date,
    booking_id: str,
    now: datetime,
) -> str | None:
    if not rules.one_per_item_per_day:
        return None
    outcome = deps.store.take_guard(person, item_id, day, booking_id, now)
    if outcome == GuardOutcome.OTHER:
        outcome = _settle_guard_of_missing_booking(deps, person, item_id, day, booking_id, now)
    if outcome == GuardOutcome.OTHER:
        raise RuleViolation(
            f"您已预约 {day.isoformat()} 的同一事项，每人每天每个事项只能预约一次",
            code="one_booking_per_item_per_day",
        )
    return outcome


def _settle_guard_of_missing_booking(
    deps: BookingDeps, person: str, item_id: str, day: date, booking_id: str, now: datetime
) -> str:
    """The guard is held by a booking that does not exist (yet): a concurrent tap of the same
    person still deciding (answered booking_in_progress), or one that crashed before it wrote
    its booking or gave the guard back (taken over once it is older than the grace)."""
    held = deps.store.guard_holder(person, item_id, day)
    if held is None:
        return deps.store.take_guard(person, item_id, day, booking_id, now)
    holder, taken_at = held
    if holder == booking_id:
        return GuardOutcome.MINE
    if deps.store.get_booking(holder) is not None:
        return GuardOutcome.OTHER
    if taken_at is not None and now - taken_at < GUARD_GRACE:
        raise Conflict("您的另一次预约请求正在处理中，请稍后查询", code="booking_in_progress")
    if deps.store.replace_guard(person, item_id, day, holder, booking_id, now):
        return GuardOutcome.TAKEN
    return GuardOutcome.OTHER


def _release_guard_if_new(
    deps: BookingDeps, outcome: str | None, person: str, item_id: str, day: date, booking_id: str
) -> None:
    if outcome == GuardOutcome.TAKEN:
        deps.store.release_guard(person, item_id, day, booking_id)


def _free_seats(
    deps: BookingDeps,
    service: Service,
    slot: Slot,
    booking_id: str,
    priority: bool,
    now: datetime,
    rules: BookingRules,
) -> list[int]:
    """The seats this booking may try, in order, leaving out those seen taken; a seat this
    booking holds already (a retried request) alone. None left: the slot is full for them."""
    taken = deps.store.slot_seats_taken(service.center_id, service.service_id, slot.day, slot.label)
    mine = sorted(n for n, holder in taken.items() if holder == booking_id)
    if mine:
        return mine[:1]
    order = domain.seat_order(service, slot, booking_id, priority, now, rules)
    free = [seat for seat in order if seat not in taken]
    if not free:
        raise Conflict("该时段已约满，请选择其他时段", code="slot_full")
    return free


def _take_seat(
    deps: BookingDeps,
    service: Service,
    slot: Slot,
    booking_id: str,
    free: list[int],
    refresh: Callable[[], list[int]],
    now: datetime,
) -> int:
    """One conditional write per seat tried. A lost seat means others are writing too: the slot
    is read again before the next try (that read answers slot_full when nothing is left)."""
    tried: set[int] = set()
    while free:
        seat = free[0]
        tried.add(seat)
        if deps.store.take_seat(
            service.center_id, service.service_id, slot.day, slot.label, seat, booking_id, now
        ):
            return seat
        free = [n for n in refresh() if n not in tried]
    raise Conflict("该时段已约满，请选择其他时段", code="slot_full")


def _new_booking(
    principal: Principal,
    booking_id: str,
    person: str,
    center: Center,
    service: Service,
    slot: Slot,
    seat: int,
    priority: bool,
    request: BookRequest,
    now: datetime,
) -> Booking:
    address = None
    if service.channel is Channel.HOME_VISIT:
        address = HomeAddress(request.town or "", request.address_detail or "")
    return Booking(
        booking_id=booking_id,
        user_id=principal.user_id,
        person_key=person,
        center_id=center.center_id,
        center_name=center.name,
        item_id=service.item_id,
        item_name=service.item_name,
        channel=service.channel,
        complexity=service.complexity,
        day=slot.day,
        start=slot.start,
        end=slot.end,
        seat=seat,
        status=BookingStatus.BOOKED,
        created_at=now,
        priority=priority,
        address=address,
        staff_id=domain.staff_for_seat(service, seat),
    )


def _settle_duplicate(deps: BookingDeps, mine: Booking) -> Booking:
    """A concurrent retry of the same request wrote the booking first: keep its seat only."""
    existing = deps.store.get_booking(mine.booking_id)
    if existing is None:
        raise Conflict("预约正在处理中，请稍后查询", code="booking_in_progress")
    if (existing.day, existing.start, existing.seat) != (mine.day, mine.start, mine.seat):
        deps.store.release_seat(
            mine.center_id, mine.service_id, mine.day, hhmm(mine.start), mine.seat, mine.booking_id
        )
    return existing


def _jobs(booking: Booking, rules: BookingRules, now: datetime) -> list[Job]:
    due = dict(domain.reminder_times(booking, now, rules))
    if booking.channel is Channel.COUNTER:
        due[JobKind.NO_SHOW] = domain.no_show_due(booking, rules)
    return [
        Job(
            job_id_for(booking.booking_id, kind.value, booking.revision),
            "booking",
            booking.booking_id,
            kind.value,
            booking.revision,
            moment,
        )
        for kind, moment in due.items()
    ]


def _schedule_jobs(deps: BookingDeps, booking: Booking, rules: BookingRules, now: datetime) -> None:
    for job in _jobs(booking, rules, now):
        deps.jobs.schedule(job, now)


def _booking_effects(
    deps: BookingDeps, booking: Booking, center: Center, rules: BookingRules, now: datetime
) -> list[Any]:
    """A new booking's due jobs and notices, as unsaved items for its creating transaction."""
    return [deps.jobs.due_record(job, now) for job in _jobs(booking, rules, now)] + [
        deps.notifier.prepare(request) for request in _booked_notices(deps, booking, center, rules)
    ]


def _cancel_jobs(deps: BookingDeps, booking: Booking, now: datetime) -> None:
    for kind in _BOOKING_JOBS:
        job_id = job_id_for(booking.booking_id, kind.value, booking.revision)
        deps.jobs.finish(job_id, "cancelled", now, status="cancelled")


def _describe(booking: Booking) -> str:
    return (
        f"{booking.center_name} {booking.day.isoformat()} {hhmm(booking.start)}-"
        f"{hhmm(booking.end)} {booking.item_name}（{CHANNEL_LABELS[booking.channel]}）"
    )


def _booking_data(booking: Booking, **extra: Any) -> dict[str, Any]:
    return {
        "booking_id": booking.booking_id,
        "centre_id": booking.center_id,
        "item_code": booking.item_id,
        "channel": booking.channel.value,
        "date": booking.day.isoformat(),
        "start": hhmm(booking.start),
        **extra,
    }


# The mini-program page a cancel link opens (docs/bookings.md); it shows the booking and, when
# the person confirms, calls POST /bookings/{booking_id}/cancel-by-token with the token. A
# link must not cancel by itself: message previews open links.
CANCEL_PAGE = "/pages/booking/cancel"


def cancel_link(deps: BookingDeps, booking: Booking) -> tuple[str, str]:
    parts, expires_at = domain.cancel_link_claims(booking)
    token = deps.signer.sign_detached(domain.CANCEL_LINK_KIND, parts, expires_at)
    url = f"{deps.links_base_url}{CANCEL_PAGE}?booking_id={booking.booking_id}&token={token}"
    return token, url


def _cancel_data(booking: Booking, token: str, url: str) -> dict[str, Any]:
    return {
        "cancel_token": token,
        "cancel_url": url,
        "cancel_api": f"/bookings/{booking.booking_id}/cancel-by-token",
    }


def _notify_booked(
    deps: BookingDeps, booking: Booking, center: Center, rules: BookingRules
) -> None:
    for request in _booked_notices(deps, booking, center, rules):
        deps.notifier.notify(request)


def _booked_notices(
    deps: BookingDeps, booking: Booking, center: Center, rules: BookingRules
) -> list[NotificationRequest]:
    notices = []
    extra: dict[str, Any] = {}
    lines = [f"您已成功预约：{_describe(booking)}。"]
    if booking.video is not None:
        lines.append(f"视频帮办链接：{booking.video.join_url}（请在预约时间点击进入）。")
        extra.update(room_id=booking.video.room_id, join_url=booking.video.join_url)
    elif booking.channel is Channel.HOME_VISIT:
        lines.append(f"工作人员将按时上门（{booking.address.town if booking.address else ''}）。")
        extra.update(staff_id=booking.staff_id)
        notices += _staff_notices(booking)
    else:
        lines.append(f"地址：{center.address}；请提前到场并扫码签到。")
    token, url = cancel_link(deps, booking)
    lines.append(f"如需取消，请在开始前{rules.cancel_until_minutes_before}分钟前操作：{url}")
    suffix = "" if booking.revision == 0 else f":r{booking.revision}"
    notices.append(
        _request(
            f"booking:{booking.booking_id}:confirmed{suffix}",
            booking.user_id,
            "booking.confirmed",
            f"预约成功：{booking.item_name}",
            "".join(lines),
            _booking_data(booking, **_cancel_data(booking, token, url), **extra),
        )
    )
    return notices


def _staff_notices(booking: Booking) -> list[NotificationRequest]:
    if not booking.staff_id:
        return []
    return [
        _request(
            f"booking:{booking.booking_id}:staff:r{booking.revision}",
            booking.staff_id,
            "booking.home_visit_assigned",
            f"上门办任务：{booking.day.isoformat()} {hhmm(booking.start)}",
            f"请于 {booking.day.isoformat()} {hhmm(booking.start)}-{hhmm(booking.end)} 上门办理"
            f"{booking.item_name}（{booking.address.town if booking.address else ''}），"
            "详细地址见预约详情。",
            _booking_data(booking),
        )
    ]


def _request(
    key: str, recipient_id: str, category: str, title: str, body: str, data: dict[str, Any]
) -> NotificationRequest:
    return NotificationRequest(
        business_key=key,
        recipient_kind=RecipientKind.USER,
        recipient_id=recipient_id,
        category=category,
        title=title,
        body=body,
        data=data,
        correlation_id=get_correlation_id(),
    )


# ---- reading bookings -----------------------------------------------------------------------


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


def get_booking(deps: BookingDeps, principal: Principal, booking_id: str) -> Booking:
    return _visible_booking(deps, principal, Action.READ_BOOKING, booking_id)


def list_my_bookings(
    deps: BookingDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Page:
    require(principal, Action.READ_BOOKING)
    if start_key is not None:
        owner = start_key.get("user_key")
        if not isinstance(owner, dict) or owner.get("S") != principal.user_id:
            raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor")
    page = deps.store.bookings_of_user(principal.user_id, limit, start_key)
    return Page(page.items, page.last_key)


# ---- cancelling and rescheduling ------------------------------------------------------------


def cancel_booking(deps: BookingDeps, principal: Principal, booking_id: str) -> Booking:
    """The person cancels until 2 hours before (default); staff may cancel any booked one."""
    booking = _visible_booking(deps, principal, Action.CANCEL_BOOKING, booking_id)
    if booking.status is BookingStatus.CANCELLED:
        return booking  # a retry of a cancellation answers as the first did
    now = deps.clock.now()
    if principal.is_public:
        domain.check_cancellable(booking, now, deps.rules())
    return _cancel(deps, booking, principal, now, via="api")


def cancel_by_token(deps: BookingDeps, booking_id: str, token: str) -> Booking:
    """The cancel link of a reminder: no login, the signed token is the proof."""
    _check_id(booking_id, "booking_not_found", "预约不存在")
    booking = deps.store.get_booking(booking_id)
    now = deps.clock.now()
    if booking is None or not _signed(
        deps, domain.CANCEL_LINK_KIND, token, domain.cancel_link_claims(booking)[0], now
    ):
        raise NotFound("预约不存在或取消链接已失效", code="booking_not_found")
    if booking.status is BookingStatus.CANCELLED:
        return booking
    domain.check_cancellable(booking, now, deps.rules())
    profile = deps.directory.get_user(booking.user_id)
    actor = profile.principal() if profile is not None else SYSTEM
    return _cancel(deps, booking, actor, now, via="link")


def _cancel(
    deps: BookingDeps, booking: Booking, actor: Principal, now: datetime, via: str
) -> Booking:
    cancelled = deps.store.save_booking(domain.cancel(booking, now), now)
    _release(deps, booking)
    _cancel_jobs(deps, booking, now)
    _notify(
        deps,
        f"booking:{booking.booking_id}:cancelled",
        booking.user_id,
        "booking.cancelled",
        f"预约已取消：{booking.item_name}",
        f"您的预约已取消：{_describe(booking)}。",
        _booking_data(booking),
    )
    _audit(
        deps,
        actor,
        "booking.cancelled",
        "booking",
        booking.booking_id,
        domain.snapshot(booking),
        domain.snapshot(cancelled),
        via=via,
    )
    deps.metric("BookingCancelled", 1, "Count", channel=booking.channel.value)
    return cancelled


def _release(deps: BookingDeps, booking: Booking) -> None:
    deps.store.release_seat(
        booking.center_id,
        booking.service_id,
        booking.day,
        hhmm(booking.start),
        booking.seat,
        booking.booking_id,
    )
    deps.store.release_guard(booking.person_key, booking.item_id, booking.day, booking.booking_id)


def reschedule(
    deps: BookingDeps, principal: Principal, booking_id: str, day: date, start: str
) -> Booking:
    """Take the new seat first, then move the booking, then let go of the old seat. If the new
    seat (or the per-day rule) fails, the original booking is untouched."""
    booking = _visible_booking(deps, principal, Action.RESCHEDULE_BOOKING, booking_id)
    now, rules = deps.clock.now(), deps.rules()
    domain.check_cancellable(booking, now, rules)
    center, service = _center_and_service(deps, booking.center_id, booking.item_id, booking.channel)
    slot = domain.find_slot(center, service, day, start)
    if (slot.day, slot.start) == (booking.day, booking.start):
        raise InvalidInput("新时段与原预约相同", code="same_slot")
    domain.check_booking_day(rules, deps.calendar(), now, slot.day)

    new_day = slot.day != booking.day
    guard = (
        _take_guard(deps, rules, booking.person_key, booking.item_id, slot.day, booking_id, now)
        if new_day
        else None
    )
    try:

        def refresh() -> list[int]:
            return _free_seats(deps, service, slot, booking_id, booking.priority, now, rules)

        seat = _take_seat(deps, service, slot, booking_id, refresh(), refresh, now)
    except Exception:
        _release_guard_if_new(
            deps, guard, booking.person_key, booking.item_id, slot.day, booking_id
        )
        raise
    moved = domain.move(booking, slot, seat, domain.staff_for_seat(service, seat), now)
    try:
        saved = deps.store.save_booking(moved, now)
    except Exception:
        deps.store.release_seat(
            center.center_id, service.service_id, slot.day, slot.label, seat, booking_id
        )
        _release_guard_if_new(
            deps, guard, booking.person_key, booking.item_id, slot.day, booking_id
        )
        raise
    deps.store.release_seat(
        booking.center_id,
        booking.service_id,
        booking.day,
        hhmm(booking.start),
        booking.seat,
        booking_id,
    )
    if new_day:
        deps.store.release_guard(booking.person_key, booking.item_id, booking.day, booking_id)
    _cancel_jobs(deps, booking, now)
    _schedule_jobs(deps, saved, rules, now)
    _notify_booked(deps, saved, center, rules)
    _audit(
        deps,
        principal,
        "booking.rescheduled",
        "booking",
        booking_id,
        domain.snapshot(booking),
        domain.snapshot(saved),
    )
    deps.metric("BookingRescheduled", 1, "Count", channel=saved.channel.value)
    return saved


# ---- at the centre: check-in, call, served --------------------------------------------------


def check_in_code(deps: BookingDeps, principal: Principal, center_id: str) -> tuple[str, date]:
    """Today's code of the centre's check-in QR poster (staff display it)."""
    require(principal, Action.OPERATE_CENTER_QUEUE)
    center = get_center(deps, center_id)
    today = today_of(deps.clock.now())
    parts, expires_at = domain.check_in_claims(center.center_id, today)
    return deps.signer.sign_detached(domain.CHECK_IN_KIND, parts, expires_at), today


def check_in(deps: BookingDeps, principal: Principal, booking_id: str, code: str | None) -> Booking:
    """Staff check a person in; the person checks in by scanning the centre's QR code."""
    booking = _visible_booking(deps, principal, Action.CHECK_IN_BOOKING, booking_id)
    if booking.status is BookingStatus.CHECKED_IN:
        return booking
    now = deps.clock.now()
    if principal.is_public and not _signed(
        deps,
        domain.CHECK_IN_KIND,
        code or "",
        domain.check_in_claims(booking.center_id, today_of(now))[0],
        now,
    ):
        raise RuleViolation(
            "签到码无效或已过期，请扫描服务中心现场的签到二维码", code="invalid_check_in_code"
        )
    checked = deps.store.save_booking(domain.check_in(booking, now, deps.rules()), now)
    _audit(
        deps,
        principal,
        "booking.checked_in",
        "booking",
        booking_id,
        domain.snapshot(booking),
        domain.snapshot(checked),
        by="staff" if principal.is_staff else "qr",
    )
    return checked


def _signed(deps: BookingDeps, kind: str, token: str, parts: list[str], now: datetime) -> bool:
    from chalicelib.domain.errors import TokenRefused

    try:
        deps.signer.verify_detached(kind, token, parts, now)
    except TokenRefused:
        return False
    return True


def call_next(deps: BookingDeps, principal: Principal, center_id: str) -> Booking | None:
    """叫号: the next person waiting (priority people first, then by waiting time)."""
    require(principal, Action.OPERATE_CENTER_QUEUE)
    center = get_center(deps, center_id)
    now = deps.clock.now()
    for candidate in deps.store.waiting(center_id, today_of(now), limit=10):
        try:
            return _call(deps, principal, center, candidate, now)
        except (Conflict, RuleViolation):
            continue  # another counter called this person first
    return None


def call_booking(deps: BookingDeps, principal: Principal, booking_id: str) -> Booking:
    booking = _visible_booking(deps, principal, Action.OPERATE_CENTER_QUEUE, booking_id)
    center = get_center(deps, booking.center_id)
    return _call(deps, principal, center, booking, deps.clock.now())


def _call(
    deps: BookingDeps, principal: Principal, center: Center, booking: Booking, now: datetime
) -> Booking:
    called = deps.store.save_booking(domain.call(booking, now, principal.user_id), now)
    sample = WaitSample(
        called.booking_id,
        called.complexity,
        now,
        called.wait_seconds or 0,
        principal.user_id,
        item_id=called.item_id,
    )
    deps.store.put_sample(center.center_id, called.day, sample)
    _notify(
        deps,
        f"booking:{called.booking_id}:called",
        called.user_id,
        "booking.called",
        "叫号提醒：请到窗口办理",
        f"{center.name}已叫到您的号，请前往窗口办理{called.item_name}。",
        _booking_data(called),
    )
    _audit(
        deps,
        principal,
        "booking.called",
        "booking",
        called.booking_id,
        domain.snapshot(booking),
        domain.snapshot(called),
        wait_seconds=called.wait_seconds,
    )
    deps.metric(
        "BookingWaitSeconds",
        called.wait_seconds or 0,
        "Seconds",
        complexity=called.complexity.value,
    )
    _check_wait_target(deps, center, called.complexity, now)
    return called


def serve(deps: BookingDeps, principal: Principal, booking_id: str) -> Booking:
    booking = _visible_booking(deps, principal, Action.OPERATE_CENTER_QUEUE, booking_id)
    now = deps.clock.now()
    served = deps.store.save_booking(domain.serve(booking, now), now, effects_pending=True)
    if served.called_at is not None and served.handling_seconds is not None:
        deps.store.set_handling(
            served.center_id, served.day, served.called_at, booking_id, served.handling_seconds
        )
    _audit(
        deps,
        principal,
        "booking.served",
        "booking",
        booking_id,
        domain.snapshot(booking),
        domain.snapshot(served),
        handling_seconds=served.handling_seconds,
    )
    deps.metric(
        "BookingHandlingSeconds",
        served.handling_seconds or 0,
        "Seconds",
        complexity=served.complexity.value,
    )
    _handling_effects(deps, served, now)
    _completion_effects(deps, booking_id)
    return served


def _handling_effects(deps: BookingDeps, served: Booking, now: datetime) -> None:
    """The service's wait and handling as a fact of the month's operations report, then the
    item's rolling handling average against its target (alert the centre manager)."""
    rules = deps.rules()
    target = rules.handling_target(served.item_id)
    if deps.facts is not None and served.handling_seconds is not None:
        deps.facts.put_fact(
            now.astimezone(CHINA_TZ).strftime("%Y-%m"),
            "handling",
            served.booking_id,
            {
                "booking_id": served.booking_id,
                "centre_id": served.center_id,
                "item_id": served.item_id,
                "complexity": served.complexity.value,
                "wait_seconds": served.wait_seconds,
                "handling_seconds": served.handling_seconds,
                "target_minutes": target,
                "wait_target_minutes": rules.wait_target_minutes(served.complexity),
            },
        )
    center = deps.store.get_center(served.center_id)
    if center is not None:
        _check_handling_target(deps, center, served.item_id, served.item_name, now, rules)


def _check_handling_target(
    deps: BookingDeps,
    center: Center,
    item_id: str,
    item_name: str,
    now: datetime,
    rules: BookingRules,
) -> None:
    """The item's rolling average handling (call → served) over its target: alert the
    manager, once an hour per item, as the wait alarms do."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    samples = deps.store.samples_since(center.center_id, today_of(now), since)
    average = domain.average_handling_minutes(samples, item_id, now, rules)
    target = rules.handling_target(item_id)
    if average is None or average <= target:
        return
    hour = now.astimezone(CHINA_TZ).strftime("%Y-%m-%dT%H")
    recipient, kind = (
        (center.manager_id, RecipientKind.USER)
        if center.manager_id
        else (rules.help_alert_department_id, RecipientKind.DEPARTMENT)
    )
    created = _notify(
        deps,
        f"center:{center.center_id}:handling:{item_id}:{hour}",
        recipient,
        "booking.handling_over_target",
        f"办理超时预警：{center.name}",
        f"{center.name}“{item_name}”近{rules.wait_window_minutes}分钟平均办理{average}分钟，"
        f"超过{target}分钟的目标，请核查窗口办理情况。",
        {
            "centre_id": center.center_id,
            "item_code": item_id,
            "average_handling_minutes": average,
            "target_minutes": target,
        },
        kind,
    )
    if created:
        deps.metric("BookingHandlingOverTarget", 1, "Count")


def _completion_effects(deps: BookingDeps, booking_id: str) -> bool:
    """The review invitation (idempotent per booking), then the pending mark cleared; a
    failure leaves the mark for the repair job."""
    from chalicelib.observability import logger

    try:
        deps.completed("booking", booking_id)
    except Exception:
        logger.exception(
            "review invitation failed; the repair job makes it again",
            extra={"booking_id": booking_id},
        )
        return False
    deps.store.effects_done(booking_id)
    return True


def repair_effects(deps: BookingDeps, before: datetime, budget: int) -> list[str]:
    """Bookings served whose invitation has been pending since before `before` (one Query on
    the sparse effects index)."""
    return [
        booking_id
        for booking_id in deps.store.effects_pending(before, budget)
        if _completion_effects(deps, booking_id)
    ]


def _check_wait_target(
    deps: BookingDeps, center: Center, complexity: Complexity, now: datetime
) -> None:
    """The rolling average wait of this complexity over target: alert the manager, once an hour."""
    rules = deps.rules()
    since = now - timedelta(minutes=rules.wait_window_minutes)
    samples = deps.store.samples_since(center.center_id, today_of(now), since)
    average = domain.average_wait_minutes(samples, complexity, now, rules)
    target = rules.wait_target_minutes(complexity)
    if average is None or average <= target:
        return
    hour = now.astimezone(CHINA_TZ).strftime("%Y-%m-%dT%H")
    recipient, kind = (
        (center.manager_id, RecipientKind.USER)
        if center.manager_id
        else (rules.help_alert_department_id, RecipientKind.DEPARTMENT)
    )
    label = COMPLEXITY_LABELS[complexity]
    created = _notify(
        deps,
        f"center:{center.center_id}:wait:{complexity.value}:{hour}",
        recipient,
        "booking.wait_over_target",
        f"等候超时预警：{center.name}",
        f"{center.name}{label}事项近{rules.wait_window_minutes}分钟平均等候{average}分钟，"
        f"超过{target}分钟的目标，请增开窗口或调配人员。",
        {
            "centre_id": center.center_id,
            "complexity": complexity.value,
            "average_wait_minutes": average,
            "target_minutes": target,
        },
        kind,
    )
    if created:
        deps.metric("BookingWaitOverTarget", 1, "Count", complexity=complexity.value)


@dataclass(frozen=True)
class QueueStatus:
    center: Center
    day: date
    estimate: QueueEstimate
    at: datetime


def queue_status(deps: BookingDeps, center_id: str) -> QueueStatus:
    center = get_center(deps, center_id)
    now, rules = deps.clock.now(), deps.rules()
    today = today_of(now)
    waiting, priority = deps.store.waiting_counts(center_id, today)
    since = now - timedelta(minutes=rules.wait_window_minutes)
    samples = deps.store.samples_since(center_id, today, since)
    counter_lengths = [
        s.slot_minutes for s in deps.store.services_of(center_id) if s.channel is Channel.COUNTER
    ]
    default = (
        sum(counter_lengths) / len(counter_lengths) if counter_lengths else DEFAULT_HANDLING_MINUTES
    )
    estimate = domain.estimate_queue(waiting, priority, samples, now, rules, default)
    return QueueStatus(center, today, estimate, now)


# ---- rules ----------------------------------------------------------------------------------


def read_rules(deps: BookingDeps) -> tuple[BookingRules, int | None]:
    return deps.store.get_rules()


def update_rules(deps: BookingDeps, principal: Principal, changes: dict[str, Any]) -> BookingRules:
    require(principal, Action.MANAGE_BOOKING_RULES)
    rules, version = deps.store.get_rules(fresh=True)
    updated = rules.changed(changes)
    deps.store.put_rules(updated, principal.user_id, deps.clock.now(), version)
    _audit(
        deps,
        principal,
        "booking.rules_changed",
        "booking_rules",
        "booking-rules",
        rules.to_dict(),
        updated.to_dict(),
    )
    return updated


# ---- live help (专业人工帮办) -------------------------------------------------------------------


def request_help(
    deps: BookingDeps,
    principal: Principal,
    topic: str,
    item_id: str | None,
    idempotency_key: str | None = None,
    conversation_id: str | None = None,
    transcript: tuple[str, ...] = (),
) -> HelpRequest:
    """A person asks for help now; an agent should pick it up within a minute (target). From
    the assistant, the request carries the conversation's transcript for the agent."""
    require(principal, Action.REQUEST_HELP)
    now, rules = deps.clock.now(), deps.rules()
    request_id = _new_booking_id(principal, f"help\n{idempotency_key}" if idempotency_key else None)
    if idempotency_key:
        existing = deps.store.get_help(request_id)
        if existing is not None:
            return existing
    request = HelpRequest(
        request_id,
        principal.user_id,
        topic,
        item_id,
        HelpStatus.WAITING,
        now,
        team=_help_team(deps, item_id, rules),
        conversation_id=conversation_id,
        transcript=transcript,
    )
    try:
        saved = deps.store.create_help(request)
    except Exception:
        existing = deps.store.get_help(request_id)
        if existing is None:
            raise
        return existing
    # A pick-up at exactly the target still meets it: the check is due a second later.
    due = now + timedelta(seconds=rules.help_pickup_target_seconds + 1)
    job_id = job_id_for(request_id, JobKind.HELP_PICKUP.value, 0)
    deps.jobs.schedule(Job(job_id, "help", request_id, JobKind.HELP_PICKUP.value, 0, due), now)
    _audit(
        deps, principal, "help.requested", "help_request", request_id, None, _help_snapshot(saved)
    )
    deps.metric("HelpRequested", 1, "Count")
    return saved


def get_help(deps: BookingDeps, principal: Principal, request_id: str) -> HelpRequest:
    require(principal, Action.READ_HELP)
    _check_id(request_id, "help_request_not_found", "求助不存在")
    request = deps.store.get_help(request_id)
    if request is None or not can(
        principal, Action.READ_HELP, Resource(owner_user_id=request.user_id)
    ):
        raise NotFound("求助不存在", code="help_request_not_found")
    return request


def waiting_help(
    deps: BookingDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Page:
    require(principal, Action.ANSWER_HELP)
    page = deps.store.waiting_help(limit, start_key)
    return Page(page.items, page.last_key)


def pick_up_help(deps: BookingDeps, principal: Principal, request_id: str) -> HelpRequest:
    """An agent takes the request: time to pick-up is measured against the 1-minute target."""
    require(principal, Action.ANSWER_HELP)
    request = get_help(deps, principal, request_id)
    now, rules = deps.clock.now(), deps.rules()
    room = deps.video.create_room(
        f"help:{request_id}", title="专业人工帮办", starts_at=now, participant_id=request.user_id
    )
    try:
        picked = deps.store.save_help(domain.pick_up(request, principal.user_id, now, rules, room))
    except Conflict as error:
        raise RuleViolation("该求助已被其他帮办人员接入", code="help_already_picked_up") from error
    _notify(
        deps,
        f"help:{request_id}:picked",
        picked.user_id,
        "help.picked_up",
        "帮办人员已接入",
        f"专业帮办人员已接入您的求助，请点击链接进入视频：{room.join_url}",
        {"request_id": request_id, "room_id": room.room_id, "join_url": room.join_url},
    )
    if not picked.target_met:
        _alert_help_missed(deps, picked, now, rules)
    deps.jobs.finish(job_id_for(request_id, JobKind.HELP_PICKUP.value, 0), "picked_up", now)
    _audit(
        deps,
        principal,
        "help.picked_up",
        "help_request",
        request_id,
        _help_snapshot(request),
        _help_snapshot(picked),
    )
    deps.metric("HelpPickupSeconds", picked.pickup_seconds or 0, "Seconds")
    deps.metric("HelpPickupOnTime", 1 if picked.target_met else 0, "Count")
    _help_fact(deps, picked)
    return picked


def _help_team(deps: BookingDeps, item_id: str | None, rules: BookingRules) -> str:
    """Who answers a request: the specialists of the item's department, else the help desk."""
    if item_id and deps.items is not None:
        item = deps.items.latest_item(item_id)
        if item is not None and item.department_id:
            return str(item.department_id)
    return rules.help_alert_department_id


def _help_fact(deps: BookingDeps, request: HelpRequest) -> None:
    """The request as a fact of its month's operations report (written again as it ends)."""
    if deps.facts is None:
        return
    deps.facts.put_fact(
        request.requested_at.astimezone(CHINA_TZ).strftime("%Y-%m"),
        "help",
        request.request_id,
        {
            "request_id": request.request_id,
            "team": request.team,
            "pickup_seconds": request.pickup_seconds,
            "pickup_met": request.target_met,
            "outcome": request.status.value if request.status in domain.HELP_ENDED else None,
            "ticket_id": request.ticket_id,
        },
    )


def end_help(
    deps: BookingDeps,
    principal: Principal,
    request_id: str,
    outcome: domain.HelpOutcome,
    reason: str = "",
    file_ticket: bool = True,
) -> HelpRequest:
    """How a help request ended: the agent says resolved or not (with the reason; a request
    not resolved becomes a 办不成事 ticket in the same tap); the person or the agent records
    that the person left. Counted per team for the report."""
    request = get_help(deps, principal, request_id)
    if outcome is not domain.HelpOutcome.ABANDONED or principal.user_id != request.user_id:
        require(principal, Action.ANSWER_HELP)
    now = deps.clock.now()
    ended = domain.end_help(request, outcome, now, principal.user_id, reason)
    if outcome is domain.HelpOutcome.NOT_RESOLVED and file_ticket:
        if deps.file_ticket is None:
            raise RuntimeError("filing a ticket from a help request needs the tickets capability")
        # Keyed by the request: a retry of this call files no second ticket.
        ended = replace(ended, ticket_id=deps.file_ticket(principal, ended, reason.strip()))
    try:
        saved = deps.store.save_help(ended)
    except Conflict as error:
        raise RuleViolation("该求助已被他人处理，请刷新", code="help_changed") from error
    if request.status is HelpStatus.WAITING:
        deps.jobs.finish(job_id_for(request_id, JobKind.HELP_PICKUP.value, 0), "abandoned", now)
    _audit(
        deps,
        principal,
        f"help.{saved.status.value}",
        "help_request",
        request_id,
        _help_snapshot(request),
        _help_snapshot(saved),
        reason=saved.outcome_reason,
        ticket_id=saved.ticket_id,
    )
    deps.metric("HelpEnded", 1, "Count", outcome=saved.status.value)
    _help_fact(deps, saved)
    return saved


def _help_snapshot(request: HelpRequest) -> dict[str, Any]:
    return {
        "status": request.status.value,
        "item_id": request.item_id,
        "agent_id": request.agent_id,
        "pickup_seconds": request.pickup_seconds,
        "target_met": request.target_met,
        "team": request.team,
        "ticket_id": request.ticket_id,
    }


def _alert_help_missed(
    deps: BookingDeps, request: HelpRequest, now: datetime, rules: BookingRules
) -> None:
    waited = int((now - request.requested_at).total_seconds())
    created = _notify(
        deps,
        f"help:{request.request_id}:missed",
        rules.help_alert_department_id,
        "help.pickup_missed",
        "专业人工帮办响应超时",
        f"求助 {request.request_id} 已等待{waited}秒，超过{rules.help_pickup_target_seconds}秒"
        "的响应目标，请尽快安排帮办人员接入。",
        {"request_id": request.request_id, "waited_seconds": waited},
        RecipientKind.DEPARTMENT,
    )
    if created:
        deps.metric("HelpPickupMissed", 1, "Count")


# ---- the job runner: reminders, no-shows, help alerts ---------------------------------------


def run_job_due(c: Any, item: Any, now: datetime) -> str | None:
    """The due sweep's handler for one timed job (reminder, no-show check, help pick-up alert).
    Its side effect happens once, however often or concurrently it runs; None leaves it due."""
    deps = BookingDeps.from_container(c)
    return _run_job(deps, domain.job_of(item), now, deps.rules())


def _run_job(deps: BookingDeps, job: Any, now: datetime, rules: BookingRules) -> str | None:
    """The job's side effect; answers its outcome, or None to leave it due (busy elsewhere)."""
    kind = JobKind(job.kind)
    if kind is JobKind.HELP_PICKUP:
        request = deps.store.get_help(job.subject_id)
        if request is None or request.status is not HelpStatus.WAITING:
            return "picked_up"
        if not domain.help_overdue(request, now, rules):
            return None  # the target changed since the job was filed: not yet
        _alert_help_missed(deps, request, now, rules)
        return "alerted"
    booking = deps.store.get_booking(job.subject_id)
    if booking is None or booking.revision != job.revision:
        return "stale"
    if kind in REMINDER_OF_JOB:
        return _remind(deps, booking, REMINDER_OF_JOB[kind], now, rules)
    return _no_show(deps, booking, now, rules)


def _remind(
    deps: BookingDeps, booking: Booking, kind: ReminderKind, now: datetime, rules: BookingRules
) -> str | None:
    if booking.status is not BookingStatus.BOOKED:
        return "not_applicable"
    name = domain.reminder_key(kind, booking.revision)
    claim = deps.jobs.claim(f"{booking.booking_id}#{name}", now)
    if claim == StepClaim.BUSY:
        return None
    if claim == StepClaim.DONE:
        return "already_sent"
    token, url = cancel_link(deps, booking)
    when = "明天" if kind is ReminderKind.DAY_BEFORE else "今天"
    _notify(
        deps,
        f"booking:{booking.booking_id}:reminder:{name}",
        booking.user_id,
        f"booking.reminder.{kind.value}",
        f"预约提醒：{when}{hhmm(booking.start)} {booking.item_name}",
        f"您预约了{_describe(booking)}，请按时{_attend_text(booking)}。"
        f"如需取消（开始前{rules.cancel_until_minutes_before}分钟前有效）：{url}",
        _booking_data(booking, reminder=kind.value, **_cancel_data(booking, token, url)),
    )
    deps.jobs.finish_claim(f"{booking.booking_id}#{name}", now)
    _audit(
        deps,
        SYSTEM,
        "booking.reminder_sent",
        "booking",
        booking.booking_id,
        None,
        None,
        reminder=name,
    )
    deps.metric("BookingReminderSent", 1, "Count", reminder=kind.value)
    return "sent"


def _attend_text(booking: Booking) -> str:
    if booking.channel is Channel.VIDEO and booking.video:
        return f"通过链接进入视频帮办：{booking.video.join_url}"
    if booking.channel is Channel.HOME_VISIT:
        return "在家等候工作人员上门"
    return "到场并扫码签到"


def _no_show(deps: BookingDeps, booking: Booking, now: datetime, rules: BookingRules) -> str:
    """After the grace period a booking nobody checked in for is a no-show; 2 within 30 days
    stop online booking for 90 days (defaults). Every step is safe to repeat."""
    if booking.status is BookingStatus.BOOKED:
        marked = deps.store.save_booking(domain.mark_no_show(booking, now), now)
        _audit(
            deps,
            SYSTEM,
            "booking.no_show",
            "booking",
            booking.booking_id,
            domain.snapshot(booking),
            domain.snapshot(marked),
        )
        deps.metric("BookingNoShow", 1, "Count")
        booking = marked
    elif booking.status is not BookingStatus.NO_SHOW:
        return "attended"
    marked_at = booking.no_show_at or now
    deps.store.record_no_show(booking.person_key, booking.starts_at, booking.booking_id)
    history = deps.store.no_shows_since(
        booking.person_key, marked_at - timedelta(days=rules.no_show_window_days)
    )
    _notify(
        deps,
        f"booking:{booking.booking_id}:no_show",
        booking.user_id,
        "booking.no_show",
        "预约爽约提醒",
        f"您预约的{_describe(booking)}未按时签到，已记为爽约一次。"
        f"{rules.no_show_window_days}天内爽约{rules.no_show_limit}次将暂停在线预约"
        f"{rules.suspension_days}天。",
        _booking_data(booking),
    )
    until = domain.suspension_until(history, marked_at, rules)
    if until is not None:
        _suspend(deps, booking, until, marked_at)
    return "no_show"


def _suspend(deps: BookingDeps, booking: Booking, until: datetime, now: datetime) -> None:
    deps.store.suspend(booking.person_key, until, "no_show", now)
    created = _notify(
        deps,
        f"booking:{booking.booking_id}:suspended",
        booking.user_id,
        "booking.suspended",
        "在线预约已暂停",
        f"因多次预约未到，{until.astimezone(CHINA_TZ):%Y-%m-%d} 前暂停在线预约，"
        "可到服务中心现场办理。",
        _booking_data(booking, suspended_until=until.isoformat()),
    )
    if created:
        _audit(
            deps,
            SYSTEM,
            "booking.suspension_started",
            "booking",
            booking.booking_id,
            None,
            {"until": until.isoformat()},
        )
