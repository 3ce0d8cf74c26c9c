"""Booking a seat, reading, cancelling and rescheduling bookings, and the notices they send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.domain.bookings.booking import (
    CANCEL_LINK_KIND,
    Booking,
    BookingStatus,
    GuardOutcome,
    HomeAddress,
    VideoRoom,
    cancel,
    cancel_link_claims,
    check_cancellable,
    check_not_suspended,
    move,
    person_key,
    snapshot,
)
from chalicelib.domain.bookings.centres import (
    CHANNEL_LABELS,
    Center,
    Channel,
    Service,
    Slot,
    find_slot,
    hhmm,
)
from chalicelib.domain.bookings.jobs import Job, JobKind, job_id_for, no_show_due, reminder_times
from chalicelib.domain.bookings.rules import (
    BookingRules,
    check_booking_day,
    check_home_visit,
    is_priority,
    seat_order,
    staff_for_seat,
)
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.bookings.centres import _center_and_service
from chalicelib.service_layer.bookings.common import (
    BookingDeps,
    Page,
    _audit,
    _check_id,
    _new_booking_id,
    _notify,
    _signed,
    _visible_booking,
)

# A guard whose booking was never written is taken over after this long (its request crashed).
GUARD_GRACE = timedelta(minutes=2)


_BOOKING_JOBS = (JobKind.REMIND_DAY_BEFORE, JobKind.REMIND_TWO_HOURS, JobKind.NO_SHOW)


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
    slot = find_slot(center, service, request.day, request.start)
    # A rerun of a keyed request whose first run died half-way works on the same items (the
    # HTTP layer answers every other repeat from the stored response before this runs).
    booking_id = _new_booking_id(principal, idempotency_key)

    rules = deps.rules()
    check_booking_day(rules, deps.calendar(), now, slot.day)
    person = person_key(principal.user_id, principal.subject_id)
    # Who the person is (elderly, disabled) decides the seats only where seats are held back
    # or the channel requires it; elsewhere it only sets the booking's priority.
    tags = _tags(deps, principal) if _tags_decide_seats(service) else None
    priority = is_priority(tags or (), rules)
    # Reads first: a request for a slot seen full writes nothing at all.
    free = _free_seats(deps, service, slot, booking_id, priority, now, rules)
    check_home_visit(center, service, request.town, tags or (), rules)
    if tags is None:
        priority = is_priority(_tags(deps, principal), rules)
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
            check_not_suspended(deps.store.suspended_until(person), now)
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
    _audit(deps, principal, "booking.created", "booking", booking_id, None, snapshot(created))
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
    order = seat_order(service, slot, booking_id, priority, now, rules)
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
        staff_id=staff_for_seat(service, seat),
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
    due = dict(reminder_times(booking, now, rules))
    if booking.channel is Channel.COUNTER:
        due[JobKind.NO_SHOW] = no_show_due(booking, rules)
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
    parts, expires_at = cancel_link_claims(booking)
    token = deps.signer.sign_detached(CANCEL_LINK_KIND, parts, expires_at)
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


def cancel_booking(deps: BookingDeps, principal: Principal, booking_id: str) -> Booking:
    """The person cancels until 2 hours before (default); staff may cancel any booked one."""
    booking = _visible_booking(deps, principal, Action.CANCEL_BOOKING, booking_id)
    if booking.status is BookingStatus.CANCELLED:
        return booking  # a retry of a cancellation answers as the first did
    now = deps.clock.now()
    if principal.is_public:
        check_cancellable(booking, now, deps.rules())
    return _cancel(deps, booking, principal, now, via="api")


def cancel_by_token(deps: BookingDeps, booking_id: str, token: str) -> Booking:
    """The cancel link of a reminder: no login, the signed token is the proof."""
    _check_id(booking_id, "booking_not_found", "预约不存在")
    booking = deps.store.get_booking(booking_id)
    now = deps.clock.now()
    if booking is None or not _signed(
        deps, CANCEL_LINK_KIND, token, cancel_link_claims(booking)[0], now
    ):
        raise NotFound("预约不存在或取消链接已失效", code="booking_not_found")
    if booking.status is BookingStatus.CANCELLED:
        return booking
    check_cancellable(booking, now, deps.rules())
    profile = deps.directory.get_user(booking.user_id)
    actor = profile.principal() if profile is not None else SYSTEM
    return _cancel(deps, booking, actor, now, via="link")


def _cancel(
    deps: BookingDeps, booking: Booking, actor: Principal, now: datetime, via: str
) -> Booking:
    cancelled = deps.store.save_booking(cancel(booking, now), now)
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
        snapshot(booking),
        snapshot(cancelled),
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
    check_cancellable(booking, now, rules)
    center, service = _center_and_service(deps, booking.center_id, booking.item_id, booking.channel)
    slot = find_slot(center, service, day, start)
    if (slot.day, slot.start) == (booking.day, booking.start):
        raise InvalidInput("新时段与原预约相同", code="same_slot")
    check_booking_day(rules, deps.calendar(), now, slot.day)

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
    moved = move(booking, slot, seat, staff_for_seat(service, seat), now)
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
        snapshot(booking),
        snapshot(saved),
    )
    deps.metric("BookingRescheduled", 1, "Count", channel=saved.channel.value)
    return saved
