"""办不成事 tickets: the aggregate, its state machine, routing rules and duplicate detection.

Pure: no I/O, no clock reads. Each transition takes the acting principal and the instant and
answers the changed ticket with one new timeline entry. The entry carries the side effects the
transition asks for (clocks to start, stop, pause; who to notify; report counters), so the
service layer can apply them after the ticket is stored, and apply them again after a crash,
from the stored entry alone.

States (`TRANSITIONS` is the table, with the roles allowed for each event):
submitted → dispatched → accepted ⇄ awaiting_person → replied → called_back → closed;
unsatisfied call-back or the person's reopen (within 15 working days of the reply) → reopened;
transfer to another department (→ dispatched); 退单 only with a reason the dispatcher accepts
(→ submitted) or rejects (→ the state before).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID
from chalicelib.domain.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from chalicelib.domain.identity import PUBLIC_ROLES, SYSTEM, Principal, Role
from chalicelib.domain.items import item_code

SUBJECT_TYPE = "ticket"


# A ticket item must stay far below DynamoDB's 400 KB: old entries whose effects are applied
# are dropped beyond this many (the first entry, the intake, is always kept).
MAX_TIMELINE = 200


class TicketKind(StrEnum):
    NOT_ACCEPTED = "not_accepted"
    NOT_APPROVED = "not_approved"
    CROSS_DEPARTMENT = "cross_department"
    STAFF_CONDUCT = "staff_conduct"
    OTHER = "other"


KIND_LABELS = {
    TicketKind.NOT_ACCEPTED: "申请不予受理",
    TicketKind.NOT_APPROVED: "申请未获批准",
    TicketKind.CROSS_DEPARTMENT: "跨部门复杂事项",
    TicketKind.STAFF_CONDUCT: "工作人员作风",
    TicketKind.OTHER: "其他办不成的事",
}


class Channel(StrEnum):
    MINI_PROGRAM = "mini_program"
    PC = "pc"
    HOTLINE = "hotline"
    WINDOW = "window"
    SELF_SERVICE_TERMINAL = "self_service_terminal"
    LIVE_HELP = "live_help"  # a 专业人工帮办 agent files what the help could not resolve


# Channels a person uses themselves; hotline and window intake is staff filing for someone.
PUBLIC_CHANNELS = frozenset({Channel.MINI_PROGRAM, Channel.PC, Channel.SELF_SERVICE_TERMINAL})
STAFF_CHANNELS = frozenset({Channel.HOTLINE, Channel.WINDOW, Channel.LIVE_HELP})


class Complexity(StrEnum):
    SIMPLE = "simple"
    COMPLEX = "complex"


class ContactMethod(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    MINI_PROGRAM = "mini_program"
    VISIT = "visit"


class TicketState(StrEnum):
    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    AWAITING_PERSON = "awaiting_person"
    RETURN_REQUESTED = "return_requested"
    REPLIED = "replied"
    CALLED_BACK = "called_back"
    REOPENED = "reopened"
    CLOSED = "closed"


STATE_LABELS = {
    TicketState.SUBMITTED: "待派单",
    TicketState.DISPATCHED: "已派单",
    TicketState.ACCEPTED: "办理中",
    TicketState.AWAITING_PERSON: "等待办事人补充",
    TicketState.RETURN_REQUESTED: "退单审核中",
    TicketState.REPLIED: "已答复",
    TicketState.CALLED_BACK: "已回访",
    TicketState.REOPENED: "重新办理",
    TicketState.CLOSED: "已办结",
}

OPEN_STATES = frozenset(set(TicketState) - {TicketState.CLOSED})


class Event(StrEnum):
    SUBMIT = "submit"
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    AWAIT_PERSON = "await_person"
    PERSON_RESPONDED = "person_responded"
    REPLY = "reply"
    CALL_BACK_SATISFIED = "call_back_satisfied"
    CALL_BACK_UNSATISFIED = "call_back_unsatisfied"
    CLOSE = "close"
    REOPEN = "reopen"
    TRANSFER = "transfer"
    REQUEST_RETURN = "request_return"
    ACCEPT_RETURN = "accept_return"
    REJECT_RETURN = "reject_return"
    SET_COMPLEXITY = "set_complexity"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REJECT_EXTENSION = "reject_extension"


# Targets that are not a fixed state.
SAME = "same"  # the event records something without moving the ticket
PREVIOUS = "previous"  # back to the state before the pending 退单 request

_S = TicketState
_HANDLING = frozenset({_S.DISPATCHED, _S.ACCEPTED, _S.REOPENED})
_PEOPLE = frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF})


@dataclass(frozen=True)
class Transition:
    event: Event
    sources: frozenset[TicketState]
    target: TicketState | str
    roles: frozenset[Role]
    label: str  # Chinese verb phrase for messages and the timeline


TRANSITIONS: dict[Event, Transition] = {
    t.event: t
    for t in (
        Transition(Event.SUBMIT, frozenset(), _S.SUBMITTED, frozenset(Role), "提交"),
        Transition(
            Event.DISPATCH,
            frozenset({_S.SUBMITTED}),
            _S.DISPATCHED,
            frozenset({Role.DISPATCHER, Role.ADMIN}),
            "派单",
        ),
        Transition(
            Event.ACCEPT,
            frozenset({_S.DISPATCHED, _S.REOPENED}),
            _S.ACCEPTED,
            frozenset({Role.DEPARTMENT_STAFF}),
            "受理",
        ),
        Transition(
            Event.AWAIT_PERSON,
            frozenset({_S.ACCEPTED}),
            _S.AWAITING_PERSON,
            frozenset({Role.DEPARTMENT_STAFF}),
            "转为等待办事人补充",
        ),
        Transition(
            Event.PERSON_RESPONDED,
            frozenset({_S.AWAITING_PERSON}),
            _S.ACCEPTED,
            frozenset({Role.DEPARTMENT_STAFF} | _PEOPLE),
            "恢复办理",
        ),
        Transition(
            Event.REPLY,
            frozenset({_S.ACCEPTED}),
            _S.REPLIED,
            frozenset({Role.DEPARTMENT_STAFF}),
            "答复",
        ),
        Transition(
            Event.CALL_BACK_SATISFIED,
            frozenset({_S.REPLIED}),
            _S.CALLED_BACK,
            frozenset({Role.SUPERVISOR}),
            "回访",
        ),
        Transition(
            Event.CALL_BACK_UNSATISFIED,
            frozenset({_S.REPLIED}),
            _S.REOPENED,
            frozenset({Role.SUPERVISOR}),
            "回访",
        ),
        Transition(
            Event.CLOSE,
            frozenset({_S.CALLED_BACK}),
            _S.CLOSED,
            frozenset({Role.SUPERVISOR}),
            "办结",
        ),
        Transition(
            Event.REOPEN,
            frozenset({_S.REPLIED, _S.CALLED_BACK, _S.CLOSED}),
            _S.REOPENED,
            _PEOPLE,
            "重新打开",
        ),
        Transition(
            Event.TRANSFER,
            _HANDLING,
            _S.DISPATCHED,
            frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER}),
            "转办",
        ),
        Transition(
            Event.REQUEST_RETURN,
            _HANDLING,
            _S.RETURN_REQUESTED,
            frozenset({Role.DEPARTMENT_STAFF}),
            "申请退单",
        ),
        Transition(
            Event.ACCEPT_RETURN,
            frozenset({_S.RETURN_REQUESTED}),
            _S.SUBMITTED,
            frozenset({Role.DISPATCHER}),
            "同意退单",
        ),
        Transition(
            Event.REJECT_RETURN,
            frozenset({_S.RETURN_REQUESTED}),
            PREVIOUS,
            frozenset({Role.DISPATCHER}),
            "驳回退单",
        ),
        Transition(
            Event.SET_COMPLEXITY,
            frozenset({_S.SUBMITTED, _S.DISPATCHED, _S.ACCEPTED}),
            SAME,
            frozenset({Role.DISPATCHER}),
            "调整繁简",
        ),
        Transition(
            Event.REQUEST_EXTENSION,
            frozenset({_S.ACCEPTED, _S.AWAITING_PERSON}),
            SAME,
            frozenset({Role.DEPARTMENT_STAFF}),
            "申请延期",
        ),
        Transition(
            Event.APPROVE_EXTENSION,
            frozenset({_S.ACCEPTED, _S.AWAITING_PERSON}),
            SAME,
            frozenset({Role.DISPATCHER}),
            "批准延期",
        ),
        Transition(
            Event.REJECT_EXTENSION,
            frozenset({_S.ACCEPTED, _S.AWAITING_PERSON}),
            SAME,
            frozenset({Role.DISPATCHER}),
            "不予延期",
        ),
    )
}


class IllegalTransition(Conflict):
    code = "illegal_transition"
    message = "工单当前状态不允许该操作"


# ---- value objects ----------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(CHINA_TZ).isoformat() if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(CHINA_TZ) if text else None


@dataclass(frozen=True)
class Owner:
    """The person or organisation the ticket is about (not necessarily who filed it)."""

    user_id: str | None
    subject_id: str | None
    name: str = ""

    @property
    def key(self) -> str:
        """One key per person across channels: the subject (ID number, credit code) if known."""
        return f"s#{self.subject_id}" if self.subject_id else f"u#{self.user_id}"


@dataclass(frozen=True)
class ContactPreference:
    method: ContactMethod
    mobile: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method.value, "mobile": self.mobile, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContactPreference:
        return cls(ContactMethod(data["method"]), data.get("mobile"), data.get("note", ""))


@dataclass(frozen=True)
class ClockRef:
    """What the ticket knows of one of its deadline clocks (kept current by the service)."""

    key: str
    clock_id: str
    kind: str
    department_id: str | None
    state: str
    due_at: datetime | None
    provisional: bool = False
    extension: int = 0

    @property
    def is_open(self) -> bool:
        return self.state in ("running", "paused", "breached")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "clock_id": self.clock_id,
            "kind": self.kind,
            "department_id": self.department_id,
            "state": self.state,
            "due_at": _iso(self.due_at),
            "provisional": self.provisional,
            "extension": self.extension,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClockRef:
        return cls(
            key=data["key"],
            clock_id=data["clock_id"],
            kind=data["kind"],
            department_id=data.get("department_id"),
            state=data["state"],
            due_at=_moment(data.get("due_at")),
            provisional=bool(data.get("provisional", False)),
            extension=int(data.get("extension", 0)),
        )


@dataclass(frozen=True)
class ClockOp:
    """One deadline-engine call a transition asks for."""

    op: str  # start | stop | cancel | pause | resume | extend
    key: str  # the clock's idempotency key
    kind: str = ""
    limit: int = 0
    department_id: str | None = None
    started_at: datetime | None = None
    amount: int = 0
    reason: str = ""
    judge: str | None = None  # on stop: count on time / late under this report prefix

    def to_dict(self) -> dict[str, Any]:
        data = {
            "op": self.op,
            "key": self.key,
            "kind": self.kind,
            "limit": self.limit,
            "department_id": self.department_id,
            "started_at": _iso(self.started_at),
            "amount": self.amount,
            "reason": self.reason,
            "judge": self.judge,
        }
        return {k: v for k, v in data.items() if v not in (None, "", 0)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClockOp:
        return cls(
            op=data["op"],
            key=data["key"],
            kind=data.get("kind", ""),
            limit=int(data.get("limit", 0)),
            department_id=data.get("department_id"),
            started_at=_moment(data.get("started_at")),
            amount=int(data.get("amount", 0)),
            reason=data.get("reason", ""),
            judge=data.get("judge"),
        )


@dataclass(frozen=True)
class Notice:
    """Someone to tell: a department (webhook), the supervising office, or the person."""

    audience: str  # department | supervisor | person
    template: str  # e.g. "dispatched"; the service renders the Chinese text
    department_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "audience": self.audience,
            "template": self.template,
            "department_id": self.department_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        return cls(data["audience"], data["template"], data.get("department_id"))


@dataclass(frozen=True)
class Effects:
    clocks: tuple[ClockOp, ...] = ()
    notices: tuple[Notice, ...] = ()
    counts: tuple[tuple[str, str], ...] = ()  # (department_id, counter name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clocks": [c.to_dict() for c in self.clocks],
            "notices": [n.to_dict() for n in self.notices],
            "counts": [list(c) for c in self.counts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Effects:
        data = data or {}
        return cls(
            clocks=tuple(ClockOp.from_dict(c) for c in data.get("clocks", ())),
            notices=tuple(Notice.from_dict(n) for n in data.get("notices", ())),
            counts=tuple((str(d), str(n)) for d, n in data.get("counts", ())),
        )


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    at: datetime
    event: Event
    from_state: TicketState | None
    to_state: TicketState
    actor_id: str
    actor_role: str
    actor_name: str
    department_id: str | None
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    effects: Effects = field(default_factory=Effects)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": _iso(self.at),
            "event": self.event.value,
            "from_state": self.from_state.value if self.from_state else None,
            "to_state": self.to_state.value,
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "actor_name": self.actor_name,
            "department_id": self.department_id,
            "note": self.note,
            "data": self.data,
            "effects": self.effects.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimelineEntry:
        return cls(
            seq=int(data["seq"]),
            at=datetime.fromisoformat(data["at"]).astimezone(CHINA_TZ),
            event=Event(data["event"]),
            from_state=TicketState(data["from_state"]) if data.get("from_state") else None,
            to_state=TicketState(data["to_state"]),
            actor_id=data["actor_id"],
            actor_role=data["actor_role"],
            actor_name=data.get("actor_name", ""),
            department_id=data.get("department_id"),
            note=data.get("note", ""),
            data=dict(data.get("data") or {}),
            effects=Effects.from_dict(data.get("effects")),
        )


@dataclass(frozen=True)
class RoutingMatch:
    rule_id: str
    rule_version: int
    ruleset_version: int
    department_id: str
    complexity: Complexity

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "ruleset_version": self.ruleset_version,
            "department_id": self.department_id,
            "complexity": self.complexity.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingMatch:
        return cls(
            data["rule_id"],
            int(data["rule_version"]),
            int(data["ruleset_version"]),
            data["department_id"],
            Complexity(data["complexity"]),
        )


# ---- the aggregate ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    kind: TicketKind
    channel: Channel
    description: str
    owner: Owner
    contact: ContactPreference
    filed_by: str
    filed_by_role: str
    created_at: datetime
    updated_at: datetime
    state: TicketState = TicketState.SUBMITTED
    service_item_id: str | None = None
    service_item_name: str | None = None
    item_department_id: str | None = None
    application_id: str | None = None
    attachments: tuple[str, ...] = ()
    centre_id: str | None = None
    complexity: Complexity = Complexity.SIMPLE
    department_id: str | None = None
    department_name: str | None = None
    routing: RoutingMatch | None = None
    leg: int = 0  # +1 on every hand-over to a department (dispatch, transfer, reopen)
    resolve_rev: int = 0  # +1 when the dispatcher changes the complexity mid-leg
    leg_started_at: datetime | None = None
    reply_count: int = 0
    last_replied_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # contact, reply, call-back, ...
    possible_duplicates: tuple[str, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    clocks: dict[str, ClockRef] = field(default_factory=dict)
    effects_through: int = 0  # seq of the last entry whose effects are applied
    intake_key: str | None = None
    version: int | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def last_seq(self) -> int:
        return self.timeline[-1].seq if self.timeline else 0

    @property
    def contact_key(self) -> str:
        return f"{SUBJECT_TYPE}:{self.ticket_id}:contact:{self.leg}"

    @property
    def resolve_key(self) -> str:
        return f"{SUBJECT_TYPE}:{self.ticket_id}:resolve:{self.leg}.{self.resolve_rev}"

    @property
    def call_back_key(self) -> str:
        return f"{SUBJECT_TYPE}:{self.ticket_id}:call_back:{self.reply_count}"

    @property
    def pending_effects(self) -> list[TimelineEntry]:
        return [e for e in self.timeline if e.seq > self.effects_through]

    @property
    def governing_due(self) -> datetime | None:
        """The department's nearest running deadline on this ticket (lists sort and filter on
        it). A paused clock (waiting for the person) governs nothing until it resumes."""
        if self.state not in (_HANDLING | {_S.RETURN_REQUESTED}):
            return None
        dues = [
            ref.due_at
            for key in (self.contact_key, self.resolve_key)
            if (ref := self.clocks.get(key)) is not None
            and ref.state in ("running", "breached")
            and ref.due_at
        ]
        return min(dues) if dues else None


@dataclass(frozen=True)
class TicketLimits:
    """The ticket limits, in working days, as data (DOMAIN.md: configurable defaults, the
    configuration in data): "1、5、15" (contact 1, simple 5, complex 15), the district office's
    call-back (3), the person's reopen window after a reply (15), the longest extension (15)."""

    contact_days: int = 1
    resolve_simple_days: int = 5
    resolve_complex_days: int = 15
    call_back_days: int = 3
    reopen_window_days: int = 15
    max_extension_days: int = 15

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 60:
                raise InvalidInput(f"时限 {name} 应为1到60个工作日", code="invalid_ticket_limits")

    def resolve_days(self, complexity: Complexity) -> int:
        if complexity is Complexity.COMPLEX:
            return self.resolve_complex_days
        return self.resolve_simple_days

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TicketLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"未知的时限项：{'、'.join(sorted(unknown))}", code="invalid_ticket_limits"
            )
        return cls(**data)


# The seed of the stored rule set (version 1); rules read the stored version in force.
DEFAULT_TICKET_LIMITS = TicketLimits()


@dataclass(frozen=True)
class TicketLimitsVersion:
    """One stored version of the ticket limits; it governs transitions from `effective_from`
    (a China date) until a later version takes effect. Version 0 is the seed, never stored."""

    version: int = 0
    limits: TicketLimits = DEFAULT_TICKET_LIMITS
    effective_from: date | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
    note: str = ""


def limits_in_force(versions: Iterable[TicketLimitsVersion], day: date) -> TicketLimitsVersion:
    """The newest version already in effect on `day`; the seed when none is."""
    in_force = [v for v in versions if v.effective_from is None or v.effective_from <= day]
    return max(in_force, key=lambda v: v.version, default=TicketLimitsVersion())


def next_limits_version(
    latest: TicketLimitsVersion,
    limits: TicketLimits,
    *,
    effective_from: date,
    by: str,
    now: datetime,
    note: str = "",
) -> TicketLimitsVersion:
    """The next version. It cannot take effect in the past: clocks already started keep the
    limit they started with, and a retroactive change would make reports disagree with them."""
    today = now.astimezone(CHINA_TZ).date()
    if effective_from < today:
        raise InvalidInput("生效日期不能早于今天", code="invalid_effective_from")
    if latest.effective_from is not None and effective_from < latest.effective_from:
        raise InvalidInput(
            f"生效日期不能早于上一版（第{latest.version}版）的生效日期 {latest.effective_from}",
            code="invalid_effective_from",
        )
    return TicketLimitsVersion(
        version=latest.version + 1,
        limits=limits,
        effective_from=effective_from,
        updated_by=by,
        updated_at=now,
        note=note.strip(),
    )


# ---- intake -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    """What the person (or staff on their behalf) reports."""

    ticket_id: str
    kind: TicketKind
    channel: Channel
    description: str
    owner: Owner
    contact: ContactPreference
    service_item_id: str | None = None
    service_item_name: str | None = None
    application_id: str | None = None
    attachments: tuple[str, ...] = ()
    centre_id: str | None = None
    intake_key: str | None = None


def check_channel(principal: Principal, channel: Channel) -> None:
    public = principal.role in PUBLIC_ROLES
    if public and channel not in PUBLIC_CHANNELS:
        raise InvalidInput("本人提交的渠道应为小程序、PC 端或自助终端", code="channel_not_allowed")
    if not public and channel not in STAFF_CHANNELS:
        raise InvalidInput("工作人员代为提交的渠道应为窗口或热线", code="channel_not_allowed")


def file(
    intake: Intake,
    filed_by: Principal,
    now: datetime,
    *,
    rules: RuleSet,
    duplicates: Iterable[str] = (),
    department_name: str | None = None,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
    item_owner: str | None = None,
) -> Ticket:
    """A new ticket, routed by the first matching rule, else to the department owning its
    service item (the rule set's mapping, else the guide's `item_owner`); no match leaves it
    in the dispatcher queue. Possible duplicates are recorded, never merged."""
    check_channel(filed_by, intake.channel)
    item_department = rules.item_department(intake.service_item_id) or item_owner
    ticket = Ticket(
        ticket_id=intake.ticket_id,
        kind=intake.kind,
        channel=intake.channel,
        description=intake.description,
        owner=intake.owner,
        contact=intake.contact,
        filed_by=filed_by.user_id,
        filed_by_role=filed_by.role.value,
        created_at=now,
        updated_at=now,
        service_item_id=intake.service_item_id,
        service_item_name=intake.service_item_name,
        item_department_id=item_department,
        application_id=intake.application_id,
        attachments=intake.attachments,
        centre_id=intake.centre_id,
        possible_duplicates=tuple(d for d in duplicates if d != intake.ticket_id),
        intake_key=intake.intake_key,
    )
    ticket = _append(
        ticket,
        Event.SUBMIT,
        filed_by,
        now,
        None,
        TicketState.SUBMITTED,
        data={"channel": intake.channel.value, "kind": intake.kind.value},
    )
    match = rules.route(
        RoutingFacts(
            kind=intake.kind,
            service_item_id=intake.service_item_id,
            item_department_id=item_department,
            text=" ".join(filter(None, [intake.description, intake.service_item_name])),
            centre_id=intake.centre_id,
        )
    )
    if match is None:
        return ticket
    routed = replace(ticket, complexity=match.complexity, routing=match)
    return dispatch(
        routed,
        SYSTEM,
        now,
        department_id=match.department_id,
        department_name=department_name,
        note=f"按派单规则 {match.rule_id}（第{match.rule_version}版）自动派单",
        routed_by=match,
        limits=limits,
    )


def possible_duplicates(
    candidates: Iterable[tuple[str, str, str | None, TicketState]],
    owner_key: str,
    service_item_id: str | None,
) -> list[str]:
    """Open tickets of the same person on the same service item: (id, owner_key, item, state)."""
    if not service_item_id:
        return []
    return [
        ticket_id
        for ticket_id, key, item, state in candidates
        if key == owner_key and item == service_item_id and state in OPEN_STATES
    ]


# ---- transitions ------------------------------------------------------------------------


def transition_for(event: Event) -> Transition:
    return TRANSITIONS[event]


def check(ticket: Ticket, event: Event, actor: Principal) -> Transition:
    """The table's verdict: the role may never do this (403) or not in this state (409)."""
    rule = TRANSITIONS[event]
    if actor.role not in rule.roles:
        raise Forbidden(f"当前角色不能{rule.label}", code="transition_forbidden")
    if ticket.state not in rule.sources:
        raise IllegalTransition(
            f"工单当前状态为「{STATE_LABELS[ticket.state]}」，不能{rule.label}",
            state=ticket.state.value,
            event=event.value,
        )
    return rule


def allowed_events(ticket: Ticket, role: Role) -> list[Event]:
    """What this role may do next (for the client's buttons)."""
    extension = (ticket.details.get("extension") or {}).get("status")
    unavailable = {Event.SUBMIT}
    if ticket.complexity is not Complexity.COMPLEX or extension in ("pending", "approved"):
        unavailable.add(Event.REQUEST_EXTENSION)
    if extension != "pending":
        unavailable |= {Event.APPROVE_EXTENSION, Event.REJECT_EXTENSION}
    return [
        t.event
        for t in TRANSITIONS.values()
        if role in t.roles and ticket.state in t.sources and t.event not in unavailable
    ]


def _append(
    ticket: Ticket,
    event: Event,
    actor: Principal,
    now: datetime,
    from_state: TicketState | None,
    to_state: TicketState,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
    effects: Effects = Effects(),
    **changes: Any,
) -> Ticket:
    entry = TimelineEntry(
        seq=ticket.last_seq + 1,
        at=now,
        event=event,
        from_state=from_state,
        to_state=to_state,
        actor_id=actor.user_id,
        actor_role=actor.role.value,
        actor_name=actor.display_name,
        department_id=changes.get("department_id", ticket.department_id),
        note=note,
        data=data or {},
        effects=effects,
    )
    timeline = (*ticket.timeline, entry)
    if len(timeline) > MAX_TIMELINE:
        first, rest = timeline[0], timeline[1:]
        droppable = len(timeline) - MAX_TIMELINE
        kept = [e for i, e in enumerate(rest) if i >= droppable or e.seq > ticket.effects_through]
        timeline = (first, *kept)
    return replace(ticket, state=to_state, timeline=timeline, updated_at=now, **changes)


def _move(
    ticket: Ticket,
    event: Event,
    actor: Principal,
    now: datetime,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
    effects: Effects = Effects(),
    target: TicketState | None = None,
    **changes: Any,
) -> Ticket:
    rule = check(ticket, event, actor)
    if target is None:
        target = ticket.state if rule.target == SAME else TicketState(rule.target)
    return _append(
        ticket,
        event,
        actor,
        now,
        ticket.state,
        target,
        note=note,
        data=data,
        effects=effects,
        **changes,
    )


def _required(text: str | None, what: str, code: str) -> str:
    value = (text or "").strip()
    if not value:
        raise InvalidInput(f"请填写{what}", code=code)
    return value


def _new_leg_effects(
    ticket: Ticket, department_id: str, now: datetime, template: str, limits: TicketLimits
) -> tuple[list[ClockOp], list[Notice]]:
    """A department takes the ticket: its contact and resolve clocks start, it is notified.
    `ticket` is the ticket after the leg moved on."""
    clocks = [
        ClockOp(
            "start",
            ticket.contact_key,
            kind="contact",
            limit=limits.contact_days,
            department_id=department_id,
            started_at=now,
        ),
        ClockOp(
            "start",
            ticket.resolve_key,
            kind="resolve",
            limit=limits.resolve_days(ticket.complexity),
            department_id=department_id,
            started_at=now,
        ),
    ]
    return clocks, [Notice("department", template, department_id)]


def _close_leg(ticket: Ticket, op: str = "cancel") -> list[ClockOp]:
    return [ClockOp(op, ticket.contact_key), ClockOp(op, ticket.resolve_key)]


def dispatch(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    department_id: str,
    department_name: str | None = None,
    complexity: Complexity | None = None,
    note: str = "",
    routed_by: RoutingMatch | None = None,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    """转办 to the responsible department (by a routing rule or by the dispatcher)."""
    check(ticket, Event.DISPATCH, actor)
    moved = replace(
        ticket,
        leg=ticket.leg + 1,
        resolve_rev=0,
        leg_started_at=now,
        complexity=complexity or ticket.complexity,
    )
    clocks, notices = _new_leg_effects(moved, department_id, now, "dispatched", limits)
    data: dict[str, Any] = {"department_id": department_id, "complexity": moved.complexity.value}
    if routed_by is not None:
        data["routing"] = routed_by.to_dict()
    return _move(
        moved,
        Event.DISPATCH,
        actor,
        now,
        note=note,
        data=data,
        effects=Effects(tuple(clocks), tuple(notices), ((department_id, "received"),)),
        department_id=department_id,
        department_name=department_name,
    )


def accept(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    contact_method: ContactMethod,
    contacted_at: datetime | None = None,
    note: str,
    staff_phone: str | None = None,
) -> Ticket:
    """The department acknowledges and records its first contact with the person (首问负责)."""
    check(ticket, Event.ACCEPT, actor)
    when = contacted_at or now
    if when > now:
        raise InvalidInput("联系时间不能晚于当前时间", code="contact_in_future")
    contact_note = _required(note, "联系情况", "contact_note_required")
    first_contact = {
        "at": _iso(when),
        "method": contact_method.value,
        "note": contact_note,
        "by": actor.user_id,
        "by_name": actor.display_name,
        "staff_phone": staff_phone,
    }
    return _move(
        ticket,
        Event.ACCEPT,
        actor,
        now,
        note=contact_note,
        data={"contact": first_contact},
        effects=Effects(
            (ClockOp("stop", ticket.contact_key, judge="contact"),),
            (Notice("person", "accepted", ticket.department_id),),
        ),
        details={**ticket.details, "first_contact": first_contact},
    )


def await_person(ticket: Ticket, actor: Principal, now: datetime, *, reason: str) -> Ticket:
    """Waiting for the person (材料、意见): the resolve clock pauses."""
    reason = _required(reason, "等待原因", "reason_required")
    return _move(
        ticket,
        Event.AWAIT_PERSON,
        actor,
        now,
        note=reason,
        effects=Effects((ClockOp("pause", ticket.resolve_key, reason=reason),)),
        details={**ticket.details, "waiting": {"since": _iso(now), "reason": reason}},
    )


def person_responded(ticket: Ticket, actor: Principal, now: datetime, *, note: str = "") -> Ticket:
    details = {k: v for k, v in ticket.details.items() if k != "waiting"}
    return _move(
        ticket,
        Event.PERSON_RESPONDED,
        actor,
        now,
        note=note.strip(),
        effects=Effects((ClockOp("resume", ticket.resolve_key),)),
        details=details,
    )


def reply(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    answer: str,
    evidence: tuple[str, ...],
    rectification: str = "",
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    """The department's answer or rectification, with evidence; the call-back clock starts."""
    check(ticket, Event.REPLY, actor)
    answer = _required(answer, "答复内容", "answer_required")
    if not evidence:
        raise InvalidInput("答复须附佐证材料", code="evidence_required")
    replied = replace(ticket, reply_count=ticket.reply_count + 1, last_replied_at=now)
    content = {
        "answer": answer,
        "rectification": rectification.strip(),
        "evidence": list(evidence),
        "at": _iso(now),
        "by": actor.user_id,
        "by_name": actor.display_name,
    }
    return _move(
        replied,
        Event.REPLY,
        actor,
        now,
        note=answer,
        data={"reply": content},
        effects=Effects(
            (
                ClockOp("stop", ticket.resolve_key, judge="resolve"),
                ClockOp(
                    "start",
                    replied.call_back_key,
                    kind="call_back",
                    limit=limits.call_back_days,
                    department_id=SUPERVISOR_DEPARTMENT_ID,
                    started_at=now,
                ),
            ),
            (Notice("person", "replied", ticket.department_id),),
        ),
        details={**ticket.details, "reply": content},
    )


def call_back(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    satisfied: bool,
    note: str,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    """回访 by the district office. Unsatisfied: the same department handles it again."""
    event = Event.CALL_BACK_SATISFIED if satisfied else Event.CALL_BACK_UNSATISFIED
    check(ticket, event, actor)
    note = _required(note, "回访情况", "call_back_note_required")
    record = {"satisfied": satisfied, "note": note, "at": _iso(now), "by": actor.user_id}
    department = ticket.department_id or ""
    counts = [(department, "call_backs"), (department, "satisfied" if satisfied else "unsatisfied")]
    clocks = [ClockOp("stop", ticket.call_back_key, judge="call_back")]
    notices: list[Notice] = []
    changes: dict[str, Any] = {"details": {**ticket.details, "call_back": record}}
    moved = ticket
    if not satisfied:
        moved = replace(ticket, leg=ticket.leg + 1, resolve_rev=0, leg_started_at=now)
        leg_clocks, notices = _new_leg_effects(moved, department, now, "reopened", limits)
        clocks += leg_clocks
        counts.append((department, "reopened"))
    return _move(
        moved,
        event,
        actor,
        now,
        note=note,
        data={"call_back": record},
        effects=Effects(tuple(clocks), tuple(notices), tuple(counts)),
        **changes,
    )


def close(ticket: Ticket, actor: Principal, now: datetime, *, note: str = "") -> Ticket:
    return _move(
        ticket,
        Event.CLOSE,
        actor,
        now,
        note=note.strip(),
        effects=Effects(
            (),
            (Notice("person", "closed", ticket.department_id),),
            ((ticket.department_id or "", "closed"),),
        ),
    )


def reopen(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    reason: str,
    calendar: WorkingCalendar,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    """The person is not satisfied: within 15 working days of the reply the same department
    handles it again."""
    check(ticket, Event.REOPEN, actor)
    reason = _required(reason, "重新打开的理由", "reason_required")
    replied = ticket.last_replied_at
    if replied is not None:
        window = limits.reopen_window_days
        if not calendar.window_open_on(
            replied.astimezone(CHINA_TZ).date(), window, now.astimezone(CHINA_TZ).date()
        ):
            raise RuleViolation(
                f"答复已超过{window}个工作日，不能重新打开，请提交新的反映",
                code="reopen_window_passed",
            )
    department = ticket.department_id or ""
    moved = replace(ticket, leg=ticket.leg + 1, resolve_rev=0, leg_started_at=now)
    clocks, notices = _new_leg_effects(moved, department, now, "reopened", limits)
    if ticket.state is TicketState.REPLIED:
        clocks.insert(0, ClockOp("cancel", ticket.call_back_key, reason="办事人重新打开"))
    return _move(
        moved,
        Event.REOPEN,
        actor,
        now,
        note=reason,
        effects=Effects(tuple(clocks), tuple(notices), ((department, "reopened"),)),
    )


def transfer(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    department_id: str,
    department_name: str | None,
    reason: str,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    """Hand the ticket to another department: its own handoff clocks start, the old ones end."""
    check(ticket, Event.TRANSFER, actor)
    if department_id == ticket.department_id:
        raise InvalidInput("不能转办给当前承办部门", code="same_department")
    reason = _required(reason, "转办理由", "reason_required")
    moved = replace(ticket, leg=ticket.leg + 1, resolve_rev=0, leg_started_at=now)
    clocks, notices = _new_leg_effects(moved, department_id, now, "transferred", limits)
    counts = ((department_id, "received"), (ticket.department_id or "", "transferred_out"))
    return _move(
        moved,
        Event.TRANSFER,
        actor,
        now,
        note=reason,
        data={"from_department_id": ticket.department_id, "department_id": department_id},
        effects=Effects(tuple(_close_leg(ticket) + clocks), tuple(notices), counts),
        department_id=department_id,
        department_name=department_name,
    )


def request_return(ticket: Ticket, actor: Principal, now: datetime, *, reason: str) -> Ticket:
    """退单: only with a reason, and only the dispatcher can let it go back to the queue."""
    reason = _required(reason, "退单理由", "reason_required")
    request = {
        "reason": reason,
        "from_state": ticket.state.value,
        "at": _iso(now),
        "by": actor.user_id,
    }
    return _move(
        ticket,
        Event.REQUEST_RETURN,
        actor,
        now,
        note=reason,
        effects=Effects(
            (),
            (Notice("supervisor", "return_requested", ticket.department_id),),
            ((ticket.department_id or "", "return_requests"),),
        ),
        details={**ticket.details, "return_request": request},
    )


def decide_return(
    ticket: Ticket, actor: Principal, now: datetime, *, accept: bool, note: str
) -> Ticket:
    event = Event.ACCEPT_RETURN if accept else Event.REJECT_RETURN
    check(ticket, event, actor)
    note = _required(note, "审核意见", "note_required")
    request = dict(ticket.details.get("return_request") or {})
    request.update(decision="accepted" if accept else "rejected", decided_by=actor.user_id)
    details = {k: v for k, v in ticket.details.items() if k != "return_request"}
    details["last_return_request"] = request
    department = ticket.department_id
    if accept:
        return _move(
            ticket,
            event,
            actor,
            now,
            note=note,
            data={"department_id": department},
            effects=Effects(
                tuple(_close_leg(ticket)),
                (Notice("department", "return_accepted", department),),
                ((department or "", "returns_accepted"),),
            ),
            details=details,
            department_id=None,
            department_name=None,
        )
    previous = TicketState(request.get("from_state") or TicketState.DISPATCHED)
    return _move(
        ticket,
        event,
        actor,
        now,
        note=note,
        target=previous,
        effects=Effects((), (Notice("department", "return_rejected", department),)),
        details=details,
    )


def set_complexity(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    complexity: Complexity,
    reason: str,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    """The dispatcher's call: the resolve clock restarts from the leg's start with the new
    limit (simple 5, complex 15 working days)."""
    check(ticket, Event.SET_COMPLEXITY, actor)
    if complexity is ticket.complexity:
        raise InvalidInput("繁简程度未改变", code="complexity_unchanged")
    reason = _required(reason, "调整理由", "reason_required")
    moved = replace(ticket, complexity=complexity)
    clocks: tuple[ClockOp, ...] = ()
    if ticket.state is not TicketState.SUBMITTED and ticket.department_id:
        moved = replace(moved, resolve_rev=ticket.resolve_rev + 1)
        clocks = (
            ClockOp("cancel", ticket.resolve_key, reason="繁简调整"),
            ClockOp(
                "start",
                moved.resolve_key,
                kind="resolve",
                limit=limits.resolve_days(complexity),
                department_id=ticket.department_id,
                started_at=ticket.leg_started_at or now,
            ),
        )
    return _move(
        moved,
        Event.SET_COMPLEXITY,
        actor,
        now,
        note=reason,
        data={"from": ticket.complexity.value, "to": complexity.value},
        effects=Effects(clocks),
    )


def request_extension(
    ticket: Ticket,
    actor: Principal,
    now: datetime,
    *,
    days: int,
    reason: str,
    limits: TicketLimits = DEFAULT_TICKET_LIMITS,
) -> Ticket:
    check(ticket, Event.REQUEST_EXTENSION, actor)
    if ticket.complexity is not Complexity.COMPLEX:
        raise RuleViolation("只有复杂事项可以申请延期", code="extension_not_allowed")
    pending = ticket.details.get("extension")
    if pending and pending.get("status") in ("pending", "approved"):
        raise RuleViolation("本工单已申请过延期", code="extension_already_requested")
    longest = limits.max_extension_days
    if not 1 <= days <= longest:
        raise InvalidInput(f"延期天数应为1到{longest}个工作日", code="invalid_extension")
    reason = _required(reason, "延期理由", "reason_required")
    request = {"days": days, "reason": reason, "status": "pending", "at": _iso(now)}
    return _move(
        ticket,
        Event.REQUEST_EXTENSION,
        actor,
        now,
        note=reason,
        data={"days": days},
        effects=Effects((), (Notice("supervisor", "extension_requested", ticket.department_id),)),
        details={**ticket.details, "extension": request},
    )


def decide_extension(
    ticket: Ticket, actor: Principal, now: datetime, *, approve: bool, note: str
) -> Ticket:
    event = Event.APPROVE_EXTENSION if approve else Event.REJECT_EXTENSION
    check(ticket, event, actor)
    request = dict(ticket.details.get("extension") or {})
    if request.get("status") != "pending":
        raise IllegalTransition("没有待审批的延期申请", code="illegal_transition")
    note = _required(note, "审批意见", "note_required")
    request.update(status="approved" if approve else "rejected", decided_by=actor.user_id)
    clocks: tuple[ClockOp, ...] = ()
    if approve:
        clocks = (
            ClockOp(
                "extend",
                ticket.resolve_key,
                amount=int(request["days"]),
                reason=str(request.get("reason", "")),
            ),
        )
    template = "extension_approved" if approve else "extension_rejected"
    return _move(
        ticket,
        event,
        actor,
        now,
        note=note,
        data={"days": request.get("days")},
        effects=Effects(clocks, (Notice("department", template, ticket.department_id),)),
        details={**ticket.details, "extension": request},
    )


# ---- routing rules ----------------------------------------------------------------------

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
# The rule id recorded when a ticket was routed to its service item's owner, no rule matching.
ITEM_OWNER_RULE = "item-owner"


@dataclass(frozen=True)
class RoutingFacts:
    kind: TicketKind
    service_item_id: str | None
    item_department_id: str | None
    text: str
    centre_id: str | None


@dataclass(frozen=True)
class RoutingRule:
    """Every criterion that is set must hold (values of one criterion are alternatives)."""

    rule_id: str
    name: str
    department_id: str
    complexity: Complexity = Complexity.SIMPLE
    kinds: frozenset[TicketKind] = frozenset()
    service_item_ids: frozenset[str] = frozenset()
    item_department_ids: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    centre_ids: frozenset[str] = frozenset()
    enabled: bool = True
    version: int = 1

    def matches(self, facts: RoutingFacts) -> bool:
        if not self.enabled:
            return False
        if self.kinds and facts.kind not in self.kinds:
            return False
        if self.service_item_ids and facts.service_item_id not in self.service_item_ids:
            return False
        if self.item_department_ids and facts.item_department_id not in self.item_department_ids:
            return False
        if self.centre_ids and facts.centre_id not in self.centre_ids:
            return False
        text = facts.text.lower()
        return not self.keywords or any(k.lower() in text for k in self.keywords)

    def content(self) -> dict[str, Any]:
        """Everything but the version: a change of content makes a new version."""
        return {
            "rule_id": self.rule_id,
            "name": self.name,
            "department_id": self.department_id,
            "complexity": self.complexity.value,
            "kinds": sorted(k.value for k in self.kinds),
            "service_item_ids": sorted(self.service_item_ids),
            "item_department_ids": sorted(self.item_department_ids),
            "keywords": list(self.keywords),
            "centre_ids": sorted(self.centre_ids),
            "enabled": self.enabled,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingRule:
        return cls(
            rule_id=data["rule_id"],
            name=data.get("name", ""),
            department_id=data["department_id"],
            complexity=Complexity(data.get("complexity", Complexity.SIMPLE)),
            kinds=frozenset(TicketKind(k) for k in data.get("kinds", ())),
            service_item_ids=frozenset(item_code(i) for i in data.get("service_item_ids", ())),
            item_department_ids=frozenset(data.get("item_department_ids", ())),
            keywords=tuple(data.get("keywords", ())),
            centre_ids=frozenset(data.get("centre_ids", ())),
            enabled=bool(data.get("enabled", True)),
            version=int(data.get("version", 1)),
        )


@dataclass(frozen=True)
class RuleSet:
    """The ordered rules (first match wins) and which department owns each service item."""

    version: int = 0
    rules: tuple[RoutingRule, ...] = ()
    item_departments: Mapping[str, str] = field(default_factory=dict)
    updated_by: str | None = None
    updated_at: datetime | None = None

    def route(self, facts: RoutingFacts) -> RoutingMatch | None:
        for rule in self.rules:
            if rule.matches(facts):
                return RoutingMatch(
                    rule.rule_id, rule.version, self.version, rule.department_id, rule.complexity
                )
        # No rule more specific: the item's owner answers for it. Matters across departments
        # and staff conduct stay with the dispatcher unless a rule says otherwise.
        if facts.item_department_id and facts.kind not in (
            TicketKind.CROSS_DEPARTMENT,
            TicketKind.STAFF_CONDUCT,
        ):
            return RoutingMatch(
                ITEM_OWNER_RULE, 0, self.version, facts.item_department_id, Complexity.SIMPLE
            )
        return None

    def item_department(self, code: str | None) -> str | None:
        if not code:
            return None
        for item, department in self.item_departments.items():
            if item_code(item) == code:
                return department
        return None


def next_rule_set(
    current: RuleSet,
    rules: list[RoutingRule],
    item_departments: Mapping[str, str],
    *,
    known_departments: set[str],
    by: str,
    now: datetime,
) -> RuleSet:
    """The next version: a rule keeps its version when its content is unchanged, else +1."""
    problems = []
    seen: set[str] = set()
    for rule in rules:
        if not _RULE_ID.match(rule.rule_id):
            problems.append(f"规则编号 {rule.rule_id!r} 应为小写字母、数字、下划线或连字符")
        if rule.rule_id in seen or rule.rule_id == ITEM_OWNER_RULE:
            problems.append(f"规则编号 {rule.rule_id} 重复或为保留编号")
        seen.add(rule.rule_id)
        if rule.department_id not in known_departments:
            problems.append(f"规则 {rule.rule_id} 的承办部门 {rule.department_id} 不存在")
    for item, department in item_departments.items():
        if department not in known_departments:
            problems.append(f"事项 {item} 的主管部门 {department} 不存在")
    if problems:
        raise InvalidInput("；".join(problems), code="invalid_routing_rules")
    previous = {r.rule_id: r for r in current.rules}
    versioned = []
    for rule in rules:
        before = previous.get(rule.rule_id)
        if before is None:
            version = 1
        elif before.content() == rule.content():
            version = before.version
        else:
            version = before.version + 1
        versioned.append(replace(rule, version=version))
    return RuleSet(
        version=current.version + 1,
        rules=tuple(versioned),
        item_departments=dict(item_departments),
        updated_by=by,
        updated_at=now,
    )


# ---- views for the public ---------------------------------------------------------------


def mask_name(name: str) -> str:
    """Staff names shown to the public: the family name only (刘强 → 刘*)."""
    name = name.strip()
    if len(name) <= 1:
        return name
    return name[0] + "*" * (len(name) - 1)
