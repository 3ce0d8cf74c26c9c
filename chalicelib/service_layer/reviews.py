"""好差评 use cases: rate a handling, invite and remind, open and drive the rectification task
a bad review opens, appeals, the monthly report and the good-rate alert.

A handling (application, booking served at a window, ticket) is resolved through its own store:
who was served, which department answers for it, which staff handled it, whether it is complete
and on which channel. Every side effect is idempotent on a business key: the review id is derived
from the handling (a second rating fails the create condition), the task is keyed by the review,
clocks by "<review>:<kind>", notifications by their business keys, the report by its month and
an alert by (department, window).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chalicelib.domain import reviews as domain
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID, ClockState, Outcome
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import RecipientKind
from chalicelib.domain.personal_data import mask_text
from chalicelib.domain.reviews import (
    AlertPolicy,
    Channel,
    Handling,
    HandlingType,
    Invitation,
    Rater,
    Rating,
    Review,
    ReviewKind,
    Task,
    TaskState,
)
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.conflicts import retry_on_conflict
from chalicelib.service_layer.due import file_due
from chalicelib.service_layer.notify import notify

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.deadlines import DeadlineDeps
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import Directory
    from chalicelib.service_layer.ports.applications import ApplicationStore
    from chalicelib.service_layer.ports.bookings import BookingStore
    from chalicelib.service_layer.ports.due import DueStore
    from chalicelib.service_layer.ports.reviews import ReviewStore
    from chalicelib.service_layer.ports.tickets import TicketStore


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_REVIEW_ID = re.compile(r"^rv-[0-9a-f]{20}$")
REMINDER_KIND = "review.reminder"

_OFFLINE_TICKET_CHANNELS = {"window", "self_service_terminal"}


class TimeSource(Protocol):
    def now(self) -> datetime: ...


@dataclass
class ReviewDeps:
    store: ReviewStore
    directory: Directory
    notifier: Notifier
    audit_log: AuditLog
    clock: TimeSource
    deadlines: DeadlineDeps
    applications: ApplicationStore
    bookings: BookingStore
    tickets: TicketStore
    due: DueStore

    @classmethod
    def from_container(cls, c: Any) -> ReviewDeps:
        from chalicelib.service_layer.deadlines import DeadlineDeps

        return cls(
            store=c.review_store,
            directory=c.directory,
            notifier=c.notifier,
            audit_log=c.audit_log,
            clock=c.clock,
            deadlines=DeadlineDeps.from_container(c),
            applications=c.application_store,
            bookings=c.booking_store,
            tickets=c.ticket_store,
            due=c.due_store,
        )


# ---- handlings --------------------------------------------------------------------------------


def resolve_handling(deps: ReviewDeps, handling_type: HandlingType, handling_id: str) -> Handling:
    resolver = {
        HandlingType.APPLICATION: _application,
        HandlingType.BOOKING: _booking,
        HandlingType.TICKET: _ticket,
    }[handling_type]
    handling = resolver(deps, handling_id) if 0 < len(handling_id) <= 128 else None
    if handling is None:
        raise NotFound("未找到该办理事项", code="handling_not_found")
    return handling


def _subjects(deps: ReviewDeps, user_ids: set[str]) -> frozenset[str]:
    found = (deps.directory.get_user(u) for u in sorted(user_ids))
    return frozenset(p.subject_id for p in found if p is not None and p.subject_id)


def _booking_department(deps: ReviewDeps, booking: Any) -> str:
    """The department the booked service answers to (booking catalogue); 区政务办 otherwise."""
    service = deps.bookings.get_service(booking.center_id, booking.service_id)
    return (service.department_id if service else None) or SUPERVISOR_DEPARTMENT_ID


def _subject_of(deps: ReviewDeps, user_id: str | None) -> str | None:
    profile = deps.directory.get_user(user_id) if user_id else None
    return profile.subject_id if profile is not None else None


def _application(deps: ReviewDeps, handling_id: str) -> Handling | None:
    from chalicelib.domain.applications import State

    found = deps.applications.get(handling_id)
    if found is None:
        return None
    app = found[0]
    by = app.decision.by if app.decision else None
    staff = {by} if by and by not in ("rules", "prereview", SYSTEM.user_id) else set()
    return Handling(
        HandlingType.APPLICATION,
        handling_id,
        app.applicant_user_id,
        app.subject_id,
        app.department_id,
        Channel.ONLINE if app.channel == "online" else Channel.OFFLINE,
        app.state in (State.APPROVED, State.REJECTED, State.TERMINATED),
        frozenset(staff),
        _subjects(deps, staff),
        None,
        app.item_name,
    )


def _booking(deps: ReviewDeps, handling_id: str) -> Handling | None:
    from chalicelib.domain.bookings.booking import BookingStatus
    from chalicelib.domain.bookings.centres import Channel as BookingChannel

    booking = deps.bookings.get_booking(handling_id)
    if booking is None:
        return None
    staff = {u for u in (booking.called_by, booking.staff_id) if u}
    return Handling(
        HandlingType.BOOKING,
        handling_id,
        booking.user_id,
        _subject_of(deps, booking.user_id),
        _booking_department(deps, booking),
        Channel.ONLINE if booking.channel is BookingChannel.VIDEO else Channel.OFFLINE,
        booking.status is BookingStatus.SERVED,
        frozenset(staff),
        _subjects(deps, staff),
        booking.center_id,
        booking.item_name,
    )


def _ticket(deps: ReviewDeps, handling_id: str) -> Handling | None:
    from chalicelib.domain.identity import STAFF_ROLES
    from chalicelib.domain.tickets.ticket import TicketState

    ticket = deps.tickets.get(handling_id)
    if ticket is None:
        return None
    # A ticket no department took (unrouted, or returned) is the person's, but not complete:
    # its owner is told so (after the ownership check), not that it does not exist.
    handled = bool(ticket.department_id)
    staff_roles = {r.value for r in STAFF_ROLES}
    staff = {
        e.actor_id
        for e in ticket.timeline
        if e.actor_role in staff_roles and e.actor_id != SYSTEM.user_id
    }
    return Handling(
        HandlingType.TICKET,
        handling_id,
        ticket.owner.user_id,
        ticket.owner.subject_id,
        ticket.department_id or "",
        Channel.OFFLINE if ticket.channel.value in _OFFLINE_TICKET_CHANNELS else Channel.ONLINE,
        handled and ticket.state is TicketState.CLOSED,
        frozenset(staff),
        _subjects(deps, staff),
        ticket.centre_id,
        ticket.service_item_name or "办不成事反映",
    )


# ---- rating -------------------------------------------------------------------------------------


def submit_review(
    deps: ReviewDeps,
    principal: Principal,
    handling_type: HandlingType,
    handling_id: str,
    rating: Rating,
    kind: ReviewKind = ReviewKind.INITIAL,
) -> Review:
    """Rate a handling: once, plus one 追评 after its rectification closed."""
    require(principal, Action.RATE_HANDLING)
    handling = resolve_handling(deps, handling_type, handling_id)
    rater = Rater(
        principal.user_id, principal.role.value, principal.subject_id, principal.is_public
    )
    domain.check_rater(handling, rater)
    missing = NotFound("未找到该办理事项", code="handling_not_found")
    owner = Resource(
        owner_user_id=handling.person_user_id, owner_subject_id=handling.person_subject_id
    )
    _require_or(principal, Action.RATE_HANDLING, owner, missing)
    if not domain.is_served(handling, rater):
        raise missing
    closed = False
    if kind is ReviewKind.FOLLOW_UP:
        initial_id = domain.review_id_for(handling, ReviewKind.INITIAL)
        task = deps.store.get_task(initial_id)
        closed = task is not None and task.state is TaskState.CLOSED
    review = domain.new_review(
        handling, rater, rating, kind, deps.clock.now(), rectification_closed=closed
    )
    if not deps.store.create_review(review):
        message = "该事项已评价，每次办理只能评价一次" if kind is ReviewKind.INITIAL else "已追评"
        raise Conflict(message, code="already_reviewed")
    record_change(
        deps.audit_log,
        principal,
        f"review.{kind.value}",
        "review",
        review.review_id,
        None,
        {"rating": review.rating, "bad": review.is_bad, "anonymous": review.anonymous},
        {"handling": handling.key, "department_id": review.department_id},
    )
    return review


def _resource(review: Review) -> Resource:
    return Resource(
        owner_user_id=review.rater_user_id,
        owner_subject_id=review.rater_subject_id,
        department_id=review.department_id,
    )


def _load_review(deps: ReviewDeps, principal: Principal, review_id: str, action: Action) -> Review:
    require(principal, action)
    missing = NotFound("未找到该评价", code="review_not_found")
    review = deps.store.get_review(review_id) if _REVIEW_ID.match(review_id) else None
    if review is None:
        raise missing
    _require_or(principal, action, _resource(review), missing)
    return review


def _require_or(
    principal: Principal, action: Action, resource: Resource, missing: NotFound
) -> None:
    """Someone else's object answers as missing, in the words of what was asked for."""
    try:
        require(principal, action, resource)
    except NotFound:
        raise missing from None


def get_review(
    deps: ReviewDeps, principal: Principal, review_id: str
) -> tuple[Review, Task | None]:
    review = _load_review(deps, principal, review_id, Action.READ_REVIEW)
    return review, deps.store.get_task(review_id)


def list_department_reviews(
    deps: ReviewDeps,
    principal: Principal,
    department_id: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Any:
    _require_department(principal, Action.READ_REVIEW, department_id)
    return deps.store.by_department(department_id, None, limit, start_key)


def list_department_tasks(
    deps: ReviewDeps,
    principal: Principal,
    department_id: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Any:
    _require_department(principal, Action.HANDLE_RECTIFICATION, department_id)
    return deps.store.tasks_of_department(department_id, limit, start_key)


def _require_department(principal: Principal, action: Action, department_id: str) -> None:
    require(principal, action)
    missing = NotFound("未找到该部门", code="department_not_found")
    _require_or(principal, action, Resource(department_id=department_id), missing)


# ---- invitations and reminders ----------------------------------------------------------------


def invite(deps: ReviewDeps, handling_type: str, handling_id: str, *, strict: bool = False) -> None:
    """Called where a handling completes (applications, bookings, tickets, through the
    container's `handling_completed`): invite the person to rate and file the reminder
    (idempotent per handling). Not `strict`, a failure is only logged; `strict`, it is raised
    to a caller that keeps the completion marked pending for the repair job."""
    from chalicelib.observability import logger

    try:
        invite_person(deps, HandlingType(handling_type), handling_id)
    except Exception:
        if strict:
            raise
        logger.exception(
            "review invitation failed",
            extra={"handling_type": handling_type, "handling_id": handling_id},
        )


def invite_person(deps: ReviewDeps, handling_type: HandlingType, handling_id: str) -> bool:
    handling = resolve_handling(deps, handling_type, handling_id)
    if not handling.completed or not handling.person_user_id:
        return False  # nobody to invite (a window filing for someone without an account)

    now = deps.clock.now()
    user = handling.person_user_id
    notify(
        deps.notifier,
        f"review-invite:{handling.key}:{user}",
        RecipientKind.USER,
        user,
        "review.invitation",
        "请您评价本次服务",
        f"您办理的“{handling.title}”已办结，欢迎对本次服务作出评价（好差评）。",
        {"handling_type": handling_type.value, "handling_id": handling_id},
    )
    invitation = Invitation(
        handling_type.value, handling_id, user, handling.title, now, now + domain.REMIND_AFTER
    )
    if not deps.store.invite(invitation):
        return False
    file_due(
        deps.due,
        deps.clock,
        DueItem(
            REMINDER_KIND,
            f"{invitation.handling_type}#{handling_id}",
            invitation.remind_at,
            {"user_id": user, "title": handling.title},
        ),
    )
    return True


@dataclass
class JobReport:
    report_month: str | None = None
    report_built: bool = False
    failures: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "report_month": self.report_month,
            "report_built": self.report_built,
            "failures": self.failures,
        }


def run_jobs(deps: ReviewDeps) -> JobReport:
    """The schedule: the monthly report (reminders run on the due sweep: `remind_due`)."""
    from chalicelib.observability import logger

    report = JobReport()
    try:
        report.report_month, report.report_built = build_monthly_report_if_due(deps)
    except Exception:
        report.failures += 1
        logger.exception("monthly review report failed")
    return report


def remind_due(c: Any, item: DueItem, now: datetime) -> str:
    """The due sweep's handler for a reminder to rate: once, unless the person rated meanwhile
    (the notification's business key makes a rerun send nothing new)."""
    deps = ReviewDeps.from_container(c)
    handling_type, _, handling_id = item.subject_id.partition("#")
    key = f"{handling_type}#{handling_id}"
    user_id = item.data["user_id"]
    review_id = domain.review_id_of(key, ReviewKind.INITIAL)
    if deps.store.get_review(review_id) is not None:
        deps.store.finish_invitation(handling_type, handling_id, "rated")
        return "already_rated"
    notify(
        deps.notifier,
        f"review-remind:{key}:{user_id}",
        RecipientKind.USER,
        user_id,
        "review.reminder",
        "提醒：请您评价本次服务",
        f"您办理的“{item.data.get('title', '')}”已办结，您的评价将帮助我们改进服务。",
        {"handling_type": handling_type, "handling_id": handling_id},
    )
    deps.store.finish_invitation(handling_type, handling_id, "reminded")
    return "reminded"


# ---- the review stream: rectification and alerts ----------------------------------------------


def on_review_created(deps: ReviewDeps, review_id: str) -> Task | None:
    """Stream consumer step for a new review: a bad review opens its task; every review may
    trip the department's good-rate alert. Safe to run again for the same record."""
    review = deps.store.get_review(review_id)
    if review is None:
        return None
    task = open_rectification(deps, review) if domain.opens_task(review) else None
    if review.kind is ReviewKind.INITIAL:
        deps.store.count(review, "counted", 1, int(review.is_bad))
        check_alert(deps, review.department_id)
    return task


def _start(deps: ReviewDeps, task: Task, kind: str, name: str, limit: int) -> str:
    from chalicelib.service_layer import deadlines

    clock = deadlines.start_clock(
        deps.deadlines,
        subject_type=domain.SUBJECT_TYPE,
        subject_id=task.review_id,
        kind=kind,
        limit=limit,
        department_id=task.department_id,
        started_at=task.opened_at if name == "contact" or name == "rectify#1" else None,
        key=f"{task.review_id}:{name}",
        label=f"{task.handling_type.value}:{task.handling_id}",
    )
    return clock.clock_id


def open_rectification(deps: ReviewDeps, review: Review) -> Task:
    task = domain.open_task(review, deps.clock.now())
    created = deps.store.create_task(task)
    if not created:
        task = deps.store.get_task(review.review_id) or task
    if "contact" not in task.clocks or "rectify#1" not in task.clocks:
        clocks = {
            "contact": _start(deps, task, "contact", "contact", domain.CONTACT_DAYS),
            "rectify#1": _start(deps, task, "resolve", "rectify#1", domain.SIMPLE_DAYS),
        }
        task = _save_task(
            deps, review.review_id, lambda t: replace(t, clocks={**t.clocks, **clocks})
        )
    if created:
        record_change(
            deps.audit_log,
            SYSTEM,
            "rectification.opened",
            domain.SUBJECT_TYPE,
            review.review_id,
            None,
            {"state": task.state.value},
            {"department_id": task.department_id, "rating": review.rating},
        )
    _notify_department(deps, task, review)
    _sync_review(deps, task)
    return task


def _due_text(deps: ReviewDeps, clock_id: str | None) -> tuple[str, str | None]:
    clock = deps.deadlines.clocks.get(clock_id) if clock_id else None
    if clock is None or clock.due_at is None:
        return "（时限计算中）", None
    return clock.due_at.strftime("%Y-%m-%d %H:%M"), clock.due_at.isoformat()


def _notify_department(deps: ReviewDeps, task: Task, review: Review) -> None:
    contact_due, contact_iso = _due_text(deps, task.clocks.get("contact"))
    rectify_due, rectify_iso = _due_text(deps, task.clocks.get("rectify#1"))
    notify(
        deps.notifier,
        f"review:{review.review_id}:opened:{task.department_id}",
        RecipientKind.DEPARTMENT,
        task.department_id,
        "review.rectification_opened",
        f"差评整改：{domain.LEVELS[review.rating]}（{review.review_id}）",
        f"办事人对{_HANDLING_LABELS[review.handling_type]}作出"
        f"“{domain.LEVELS[review.rating]}”评价：{mask_text(review.comment[:80])}。"
        f"请于 {contact_due} 前联系办事人核实，{rectify_due} 前完成整改"
        f"（复杂情形{domain.COMPLEX_DAYS}个工作日）。",
        {
            "review_id": review.review_id,
            "subject_id": review.review_id,
            "handling_type": review.handling_type.value,
            "handling_id": review.handling_id,
            "rating": review.rating,
            "real_name": review.real_name,
            "contact_due_at": contact_iso,
            "rectify_due_at": rectify_iso,
        },
    )


_HANDLING_LABELS = {
    HandlingType.APPLICATION: "网上办件",
    HandlingType.BOOKING: "窗口服务",
    HandlingType.TICKET: "办不成事反映",
}


def check_alert(deps: ReviewDeps, department_id: str) -> bool:
    """Alert the department once per window when its rolling good rate is below the threshold."""
    policy: AlertPolicy = deps.store.alert_policy()
    now = deps.clock.now()
    today = now.astimezone(CHINA_TZ).date()
    first = today - timedelta(days=policy.window_days - 1)
    count, bad = deps.store.window_counts(department_id, first, today)
    low, rate = domain.needs_alert(policy, count, bad)
    if not low:
        return False
    window = domain.alert_window(policy, today)
    details = {"count": count, "good_rate": rate, "at": now.isoformat()}
    if deps.store.has_alert(department_id, window):
        return False
    # Outbox first (idempotent on its key), then the claim: a crash in between is retried by
    # the stream and still ends with one notification and one claim.
    notify(
        deps.notifier,
        f"review-alert:{department_id}:{window}",
        RecipientKind.DEPARTMENT,
        department_id,
        "review.good_rate_alert",
        "好评率预警",
        f"近{policy.window_days}天贵单位共收到{count}条评价，好评率{rate:.1%}，"
        f"低于{policy.good_rate_threshold:.0%}的预警线，请分析原因并改进服务。",
        {
            "department_id": department_id,
            "window": window,
            "reviews": count,
            "good_rate": rate,
            "threshold": policy.good_rate_threshold,
        },
    )
    claimed = deps.store.claim_alert(department_id, window, details)
    if claimed:
        record_change(
            deps.audit_log,
            SYSTEM,
            "review.alert",
            "department",
            department_id,
            None,
            details,
            {"window": window},
        )
    return claimed


def get_alert_policy(deps: ReviewDeps, principal: Principal) -> AlertPolicy:
    require(principal, Action.MANAGE_REVIEW_ALERTS)
    return deps.store.alert_policy()


def set_alert_policy(deps: ReviewDeps, principal: Principal, policy: AlertPolicy) -> AlertPolicy:
    require(principal, Action.MANAGE_REVIEW_ALERTS)
    before = deps.store.alert_policy()
    deps.store.put_alert_policy(policy)
    record_change(
        deps.audit_log,
        principal,
        "review.alert_policy_updated",
        "review_settings",
        "alerts",
        vars(before),
        vars(policy),
    )
    return policy


# ---- the rectification task -------------------------------------------------------------------


def _save_task(deps: ReviewDeps, review_id: str, change: Callable[[Task], Task]) -> Task:
    return retry_on_conflict(lambda: deps.store.save_task(change(_existing_task(deps, review_id))))


def _existing_task(deps: ReviewDeps, review_id: str) -> Task:
    return _found(deps.store.get_task(review_id), "该评价没有整改任务", "task_not_found")


F = TypeVar("F")


def _found(item: F | None, message: str, code: str) -> F:
    if item is None:
        raise NotFound(message, code=code)
    return item


def _sync_review(deps: ReviewDeps, task: Task) -> None:
    """Copy the task's outcome to the review: the monthly report reads reviews only."""

    def attempt() -> None:
        review = deps.store.get_review(task.review_id)
        if review is None:
            return
        updated = replace(
            review,
            task_state=task.state.value,
            contact_on_time=task.contact_on_time,
            rectify_on_time=task.rectify_on_time,
            called_back=task.call_back is not None and bool(task.call_back.get("reached")),
        )
        if updated != review:
            deps.store.save_review(updated)

    retry_on_conflict(attempt)


def _stop(deps: ReviewDeps, clock_id: str | None, actor: Principal) -> bool | None:
    """Stop a task clock; whether the work was on time (None: no such clock)."""
    from chalicelib.service_layer import deadlines

    if not clock_id:
        return None
    try:
        clock = deadlines.stop_clock(deps.deadlines, clock_id, outcome=Outcome.MET, actor=actor)
    except RuleViolation:
        clock = deadlines.get_clock(deps.deadlines, clock_id)  # stopped before (a retry)
    return clock.state is ClockState.MET


def get_task(deps: ReviewDeps, principal: Principal, review_id: str) -> Task:
    return _task_for(deps, principal, review_id, Action.READ_REVIEW)


def _task_for(deps: ReviewDeps, principal: Principal, review_id: str, action: Action) -> Task:
    review = _load_review(deps, principal, review_id, action)
    return _existing_task(deps, review.review_id)


def _after(deps: ReviewDeps, principal: Principal, before: Task, after: Task, event: str) -> Task:
    record_change(
        deps.audit_log,
        principal,
        f"rectification.{event}",
        domain.SUBJECT_TYPE,
        after.review_id,
        {"state": before.state.value, "round": before.round},
        {"state": after.state.value, "round": after.round},
        {"department_id": after.department_id},
    )
    _sync_review(deps, after)
    return after


def record_contact(
    deps: ReviewDeps,
    principal: Principal,
    review_id: str,
    *,
    method: str,
    note: str,
    complex_: bool,
) -> Task:
    before = _task_for(deps, principal, review_id, Action.HANDLE_RECTIFICATION)
    now = deps.clock.now()
    changed = domain.record_contact(before, method, note, complex_, principal.user_id, now)
    on_time = _stop(deps, before.clocks.get("contact"), principal)
    if complex_:
        _extend_for_complex(deps, before, principal)
    saved = _save_task(
        deps,
        review_id,
        lambda t: replace(changed, contact_on_time=on_time, version=t.version, clocks=t.clocks),
    )
    return _after(deps, principal, before, saved, "contacted")


def _extend_for_complex(deps: ReviewDeps, task: Task, principal: Principal) -> None:
    from chalicelib.service_layer import deadlines

    clock_id = task.clocks.get(task.rectify_key)
    if clock_id:
        deadlines.extend_clock(
            deps.deadlines,
            clock_id,
            amount=domain.COMPLEX_DAYS - domain.SIMPLE_DAYS,
            reason="复杂情形整改",
            approved_by=principal,
        )


def record_rectification(
    deps: ReviewDeps,
    principal: Principal,
    review_id: str,
    *,
    cause: str,
    measures: str,
    evidence: tuple[str, ...],
) -> Task:
    before = _task_for(deps, principal, review_id, Action.HANDLE_RECTIFICATION)
    now = deps.clock.now()
    changed = domain.record_rectification(before, cause, measures, evidence, principal.user_id, now)
    on_time = _stop(deps, before.clocks.get(before.rectify_key), principal)
    all_on_time = bool(on_time) and before.rectify_on_time is not False
    saved = _save_task(
        deps,
        review_id,
        lambda t: replace(changed, rectify_on_time=all_on_time, version=t.version),
    )
    notify(
        deps.notifier,
        f"review:{review_id}:rectified:{before.round}:{SUPERVISOR_DEPARTMENT_ID}",
        RecipientKind.DEPARTMENT,
        SUPERVISOR_DEPARTMENT_ID,
        "review.rectification_submitted",
        f"差评整改待回访验收（{review_id}）",
        "承办部门已提交差评整改情况，请回访办事人并验收。",
        {"review_id": review_id, "department_id": before.department_id},
    )
    return _after(deps, principal, before, saved, "rectified")


def record_call_back(
    deps: ReviewDeps,
    principal: Principal,
    review_id: str,
    *,
    reached: bool,
    satisfied: bool | None,
    note: str,
) -> Task:
    before = _task_for(deps, principal, review_id, Action.SUPERVISE_RECTIFICATION)
    changed = domain.record_call_back(
        before, reached, satisfied, note, principal.user_id, deps.clock.now()
    )
    saved = _save_task(deps, review_id, lambda t: replace(changed, version=t.version))
    return _after(deps, principal, before, saved, "called_back")


def accept_rectification(
    deps: ReviewDeps, principal: Principal, review_id: str, *, note: str
) -> Task:
    before = _task_for(deps, principal, review_id, Action.SUPERVISE_RECTIFICATION)
    changed = domain.accept(before, note, principal.user_id, deps.clock.now())
    saved = _save_task(deps, review_id, lambda t: replace(changed, version=t.version))
    review = deps.store.get_review(review_id)
    if review is not None and review.real_name:
        notify(
            deps.notifier,
            f"review:{review_id}:closed:{review.rater_user_id}",
            RecipientKind.USER,
            review.rater_user_id,
            "review.rectification_closed",
            "您反映的问题已整改",
            "您对本次服务的评价已核实整改，欢迎您追加评价。",
            {"review_id": review_id},
        )
    return _after(deps, principal, before, saved, "accepted")


def send_back(deps: ReviewDeps, principal: Principal, review_id: str, *, note: str) -> Task:
    before = _task_for(deps, principal, review_id, Action.SUPERVISE_RECTIFICATION)
    changed = domain.send_back(before, note, principal.user_id, deps.clock.now())
    clock_id = _start(deps, changed, "resolve", changed.rectify_key, domain.SEND_BACK_DAYS)
    saved = _save_task(
        deps,
        review_id,
        lambda t: replace(
            changed, clocks={**t.clocks, changed.rectify_key: clock_id}, version=t.version
        ),
    )
    due, _ = _due_text(deps, clock_id)
    notify(
        deps.notifier,
        f"review:{review_id}:sent_back:{saved.round}:{saved.department_id}",
        RecipientKind.DEPARTMENT,
        saved.department_id,
        "review.rectification_sent_back",
        f"差评整改被退回（{review_id}）",
        f"区政务办退回了整改：{mask_text(note[:80])}。请于 {due} 前重新整改。",
        {"review_id": review_id, "subject_id": review_id, "round": saved.round},
    )
    return _after(deps, principal, before, saved, "sent_back")


# ---- appeals ----------------------------------------------------------------------------------


def _change_review(deps: ReviewDeps, review_id: str, change: Callable[[Review], Review]) -> Review:
    return retry_on_conflict(
        lambda: deps.store.save_review(change(_existing_review(deps, review_id)))
    )


def _existing_review(deps: ReviewDeps, review_id: str) -> Review:
    return _found(deps.store.get_review(review_id), "未找到该评价", "review_not_found")


def file_appeal(
    deps: ReviewDeps,
    principal: Principal,
    review_id: str,
    *,
    reason: str,
    statement: str,
    evidence: tuple[str, ...],
) -> Review:
    _load_review(deps, principal, review_id, Action.APPEAL_REVIEW)
    now = deps.clock.now()
    saved = _change_review(
        deps,
        review_id,
        lambda r: domain.appeal(r, reason, statement, evidence, principal.user_id, now),
    )
    notify(
        deps.notifier,
        f"review:{review_id}:appeal:{SUPERVISOR_DEPARTMENT_ID}",
        RecipientKind.DEPARTMENT,
        SUPERVISOR_DEPARTMENT_ID,
        "review.appeal_filed",
        f"差评申诉待复核（{review_id}）",
        f"承办部门以“{domain.APPEAL_REASONS[reason]}”为由提出申诉，请复核。",
        {"review_id": review_id, "department_id": saved.department_id},
    )
    record_change(
        deps.audit_log,
        principal,
        "review.appealed",
        "review",
        review_id,
        {"appeal": None},
        {"appeal": "pending", "reason": reason},
    )
    return saved


def decide_appeal(
    deps: ReviewDeps, principal: Principal, review_id: str, *, uphold: bool, note: str
) -> Review:
    _load_review(deps, principal, review_id, Action.DECIDE_APPEAL)
    now = deps.clock.now()
    saved = _change_review(
        deps, review_id, lambda r: domain.decide_appeal(r, uphold, note, principal.user_id, now)
    )
    outcome = "upheld" if uphold else "rejected"
    if uphold and saved.kind is ReviewKind.INITIAL:
        deps.store.count(saved, "excluded", -1, -int(saved.is_bad))  # out of the window's rate
    notify(
        deps.notifier,
        f"review:{review_id}:appeal_{outcome}:{saved.department_id}",
        RecipientKind.DEPARTMENT,
        saved.department_id,
        f"review.appeal_{outcome}",
        f"差评申诉复核结果（{review_id}）",
        "申诉成立，该评价不计入排名，存档备查。"
        if uphold
        else f"申诉不成立：{mask_text(note[:80])}。",
        {"review_id": review_id, "upheld": uphold},
    )
    record_change(
        deps.audit_log,
        principal,
        f"review.appeal_{outcome}",
        "review",
        review_id,
        {"appeal": "pending"},
        {"appeal": outcome},
    )
    return saved


# ---- the monthly report -----------------------------------------------------------------------


def check_month(month: str) -> str:
    if not _MONTH.match(month or ""):
        raise InvalidInput("月份格式应为 YYYY-MM", code="invalid_month")
    return month


def compute_report(deps: ReviewDeps, month: str) -> domain.MonthlyReport:
    """One pass over the month's reviews (MONTH_SHARDS Queries on the month index)."""
    reviews = list(deps.store.reviews_in_month(month))
    names = _names(deps, {r.department_id for r in reviews}, deps.directory.get_department)
    centres = _names(deps, {r.centre_id for r in reviews if r.centre_id}, deps.bookings.get_center)
    return domain.build_report(month, reviews, names, centres, _bottom_two(deps, month))


def _names(deps: ReviewDeps, ids: set[str], get: Any) -> dict[str, str]:
    names = {}
    for key in sorted(ids):
        found = get(key)
        names[key] = found.name if found is not None else key
    return names


def _bottom_two(deps: ReviewDeps, month: str) -> frozenset[str]:
    previous = domain.previous_month(month)
    stored = deps.store.get_report(previous)
    if stored is None:
        reviews = deps.store.reviews_in_month(previous)
        rows = domain.build_report(previous, reviews, {}, {}, frozenset()).departments
        return frozenset(r.key for r in rows if r.bottom_two)
    return frozenset(r["id"] for r in stored["departments"] if r["bottom_two"])


def read_report(deps: ReviewDeps, principal: Principal, month: str) -> dict[str, Any]:
    """The stored report of a closed month; a month not yet built is computed as of now."""
    require(principal, Action.READ_REVIEW_REPORTS)
    check_month(month)
    stored = deps.store.get_report(month)
    if stored is not None:
        return {**stored, "final": True}
    report = compute_report(deps, month).to_dict()
    return {**report, "final": False, "built_at": deps.clock.now().isoformat()}


def report_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = [label for _, label in domain.CSV_COLUMNS]
    writer.writerow(header)
    for scope, rows in (("部门", report["departments"]), ("中心", report["centres"])):
        for row in rows:
            values = {"scope": scope, **row}
            writer.writerow([domain.csv_cell(values[name]) for name, _ in domain.CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()  # BOM: spreadsheet programs read it as UTF-8


def first_working_day(deps: ReviewDeps, month_first: date) -> date:
    return deps.deadlines.calendar().next_working_day(month_first)


def build_monthly_report_if_due(deps: ReviewDeps) -> tuple[str, bool]:
    """On (or after) the first working day of a month, build last month's report once and tell
    the district office. Later runs find it stored and do nothing."""
    now = deps.clock.now().astimezone(CHINA_TZ)
    month = domain.previous_month(now.strftime("%Y-%m"))
    if now.date() < first_working_day(deps, now.date().replace(day=1)):
        return month, False
    if deps.store.get_report(month) is not None:
        return month, False
    report = {**compute_report(deps, month).to_dict(), "built_at": now.isoformat()}
    if not deps.store.put_report_once(month, report):
        return month, False
    talk = [r["name"] for r in report["departments"] if r["talk"]]
    notify(
        deps.notifier,
        f"review-report:{month}:{SUPERVISOR_DEPARTMENT_ID}",
        RecipientKind.DEPARTMENT,
        SUPERVISOR_DEPARTMENT_ID,
        "review.monthly_report",
        f"{month} 好差评月度分析报告",
        f"{month} 好差评月度报告已生成，共{len(report['departments'])}个部门参与排名"
        + (f"；连续两个月排名末两位、建议约谈：{'、'.join(talk)}。" if talk else "。"),
        {"month": month, "talk": [r["id"] for r in report["departments"] if r["talk"]]},
    )
    record_change(
        deps.audit_log,
        SYSTEM,
        "review.monthly_report_built",
        "review_report",
        month,
        None,
        {"departments": len(report["departments"]), "centres": len(report["centres"])},
    )
    return month, True
