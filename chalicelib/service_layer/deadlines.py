"""Deadline use cases: start, pause, resume, extend and stop clocks; climbing the escalation
ladder when a clock's due item comes up in the one due sweep (`attend_due`); monthly figures.

Other capabilities (tickets, reviews, applications, knowledge base) call `start_clock` and friends
with a `DeadlineDeps`; nothing else in the system computes a deadline.

    from chalicelib.bootstrap import container
    from chalicelib.service_layer import deadlines

    deps = deadlines.DeadlineDeps.from_container(container())
    clock = deadlines.start_clock(
        deps, subject_type="ticket", subject_id=ticket_id, kind="reply", limit=5,
        department_id=dept, key=f"{ticket_id}:reply",
    )
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain import clocks as domain
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.calendar import CHINA_TZ, DayEnd, WorkingCalendar
from chalicelib.domain.clocks import (
    Clock,
    ClockState,
    Ladder,
    LimitUnit,
    Outcome,
    Recipient,
    StepClaim,
)
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.ports import Page

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import Directory
    from chalicelib.service_layer.ports.calendar import CalendarStore, RecomputeQueue
    from chalicelib.service_layer.ports.deadlines import ClockStore, EscalationStore


_SAVE_ATTEMPTS = 3
_CLOCK_ID_NAMESPACE = uuid.UUID("6f3b2a1c-58d4-4c1e-9b7a-0d2e4f6a8c10")


class TimeSource(Protocol):
    def now(self) -> datetime: ...


def emit_metric(name: str, kind: str, department_id: str | None, value: float = 1) -> None:
    """A deadline metric, dimensioned by clock kind and department."""
    from chalicelib.observability import emit_metric as emit

    emit(name, value, kind=kind, department=department_id or "none")


@dataclass
class DeadlineDeps:
    """What the deadline use cases need. `clock` is the injected time source."""

    clocks: ClockStore
    escalations: EscalationStore
    calendars: CalendarStore
    notifier: Notifier
    audit_log: AuditLog
    clock: TimeSource
    jobs: RecomputeQueue | None = None
    directory: Directory | None = None  # department names for messages
    metric: Callable[..., None] = emit_metric

    def recompute_queue(self) -> RecomputeQueue:
        if self.jobs is None:
            raise RuntimeError("DeadlineDeps needs the calendar-recompute queue for this")
        return self.jobs

    @classmethod
    def from_container(cls, c: Any) -> DeadlineDeps:
        return cls(
            clocks=c.clock_store,
            escalations=c.escalation_store,
            calendars=c.calendar_store,
            notifier=c.notifier,
            audit_log=c.audit_log,
            clock=c.clock,
            jobs=c.calendar_jobs,
            directory=c.directory,
        )

    def calendar(self) -> WorkingCalendar:
        return self.calendars.calendar()


def _audit(
    deps: DeadlineDeps,
    actor: Principal,
    action: str,
    clock: Clock,
    before: Clock | None,
    **details: Any,
) -> None:
    record_change(
        deps.audit_log,
        actor,
        action,
        "clock",
        clock.clock_id,
        domain.snapshot(before) if before else None,
        domain.snapshot(clock),
        {
            "subject_type": clock.subject_type,
            "subject_id": clock.subject_id,
            "kind": clock.kind,
            "department_id": clock.department_id,
            **details,
        },
    )


def _count(deps: DeadlineDeps, name: str, clock: Clock, now: datetime) -> None:
    """A stored monthly counter (for reports) and a Powertools metric (for dashboards)."""
    month = now.astimezone(CHINA_TZ).strftime("%Y-%m")
    deps.escalations.increment(month, clock.kind, clock.department_id, name)
    deps.metric(f"deadline_{name}", clock.kind, clock.department_id)


# ---- clock lifecycle ----------------------------------------------------------------------


def start_clock(
    deps: DeadlineDeps,
    *,
    subject_type: str,
    subject_id: str,
    kind: str,
    limit: int,
    unit: LimitUnit = LimitUnit.WORKING_DAYS,
    department_id: str | None = None,
    owner_id: str | None = None,
    started_at: datetime | None = None,
    key: str | None = None,
    day_end: DayEnd | None = None,
    label: str = "",
    actor: Principal = SYSTEM,
) -> Clock:
    """Start a clock. With `key` (e.g. "<ticket>:reply") starting twice answers the same clock,
    so an at-least-once caller cannot start two."""
    now = deps.clock.now()
    clock_id = uuid.uuid5(_CLOCK_ID_NAMESPACE, key).hex if key else uuid.uuid4().hex
    ladder = deps.escalations.get_ladder(kind) or domain.policy_for(kind).ladder
    clock = domain.new_clock(
        clock_id=clock_id,
        subject_type=subject_type,
        subject_id=subject_id,
        kind=kind,
        limit=limit,
        unit=LimitUnit(unit),
        started_at=started_at or now,
        policy=domain.policy_for(kind),
        ladder=ladder,
        day_end=day_end,
        department_id=department_id,
        owner_id=owner_id,
        label=label,
    )
    calendar = deps.calendar()
    created = deps.clocks.create(domain.refresh(clock, calendar, now), now)
    if created is None:
        existing = deps.clocks.get(clock_id)
        if existing is None:
            raise Conflict("计时创建冲突，请重试", code="clock_create_conflict")
        return existing
    _audit(deps, actor, "clock.started", created, None, limit=limit, unit=created.unit.value)
    _count(deps, "started", created, now)
    if created.state is ClockState.BREACHED:
        _count(deps, "breached", created, now)
    return created


def get_clock(deps: DeadlineDeps, clock_id: str) -> Clock:
    clock = deps.clocks.get(clock_id)
    if clock is None:
        raise NotFound("计时不存在", code="clock_not_found")
    return clock


def _change(
    deps: DeadlineDeps,
    clock_id: str,
    action: str,
    actor: Principal,
    change: Callable[[Clock, datetime, WorkingCalendar], Clock],
    **details: Any,
) -> tuple[Clock, Clock]:
    """Read, change, write with the version check; retried when someone wrote in between."""
    calendar = deps.calendar()
    for attempt in range(_SAVE_ATTEMPTS):
        before = get_clock(deps, clock_id)
        now = deps.clock.now()
        after = change(before, now, calendar)
        try:
            saved = deps.clocks.save(after, now)
        except Conflict:
            if attempt == _SAVE_ATTEMPTS - 1:
                raise
            continue
        _audit(deps, actor, action, saved, before, **details)
        if before.state is not ClockState.BREACHED and saved.state is ClockState.BREACHED:
            _count(deps, "breached", saved, now)
        return before, saved
    raise AssertionError("unreachable")


def pause_clock(
    deps: DeadlineDeps, clock_id: str, *, reason: str, actor: Principal = SYSTEM
) -> Clock:
    """Stop counting (e.g. waiting for the citizen's 补正): the clock leaves the due index."""
    return _change(
        deps,
        clock_id,
        "clock.paused",
        actor,
        lambda c, now, cal: domain.pause(c, now, reason, cal),
        reason=reason,
    )[1]


def resume_clock(deps: DeadlineDeps, clock_id: str, *, actor: Principal = SYSTEM) -> Clock:
    """Count again; the deadline moves by the working days (or service hours) paused."""
    return _change(
        deps, clock_id, "clock.resumed", actor, lambda c, now, cal: domain.resume(c, now, cal)
    )[1]


def extend_clock(
    deps: DeadlineDeps,
    clock_id: str,
    *,
    amount: int,
    reason: str,
    approved_by: Principal,
) -> Clock:
    """Apply an approved extension (in the clock's unit), once, before the deadline."""
    return _change(
        deps,
        clock_id,
        "clock.extended",
        approved_by,
        lambda c, now, cal: domain.extend(c, amount, reason, approved_by.user_id, now, cal),
        amount=amount,
        reason=reason,
    )[1]


def stop_clock(
    deps: DeadlineDeps,
    clock_id: str,
    *,
    outcome: Outcome = Outcome.MET,
    actor: Principal = SYSTEM,
    reason: str = "",
) -> Clock:
    """Close a clock: met (the work is done, on time or late) or cancelled."""
    late: list[bool] = []

    def close(c: Clock, now: datetime, cal: WorkingCalendar) -> Clock:
        closed, was_late = domain.stop(c, Outcome(outcome), now, cal)
        late[:] = [was_late]
        return closed

    _, saved = _change(
        deps, clock_id, f"clock.{Outcome(outcome).value}", actor, close, reason=reason
    )
    now = saved.closed_at or deps.clock.now()
    if saved.state is ClockState.CANCELLED:
        _count(deps, "cancelled", saved, now)
    else:
        on_time = not (late and late[0])
        _count(deps, "met" if on_time else "completed_late", saved, now)
        # 1 on time, 0 late: the metric's average is the on-time rate.
        deps.metric("deadline_on_time", saved.kind, saved.department_id, 1.0 if on_time else 0.0)
    return saved


# ---- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockPage:
    items: list[Clock]
    last_key: dict[str, Any] | None


def list_clocks(
    deps: DeadlineDeps,
    principal: Principal,
    subject_type: str,
    subject_id: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> ClockPage:
    """A subject's clocks; department staff see only their department's."""
    require(principal, Action.READ_CLOCKS)
    page = deps.clocks.by_subject(subject_type, subject_id, limit, start_key)
    visible = [c for c in page.items if can(principal, Action.READ_CLOCKS, _resource(c))]
    return ClockPage(visible, page.last_key)


def read_clock(
    deps: DeadlineDeps, principal: Principal, clock_id: str
) -> tuple[Clock, list[dict[str, Any]]]:
    require(principal, Action.READ_CLOCKS)
    clock = deps.clocks.get(clock_id)
    if clock is None:
        raise NotFound("计时不存在", code="clock_not_found")
    require(principal, Action.READ_CLOCKS, _resource(clock))
    return clock, deps.escalations.steps_of(clock_id)


def _resource(clock: Clock) -> Resource:
    return Resource(owner_user_id=None, department_id=clock.department_id)


# ---- the ladder, from the due sweep ---------------------------------------------------------


@dataclass
class SweepReport:
    """What attending clocks did (one clock per due item in the due sweep)."""

    started_at: datetime
    steps_taken: list[str] = field(default_factory=list)  # "<clock_id>:<step>"
    breached: int = 0


def attend_due(context: Any, item: DueItem, now: datetime) -> str | datetime | None:
    """The due sweep's handler for a clock (topology.DUE_KINDS): take its due ladder steps.
    Answers "done" when the clock needs no more attention, its next attention time (the item
    is filed again then), or None while a step is being taken elsewhere (it stays due)."""
    deps = DeadlineDeps.from_container(context)
    clock = deps.clocks.get(item.subject_id)
    if clock is None or not clock.in_due_index or clock.next_attention_at is None:
        return "done"
    if clock.next_attention_at > now:
        return clock.next_attention_at
    stored = _attend(deps, clock, now, deps.calendar(), {}, SweepReport(started_at=now))
    if not stored.in_due_index or stored.next_attention_at is None:
        return "done"
    if stored.next_attention_at <= now:
        return None  # a step is being taken by another sweep: stay due
    if stored is not clock:
        # Saved: its due item was filed again at the later time in the same write; finishing
        # the item the sweep ran then finds it changed and leaves it.
        return "attended"
    return stored.next_attention_at


def _attend(
    deps: DeadlineDeps,
    clock: Clock,
    now: datetime,
    calendar: WorkingCalendar,
    names: dict[str, str],
    report: SweepReport,
) -> Clock:
    """Take the clock's due steps; answers the clock as stored afterwards."""
    done: set[str] = set()
    for step in domain.steps_due(clock, calendar, now):
        overdue = domain.overdue_working_days(clock, calendar, now)
        claim = deps.escalations.claim_step(
            clock, step.name, now, _step_details(clock, step, overdue)
        )
        if claim == StepClaim.BUSY:
            continue  # another sweep is taking it; the clock stays due until it is done
        if claim == StepClaim.TAKEN:
            _take_step(deps, clock, step, overdue, now, names)
            deps.escalations.finish_step(clock.clock_id, step.name, now)
            report.steps_taken.append(f"{clock.clock_id}:{step.name}")
        done.add(step.name)
    newly_breached, stored = _record_progress(deps, clock, done, now, calendar)
    if newly_breached:
        report.breached += 1
    return stored


def _record_progress(
    deps: DeadlineDeps, clock: Clock, done: set[str], now: datetime, calendar: WorkingCalendar
) -> tuple[bool, Clock]:
    """Store the steps taken and the next attention time (the clock's due item moves with it);
    answers whether the clock has just been marked breached, and the clock as stored. Another
    writer in between: re-read and merge."""
    for attempt in range(_SAVE_ATTEMPTS):
        updated = domain.mark_steps_done(clock, done, calendar, now)
        if updated == clock:
            return False, clock
        try:
            saved = deps.clocks.save(updated, now)
        except Conflict:
            fresh = deps.clocks.get(clock.clock_id)
            if fresh is None or attempt == _SAVE_ATTEMPTS - 1:
                raise
            clock = fresh
            continue
        newly_breached = (
            clock.state is not ClockState.BREACHED and saved.state is ClockState.BREACHED
        )
        if newly_breached:
            _audit(deps, SYSTEM, "clock.breached", saved, clock)
            _count(deps, "breached", saved, now)
        return newly_breached, saved
    raise AssertionError("unreachable")


def _step_details(clock: Clock, step: domain.LadderStep, overdue: int) -> dict[str, Any]:
    return {
        "subject_type": clock.subject_type,
        "subject_id": clock.subject_id,
        "kind": clock.kind,
        "department_id": clock.department_id,
        "owner_id": clock.owner_id,
        "due_at": clock.due_at.isoformat() if clock.due_at else None,
        "overdue_working_days": overdue,
        "trigger": step.trigger.value,
        "recipient": step.recipient.value,
    }


def _take_step(
    deps: DeadlineDeps,
    clock: Clock,
    step: domain.LadderStep,
    overdue: int,
    now: datetime,
    names: dict[str, str],
) -> None:
    kind, recipient = _recipient(clock, step.recipient)
    text = {"overdue": str(overdue), "department": _department_name(deps, clock, names)}
    deps.notifier.notify(
        NotificationRequest(
            business_key=f"clock:{clock.clock_id}:{step.name}",
            recipient_kind=kind,
            recipient_id=recipient,
            category=step.category or f"deadline.{step.name}",
            title=domain.render(step.title, clock, **text),
            body=domain.render(step.body, clock, **text),
            data={
                "clock_id": clock.clock_id,
                "subject_type": clock.subject_type,
                "subject_id": clock.subject_id,
                "kind": clock.kind,
                "step": step.name,
                "due_at": clock.due_at.isoformat() if clock.due_at else None,
                "overdue_working_days": overdue,
            },
            correlation_id=get_correlation_id(),
        )
    )
    _audit(
        deps,
        SYSTEM,
        f"clock.escalated.{step.name}",
        clock,
        None,
        step=step.name,
        recipient_kind=kind.value,
        recipient_id=recipient,
        overdue_working_days=overdue,
    )
    _count(deps, f"escalation_{step.name}", clock, now)


def _recipient(clock: Clock, who: Recipient) -> tuple[RecipientKind, str]:
    if who is Recipient.SUPERVISOR:
        return RecipientKind.DEPARTMENT, clock.ladder.supervisor_department_id
    if who is Recipient.OWNER and clock.owner_id:
        return RecipientKind.USER, clock.owner_id
    if clock.department_id:
        return RecipientKind.DEPARTMENT, clock.department_id
    return RecipientKind.USER, clock.owner_id or ""


def _department_name(deps: DeadlineDeps, clock: Clock, names: dict[str, str]) -> str:
    if not clock.department_id:
        return "责任人"
    if clock.department_id not in names:
        found = deps.directory.get_department(clock.department_id) if deps.directory else None
        names[clock.department_id] = found.name if found else clock.department_id
    return names[clock.department_id]


# ---- figures for reports --------------------------------------------------------------------


@dataclass(frozen=True)
class KindDepartmentFigures:
    kind: str
    department_id: str | None
    counts: dict[str, int]

    @property
    def on_time_rate(self) -> float | None:
        """Closed on time over all clocks that were closed or went past their deadline."""
        met = self.counts.get("met", 0)
        judged = met + self.counts.get("breached", 0)
        return round(met / judged, 4) if judged else None


def monthly_figures(
    deps: DeadlineDeps, principal: Principal, month: str
) -> list[KindDepartmentFigures]:
    """Stored counters of one month (YYYY-MM) by clock kind and department."""
    require(principal, Action.READ_CLOCKS)
    rows: dict[tuple[str, str | None], dict[str, int]] = {}
    for kind, department, name, total in deps.escalations.counters(month):
        rows.setdefault((kind, department), {})[name] = total
    return [
        KindDepartmentFigures(kind, department, counts)
        for (kind, department), counts in sorted(
            rows.items(), key=lambda r: (r[0][0], r[0][1] or "")
        )
        if can(principal, Action.READ_CLOCKS, Resource(department_id=department))
    ]


def escalation_records(
    deps: DeadlineDeps,
    principal: Principal,
    step: str,
    month: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Page[dict[str, Any]]:
    """Steps taken in a month, e.g. the 督办 ("supervise") or 通报 ("report") list."""
    require(principal, Action.READ_CLOCKS)
    page = deps.escalations.steps_in_month(step, month, limit, start_key)
    visible = [
        r
        for r in page.items
        if can(principal, Action.READ_CLOCKS, Resource(department_id=r.get("department_id")))
    ]
    return Page(visible, page.last_key)


# ---- ladders as data ----------------------------------------------------------------------


def ladder_for(deps: DeadlineDeps, principal: Principal, kind: str) -> tuple[Ladder, bool]:
    """The ladder new clocks of this kind get, and whether an admin configured it."""
    require(principal, Action.MANAGE_ESCALATION)
    domain.check_name(kind, "计时类型")
    override = deps.escalations.get_ladder(kind)
    return (override, True) if override else (domain.policy_for(kind).ladder, False)


def configure_ladder(deps: DeadlineDeps, principal: Principal, kind: str, ladder: Ladder) -> Ladder:
    """Set the ladder for clocks of `kind` started from now on (running clocks keep theirs)."""
    require(principal, Action.MANAGE_ESCALATION)
    domain.check_name(kind, "计时类型")
    if not ladder.steps:
        raise InvalidInput("升级步骤不能为空", code="invalid_ladder")
    before = deps.escalations.get_ladder(kind)
    now = deps.clock.now()
    deps.escalations.put_ladder(kind, ladder, principal.user_id, now)
    deps.audit_log.append(
        AuditEntry(
            actor_id=principal.user_id,
            actor_role=principal.role.value,
            action="clock.ladder_configured",
            subject_type="escalation_ladder",
            subject_id=kind,
            before=before.to_dict() if before else None,
            after=ladder.to_dict(),
            correlation_id=get_correlation_id(),
        )
    )
    return ladder


# ---- recompute after an official calendar ------------------------------------------------


@dataclass
class RecomputeReport:
    year: int
    examined: int = 0
    changed: int = 0
    notified: int = 0
    continuation: dict[str, Any] | None = None


RECOMPUTE_PAGE = 100
RECOMPUTE_BUDGET = 500


def recompute_year(deps: DeadlineDeps, job: dict[str, Any]) -> RecomputeReport:
    """Recompute every open clock whose deadline falls in `job["year"]` (and those due the next
    year that started in it). Idempotent: an unchanged clock is not written, a changed one is
    notified once per calendar version. A long job continues in a follow-up message."""
    year, version = int(job["year"]), int(job.get("version", 0))
    position = job.get("cursor") or {"phase": 0, "shard": 0, "key": None}
    report = RecomputeReport(year)
    calendar = deps.calendar()
    phases = [(year, None), (year + 1, datetime(year + 1, 1, 1, tzinfo=CHINA_TZ))]
    phase, shard, key = position["phase"], position["shard"], position["key"]
    while phase < len(phases):
        due_year, started_before = phases[phase]
        page = deps.clocks.open_due_in_year(due_year, shard, started_before, RECOMPUTE_PAGE, key)
        for clock in page.items:
            report.examined += 1
            _recompute_clock(deps, clock, calendar, year, version, report)
        key = page.last_key
        if key is None:
            shard += 1
            if shard >= deps.clocks.shards:
                phase, shard = phase + 1, 0
        if phase < len(phases) and report.examined >= RECOMPUTE_BUDGET:
            report.continuation = {
                **job,
                "cursor": {"phase": phase, "shard": shard, "key": key},
            }
            deps.recompute_queue().send(report.continuation)
            return report
    deps.audit_log.append(
        AuditEntry(
            actor_id=SYSTEM.user_id,
            actor_role=SYSTEM.role.value,
            action="calendar.recompute_completed",
            subject_type="calendar_year",
            subject_id=str(year),
            after={"version": version},
            correlation_id=get_correlation_id(),
            details={
                "requested_by": job.get("requested_by"),
                "changed_in_last_part": report.changed,
            },
        )
    )
    return report


def _recompute_clock(
    deps: DeadlineDeps,
    clock: Clock,
    calendar: WorkingCalendar,
    year: int,
    version: int,
    report: RecomputeReport,
) -> None:
    for attempt in range(_SAVE_ATTEMPTS):
        now = deps.clock.now()
        updated = domain.refresh(clock, calendar, now)
        moved = updated.due_at != clock.due_at
        if not moved and updated.provisional == clock.provisional:
            return
        try:
            saved = deps.clocks.save(updated, now)
        except Conflict:
            fresh = deps.clocks.get(clock.clock_id)
            if fresh is None or not fresh.is_open or attempt == _SAVE_ATTEMPTS - 1:
                raise
            clock = fresh
            continue
        report.changed += 1
        _audit(deps, SYSTEM, "clock.deadline_recomputed", saved, clock, year=year, version=version)
        if clock.state is not ClockState.BREACHED and saved.state is ClockState.BREACHED:
            _count(deps, "breached", saved, now)
        if moved:
            _notify_moved(deps, clock, saved, year, version)
            report.notified += 1
        return


def _notify_moved(deps: DeadlineDeps, before: Clock, after: Clock, year: int, version: int) -> None:
    kind, recipient = _recipient(after, Recipient.OWNER)
    values = after.label_values()
    old = before.due_at.strftime("%Y-%m-%d %H:%M") if before.due_at else "（无）"
    deps.notifier.notify(
        NotificationRequest(
            business_key=f"clock:{after.clock_id}:recomputed:{year}:v{version}",
            recipient_kind=kind,
            recipient_id=recipient,
            category="deadline.recomputed",
            title=f"时限调整：{values['subject']}{values['kind']}",
            body=(
                f"{year}年官方节假日安排已发布，{values['subject']}（{values['subject_id']}）的"
                f"{values['kind']}时限由 {old} 调整为 {values['due']}。"
            ),
            data={
                "clock_id": after.clock_id,
                "subject_type": after.subject_type,
                "subject_id": after.subject_id,
                "kind": after.kind,
                "previous_due_at": before.due_at.isoformat() if before.due_at else None,
                "due_at": after.due_at.isoformat() if after.due_at else None,
                "calendar_year": year,
                "calendar_version": version,
            },
            correlation_id=get_correlation_id(),
        )
    )
