"""Deadline clocks and their escalation ladder.

A clock belongs to a subject (ticket, rectification, application, grant, question) and has a kind
(contact, reply, resolve, ...), a limit in working days or in service hours, a start, pauses (time
paused does not count: waiting for the citizen), an optional approved extension and a state.
Several clocks may run on one subject at once.

Everything here is pure: due times, ladder step times and state changes are computed from the
clock, a `WorkingCalendar` and an instant the caller passes in.

State: `running` and `paused` are open; `met` (closed on time) and `cancelled` are closed;
`breached` means the deadline passed, and the clock stays open (the ladder keeps climbing) until
it is stopped (`closed_at` set).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import (
    CHINA_TZ,
    DayEnd,
    ServiceHours,
    WorkingCalendar,
    day_window,
    deadline_at,
)
from chalicelib.domain.errors import InvalidInput, RuleViolation

# The district government-service office supervises (督办) and reports (通报) overdue work.
SUPERVISOR_DEPARTMENT_ID = "dept-zwb"
# The kind of the due items (domain/due.py) that bring a clock to the sweep at its next
# attention time; the item's subject is the clock id.
DUE_KIND = "clock"


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


def deadline_state(state: str, due_at: datetime | None, now: datetime) -> str:
    """The state of a deadline as every view reports it: a running one past its due moment
    is breached, before or after the sweep has recorded it."""
    if state == ClockState.RUNNING and due_at is not None and now > due_at:
        return ClockState.BREACHED.value
    return str(state)


class LimitUnit(StrEnum):
    WORKING_DAYS = "working_days"
    HOURS = "hours"  # service hours of working days


class Outcome(StrEnum):
    MET = "met"  # the promised work was done (on time or late)
    CANCELLED = "cancelled"  # the clock no longer applies (e.g. case withdrawn)


class StepClaim(StrEnum):
    """What claiming a ladder step answered."""

    TAKEN = "taken"  # this caller must perform the step's side effects
    DONE = "done"  # somebody already performed it
    BUSY = "busy"  # somebody is performing it right now


class Trigger(StrEnum):
    SHARE_USED = "share_used"  # value: share of the limit used, e.g. 0.8
    AT_DUE = "at_due"  # at the deadline
    OVERDUE_WORKING_DAYS = "overdue_working_days"  # value: working days past the deadline


class Recipient(StrEnum):
    RESPONSIBLE = "responsible"  # the handling department, else the owner
    OWNER = "owner"  # the person the clock's owner_id names
    SUPERVISOR = "supervisor"  # the ladder's supervising department (区政务服务办公室)


SUBJECT_LABELS = {
    "ticket": "办不成事工单",
    "rectification": "差评整改",
    "application": "办件",
    "grant": "免申即享事项",
    "question": "知识库问题",
    "kb_readiness": "政策知识库答复",
}

KIND_LABELS = {
    "contact": "联系",
    "reply": "答复",
    "resolve": "办结",
    "call_back": "回访",
    "supplement": "补正",
    "confirm": "确认",
    "answer": "解答",
    "decision": "审批决定",
    "dispatch": "派单",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class LadderStep:
    name: str  # stable id, part of the notification business key
    trigger: Trigger
    value: float = 0
    recipient: Recipient = Recipient.RESPONSIBLE
    category: str = ""  # notification category, e.g. "deadline.warning"
    title: str = ""  # Chinese; placeholders: {subject} {kind} {due} {overdue}
    body: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trigger": self.trigger.value,
            "value": self.value,
            "recipient": self.recipient.value,
            "category": self.category,
            "title": self.title,
            "body": self.body,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LadderStep:
        return cls(
            name=str(data["name"]),
            trigger=Trigger(data["trigger"]),
            value=float(data.get("value", 0)),
            recipient=Recipient(data.get("recipient", Recipient.RESPONSIBLE)),
            category=str(data.get("category", "")),
            title=str(data.get("title", "")),
            body=str(data.get("body", "")),
        )


@dataclass(frozen=True)
class Ladder:
    steps: tuple[LadderStep, ...]
    supervisor_department_id: str = SUPERVISOR_DEPARTMENT_ID

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        problems = []
        if len(set(names)) != len(names):
            problems.append("步骤名称不能重复")
        for step in self.steps:
            if not _NAME.match(step.name):
                problems.append(f"步骤名称 {step.name!r} 应为小写字母、数字和下划线")
            if step.trigger is Trigger.SHARE_USED and not 0 < step.value < 1:
                problems.append(f"步骤 {step.name} 的用时比例应在0到1之间")
            if step.trigger is Trigger.OVERDUE_WORKING_DAYS and (
                step.value < 1 or step.value != int(step.value) or step.value > 60
            ):
                problems.append(f"步骤 {step.name} 的超期工作日数应为1到60的整数")
        if problems:
            raise InvalidInput("；".join(problems), code="invalid_ladder")

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "supervisor_department_id": self.supervisor_department_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ladder:
        return cls(
            steps=tuple(LadderStep.from_dict(s) for s in data.get("steps", ())),
            supervisor_department_id=str(
                data.get("supervisor_department_id") or SUPERVISOR_DEPARTMENT_ID
            ),
        )


WARNING = LadderStep(
    "warning",
    Trigger.SHARE_USED,
    0.8,
    Recipient.RESPONSIBLE,
    "deadline.warning",
    "时限预警：{subject}{kind}即将到期",
    "{subject}（{subject_id}）的{kind}时限已用去大部分，将于 {due} 到期，请抓紧办理。",
)
URGE = LadderStep(
    "urge",
    Trigger.AT_DUE,
    0,
    Recipient.RESPONSIBLE,
    "deadline.urge",
    "催办：{subject}{kind}已到期",
    "{subject}（{subject_id}）的{kind}时限已于 {due} 到期，请立即办理并反馈。",
)
SUPERVISE = LadderStep(
    "supervise",
    Trigger.OVERDUE_WORKING_DAYS,
    1,
    Recipient.SUPERVISOR,
    "deadline.supervise",
    "督办：{subject}{kind}超期{overdue}个工作日",
    "{department}承办的{subject}（{subject_id}）{kind}时限 {due} 已过，超期{overdue}个工作日，"
    "已列入督办。",
)
REPORT = LadderStep(
    "report",
    Trigger.OVERDUE_WORKING_DAYS,
    5,
    Recipient.SUPERVISOR,
    "deadline.report",
    "通报：{subject}{kind}超期{overdue}个工作日",
    "{department}承办的{subject}（{subject_id}）{kind}时限 {due} 已过，超期{overdue}个工作日，"
    "将在月度通报中列出。",
)

DEFAULT_LADDER = Ladder((WARNING, URGE, SUPERVISE, REPORT))
# A citizen's own deadline (补正, 确认) is reminded, never supervised.
CITIZEN_LADDER = Ladder((WARNING, URGE))


@dataclass(frozen=True)
class ClockPolicy:
    """Per-kind defaults; a clock may override day_end when it starts."""

    day_end: DayEnd = DayEnd.END_OF_DAY
    service_hours: ServiceHours = field(default_factory=ServiceHours)
    ladder: Ladder = DEFAULT_LADDER


DEFAULT_POLICY = ClockPolicy()
POLICIES: dict[str, ClockPolicy] = {
    "supplement": ClockPolicy(ladder=CITIZEN_LADDER),
    "confirm": ClockPolicy(ladder=CITIZEN_LADDER),
}


def policy_for(kind: str) -> ClockPolicy:
    return POLICIES.get(kind, DEFAULT_POLICY)


def check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise InvalidInput(f"{what}应为小写字母开头的字母、数字或下划线", code="invalid_name")
    return value


@dataclass(frozen=True)
class Pause:
    paused_at: datetime
    resumed_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Schedule:
    """What a clock's due time and ladder come to on a given calendar."""

    due_date: date
    due_at: datetime
    provisional: bool
    step_times: dict[str, datetime]


@dataclass(frozen=True)
class Clock:
    clock_id: str
    subject_type: str
    subject_id: str
    kind: str
    unit: LimitUnit
    limit: int
    started_at: datetime
    ladder: Ladder = DEFAULT_LADDER
    day_end: DayEnd = DayEnd.END_OF_DAY
    service_hours: ServiceHours = field(default_factory=ServiceHours)
    department_id: str | None = None
    owner_id: str | None = None
    label: str = ""
    state: ClockState = ClockState.RUNNING
    pauses: tuple[Pause, ...] = ()
    extension: int = 0
    extension_reason: str = ""
    extended_by: str | None = None
    due_date: date | None = None
    due_at: datetime | None = None
    provisional: bool = False
    steps_done: frozenset[str] = frozenset()
    next_attention_at: datetime | None = None
    closed_at: datetime | None = None
    version: int | None = None  # optimistic lock, kept by the repository

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.state is not ClockState.CANCELLED

    @property
    def is_paused(self) -> bool:
        return self.state is ClockState.PAUSED

    @property
    def open_pause(self) -> Pause | None:
        return self.pauses[-1] if self.pauses and self.pauses[-1].resumed_at is None else None

    @property
    def in_due_index(self) -> bool:
        """Only open, unpaused clocks with something left to do are in the due index."""
        return self.is_open and not self.is_paused and self.next_attention_at is not None

    def label_values(self) -> dict[str, str]:
        due = self.due_at.strftime("%Y-%m-%d %H:%M") if self.due_at else ""
        return {
            "subject": SUBJECT_LABELS.get(self.subject_type, self.subject_type),
            "subject_id": self.label or self.subject_id,
            "kind": KIND_LABELS.get(self.kind, self.kind),
            "due": due,
        }


def new_clock(
    *,
    clock_id: str,
    subject_type: str,
    subject_id: str,
    kind: str,
    limit: int,
    unit: LimitUnit,
    started_at: datetime,
    policy: ClockPolicy,
    ladder: Ladder | None = None,
    day_end: DayEnd | None = None,
    department_id: str | None = None,
    owner_id: str | None = None,
    label: str = "",
) -> Clock:
    check_name(subject_type, "对象类型")
    check_name(kind, "计时类型")
    if not subject_id or len(subject_id) > 128:
        raise InvalidInput("对象编号应为1到128个字符", code="invalid_subject_id")
    if not 1 <= limit <= (1000 if unit is LimitUnit.WORKING_DAYS else 2000):
        raise InvalidInput("时限应为正整数且不超过上限", code="invalid_limit")
    if department_id is None and owner_id is None:
        raise InvalidInput("时限须有承办部门或责任人", code="clock_without_owner")
    return Clock(
        clock_id=clock_id,
        subject_type=subject_type,
        subject_id=subject_id,
        kind=kind,
        unit=unit,
        limit=limit,
        started_at=started_at.astimezone(CHINA_TZ),
        ladder=ladder or policy.ladder,
        day_end=day_end or policy.day_end,
        service_hours=policy.service_hours,
        department_id=department_id,
        owner_id=owner_id,
        label=label,
    )


# ---- due time -----------------------------------------------------------------------------


def _paused_working_days(clock: Clock, calendar: WorkingCalendar) -> int:
    # The pause day counts; each working day after it, through the resume day, does not.
    return sum(
        calendar.working_days_between(p.paused_at.date(), p.resumed_at.date())
        for p in clock.pauses
        if p.resumed_at is not None
    )


def _paused_service_time(clock: Clock, calendar: WorkingCalendar) -> timedelta:
    return sum(
        (
            calendar.service_time_between(p.paused_at, p.resumed_at, clock.service_hours)
            for p in clock.pauses
            if p.resumed_at is not None
        ),
        timedelta(0),
    )


def total_working_days(clock: Clock, calendar: WorkingCalendar) -> int:
    return clock.limit + clock.extension + _paused_working_days(clock, calendar)


def schedule_for(clock: Clock, calendar: WorkingCalendar) -> Schedule:
    """Due time and ladder step times. An open pause is not yet counted: the due time moves
    when the clock resumes."""
    if clock.unit is LimitUnit.HOURS:
        return _hours_schedule(clock, calendar)
    return _days_schedule(clock, calendar)


def _days_schedule(clock: Clock, calendar: WorkingCalendar) -> Schedule:
    start = clock.started_at.date()
    total = total_working_days(clock, calendar)
    due_date, provisional = calendar.add_working_days(start, total)
    due = deadline_at(due_date, clock.day_end, clock.service_hours)
    times = {}
    for step in clock.ladder.steps:
        if step.trigger is Trigger.SHARE_USED:
            times[step.name] = _share_point(clock, calendar, start, total * step.value)
        else:
            times[step.name] = _after_due(clock, calendar, step, due_date, due)
    return Schedule(due_date, due, provisional, times)


def _share_point(clock: Clock, calendar: WorkingCalendar, start: date, units: float) -> datetime:
    """The instant `units` working days (fractions allowed) have been used."""
    whole = math.floor(units)
    fraction = units - whole
    if fraction == 0:
        if whole == 0:
            return clock.started_at
        day, _ = calendar.add_working_days(start, whole)
        return deadline_at(day, clock.day_end, clock.service_hours)
    day, _ = calendar.add_working_days(start, whole + 1)
    opens, closes = day_window(day, clock.day_end, clock.service_hours)
    return max(opens + (closes - opens) * fraction, clock.started_at)


def _after_due(
    clock: Clock, calendar: WorkingCalendar, step: LadderStep, due_date: date, due: datetime
) -> datetime:
    if step.trigger is Trigger.AT_DUE:
        return due
    day, _ = calendar.add_working_days(due_date, int(step.value))
    return deadline_at(day, clock.day_end, clock.service_hours)


def _hours_schedule(clock: Clock, calendar: WorkingCalendar) -> Schedule:
    total = timedelta(hours=clock.limit + clock.extension) + _paused_service_time(clock, calendar)
    hours = clock.service_hours
    due, provisional = calendar.add_service_time(clock.started_at, total, hours)
    times = {}
    for step in clock.ladder.steps:
        if step.trigger is Trigger.SHARE_USED:
            times[step.name], _ = calendar.add_service_time(
                clock.started_at, total * step.value, hours
            )
        else:
            times[step.name] = _after_due(clock, calendar, step, due.date(), due)
    return Schedule(due.date(), due, provisional, times)


def overdue_working_days(clock: Clock, calendar: WorkingCalendar, now: datetime) -> int:
    """Whole working days gone by since the deadline (today does not count until it ends)."""
    if clock.due_date is None or clock.due_at is None or now <= clock.due_at:
        return 0
    yesterday = now.astimezone(CHINA_TZ).date() - timedelta(days=1)
    return max(calendar.working_days_between(clock.due_date, yesterday), 0)


# ---- state changes ------------------------------------------------------------------------


def refresh(clock: Clock, calendar: WorkingCalendar, now: datetime) -> Clock:
    """Recompute due time, state and next attention on this calendar at `now`."""
    plan = schedule_for(clock, calendar)
    state = clock.state
    if clock.closed_at is None and state is ClockState.RUNNING and now > plan.due_at:
        state = ClockState.BREACHED
    elif clock.closed_at is None and state is ClockState.BREACHED and now <= plan.due_at:
        state = ClockState.RUNNING  # a later official calendar or an extension moved it
    updated = replace(
        clock,
        due_date=plan.due_date,
        due_at=plan.due_at,
        provisional=plan.provisional,
        state=state,
    )
    return replace(updated, next_attention_at=next_attention(updated, plan))


def next_attention(clock: Clock, plan: Schedule) -> datetime | None:
    """Earliest moment the sweep must look at this clock: the next ladder step not yet taken,
    or the deadline itself while the clock is not yet marked breached."""
    if not clock.is_open or clock.is_paused:
        return None
    moments = [t for name, t in plan.step_times.items() if name not in clock.steps_done]
    if clock.state is ClockState.RUNNING:
        moments.append(plan.due_at)
    return min(moments) if moments else None


def steps_due(clock: Clock, calendar: WorkingCalendar, now: datetime) -> list[LadderStep]:
    """Ladder steps whose time has come and that this clock has not taken, in ladder order."""
    if not clock.is_open or clock.is_paused:
        return []
    plan = schedule_for(clock, calendar)
    return [
        step
        for step in clock.ladder.steps
        if step.name not in clock.steps_done and plan.step_times[step.name] <= now
    ]


def mark_steps_done(
    clock: Clock, names: set[str], calendar: WorkingCalendar, now: datetime
) -> Clock:
    return refresh(replace(clock, steps_done=clock.steps_done | names), calendar, now)


def pause(clock: Clock, now: datetime, reason: str, calendar: WorkingCalendar) -> Clock:
    if not clock.is_open:
        raise RuleViolation("计时已结束，不能暂停", code="clock_closed")
    if clock.is_paused:
        raise RuleViolation("计时已处于暂停状态", code="clock_already_paused")
    paused = replace(
        clock,
        state=ClockState.PAUSED,
        pauses=(*clock.pauses, Pause(paused_at=now, reason=reason)),
    )
    return refresh(paused, calendar, now)


def resume(clock: Clock, now: datetime, calendar: WorkingCalendar) -> Clock:
    pending = clock.open_pause
    if not clock.is_paused or pending is None:
        raise RuleViolation("计时未暂停，无需恢复", code="clock_not_paused")
    closed = replace(pending, resumed_at=max(now, pending.paused_at))
    resumed = replace(clock, state=ClockState.RUNNING, pauses=(*clock.pauses[:-1], closed))
    return refresh(resumed, calendar, now)


def extend(
    clock: Clock,
    amount: int,
    reason: str,
    approved_by: str,
    now: datetime,
    calendar: WorkingCalendar,
) -> Clock:
    """One approved extension per clock, granted before the deadline passes."""
    if not clock.is_open:
        raise RuleViolation("计时已结束，不能延期", code="clock_closed")
    if clock.extension:
        raise RuleViolation("该时限已批准过延期", code="already_extended")
    if amount < 1 or amount > clock.limit * 2:
        raise InvalidInput("延期时长应为正整数且不超过原时限的两倍", code="invalid_extension")
    if clock.due_at is not None and now > clock.due_at:
        raise RuleViolation("时限已过，不能再延期", code="deadline_passed")
    if not reason.strip():
        raise InvalidInput("延期须说明理由", code="extension_reason_required")
    extended = replace(
        clock, extension=amount, extension_reason=reason.strip(), extended_by=approved_by
    )
    return refresh(extended, calendar, now)


def stop(
    clock: Clock, outcome: Outcome, now: datetime, calendar: WorkingCalendar
) -> tuple[Clock, bool]:
    """Close a clock. Answers the closed clock and whether it finished late."""
    if not clock.is_open:
        raise RuleViolation("计时已结束", code="clock_closed")
    current = resume(clock, now, calendar) if clock.is_paused else refresh(clock, calendar, now)
    late = current.due_at is not None and now > current.due_at
    if outcome is Outcome.CANCELLED:
        state = ClockState.CANCELLED
    else:
        state = ClockState.BREACHED if late else ClockState.MET
    closed = replace(current, state=state, closed_at=now, next_attention_at=None)
    return closed, late and outcome is Outcome.MET


def snapshot(clock: Clock) -> dict[str, Any]:
    """The fields an audit record keeps of a clock."""
    return {
        "state": clock.state.value,
        "due_at": clock.due_at.isoformat() if clock.due_at else None,
        "provisional": clock.provisional,
        "extension": clock.extension,
        "pauses": len(clock.pauses),
        "steps_done": sorted(clock.steps_done),
    }


def render(template: str, clock: Clock, **extra: Any) -> str:
    values = {**clock.label_values(), "overdue": "", "department": "承办部门", **extra}
    return template.format(**values)


# Used by adapters and views: a stable day-time text for service hours.
def parse_hhmm(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))
