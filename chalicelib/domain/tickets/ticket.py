"""The ticket aggregate: its vocabulary (kinds, channels, states, events), the value objects
its timeline carries, and what the public sees of staff names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ

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

_S = TicketState
_HANDLING = frozenset({_S.DISPATCHED, _S.ACCEPTED, _S.REOPENED})


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


def mask_name(name: str) -> str:
    """Staff names shown to the public: the family name only (刘强 → 刘*)."""
    name = name.strip()
    if len(name) <= 1:
        return name
    return name[0] + "*" * (len(name) - 1)
