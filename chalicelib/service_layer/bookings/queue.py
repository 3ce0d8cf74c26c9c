"""At the centre (取号/叫号): check-in, calling, serving, the queue estimate, and the wait and
handling alerts; the review invitation after service and its repair."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from chalicelib.domain.bookings import queue as domain_queue
from chalicelib.domain.bookings.booking import Booking, BookingStatus, snapshot
from chalicelib.domain.bookings.centres import (
    COMPLEXITY_LABELS,
    Center,
    Channel,
    Complexity,
    today_of,
)
from chalicelib.domain.bookings.queue import (
    CHECK_IN_KIND,
    QueueEstimate,
    WaitSample,
    average_handling_minutes,
    average_wait_minutes,
    call,
    check_in_claims,
    estimate_queue,
)
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, RuleViolation
from chalicelib.domain.identity import Principal
from chalicelib.domain.notifications import RecipientKind
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.bookings.booking import _booking_data
from chalicelib.service_layer.bookings.centres import get_center
from chalicelib.service_layer.bookings.common import (
    BookingDeps,
    _audit,
    _notify,
    _signed,
    _visible_booking,
)

DEFAULT_HANDLING_MINUTES = 15.0


def check_in_code(deps: BookingDeps, principal: Principal, center_id: str) -> tuple[str, date]:
    """Today's code of the centre's check-in QR poster (staff display it)."""
    require(principal, Action.OPERATE_CENTER_QUEUE)
    center = get_center(deps, center_id)
    today = today_of(deps.clock.now())
    parts, expires_at = check_in_claims(center.center_id, today)
    return deps.signer.sign_detached(CHECK_IN_KIND, parts, expires_at), today


def check_in(deps: BookingDeps, principal: Principal, booking_id: str, code: str | None) -> Booking:
    """Staff check a person in; the person checks in by scanning the centre's QR code."""
    booking = _visible_booking(deps, principal, Action.CHECK_IN_BOOKING, booking_id)
    if booking.status is BookingStatus.CHECKED_IN:
        return booking
    now = deps.clock.now()
    if principal.is_public and not _signed(
        deps,
        CHECK_IN_KIND,
        code or "",
        check_in_claims(booking.center_id, today_of(now))[0],
        now,
    ):
        raise RuleViolation(
            "签到码无效或已过期，请扫描服务中心现场的签到二维码", code="invalid_check_in_code"
        )
    checked = deps.store.save_booking(domain_queue.check_in(booking, now, deps.rules()), now)
    _audit(
        deps,
        principal,
        "booking.checked_in",
        "booking",
        booking_id,
        snapshot(booking),
        snapshot(checked),
        by="staff" if principal.is_staff else "qr",
    )
    return checked


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
    called = deps.store.save_booking(call(booking, now, principal.user_id), now)
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
        snapshot(booking),
        snapshot(called),
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
    served = deps.store.save_booking(domain_queue.serve(booking, now), now, effects_pending=True)
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
        snapshot(booking),
        snapshot(served),
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
    average = average_handling_minutes(samples, item_id, now, rules)
    target = rules.handling_target(item_id)
    if average is None or average <= target:
        return
    hour = now.astimezone(CHINA_TZ).strftime("%Y-%m-%dT%H")
    recipient, kind = _alert_recipient(center, rules)
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


def _alert_recipient(center: Center, rules: BookingRules) -> tuple[str, RecipientKind]:
    """The centre's manager, or the department on duty for help alerts when it has none."""
    if center.manager_id:
        return center.manager_id, RecipientKind.USER
    return rules.help_alert_department_id, RecipientKind.DEPARTMENT


def _check_wait_target(
    deps: BookingDeps, center: Center, complexity: Complexity, now: datetime
) -> None:
    """The rolling average wait of this complexity over target: alert the manager, once an hour."""
    rules = deps.rules()
    since = now - timedelta(minutes=rules.wait_window_minutes)
    samples = deps.store.samples_since(center.center_id, today_of(now), since)
    average = average_wait_minutes(samples, complexity, now, rules)
    target = rules.wait_target_minutes(complexity)
    if average is None or average <= target:
        return
    hour = now.astimezone(CHINA_TZ).strftime("%Y-%m-%dT%H")
    recipient, kind = _alert_recipient(center, rules)
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
    estimate = estimate_queue(waiting, priority, samples, now, rules, default)
    return QueueStatus(center, today, estimate, now)
