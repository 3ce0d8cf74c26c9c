"""The job runner for timed booking work: reminders, no-shows (and the suspension they may
start), help pick-up alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.bookings.booking import Booking, BookingStatus, snapshot
from chalicelib.domain.bookings.centres import Channel, hhmm
from chalicelib.domain.bookings.jobs import (
    REMINDER_OF_JOB,
    JobKind,
    ReminderKind,
    job_of,
    mark_no_show,
    reminder_key,
    suspension_until,
)
from chalicelib.domain.bookings.live_help import HelpStatus, help_overdue
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import StepClaim
from chalicelib.domain.identity import SYSTEM
from chalicelib.service_layer.bookings.booking import (
    _booking_data,
    _cancel_data,
    _describe,
    cancel_link,
)
from chalicelib.service_layer.bookings.common import BookingDeps, _audit, _notify
from chalicelib.service_layer.bookings.live_help import _alert_help_missed


def run_job_due(c: Any, item: Any, now: datetime) -> str | None:
    """The due sweep's handler for one timed job (reminder, no-show check, help pick-up alert).
    Its side effect happens once, however often or concurrently it runs; None leaves it due."""
    deps = BookingDeps.from_container(c)
    return _run_job(deps, job_of(item), now, deps.rules())


def _run_job(deps: BookingDeps, job: Any, now: datetime, rules: BookingRules) -> str | None:
    """The job's side effect; answers its outcome, or None to leave it due (busy elsewhere)."""
    kind = JobKind(job.kind)
    if kind is JobKind.HELP_PICKUP:
        request = deps.store.get_help(job.subject_id)
        if request is None or request.status is not HelpStatus.WAITING:
            return "picked_up"
        if not help_overdue(request, now, rules):
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
    name = reminder_key(kind, booking.revision)
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
        marked = deps.store.save_booking(mark_no_show(booking, now), now)
        _audit(
            deps,
            SYSTEM,
            "booking.no_show",
            "booking",
            booking.booking_id,
            snapshot(booking),
            snapshot(marked),
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
    until = suspension_until(history, marked_at, rules)
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
