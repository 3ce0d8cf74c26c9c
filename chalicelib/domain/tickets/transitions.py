"""The state machine: which event moves a ticket from which state, for which roles, and each
transition with the timeline entry and effects it records."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID
from chalicelib.domain.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.tickets.limits import DEFAULT_TICKET_LIMITS, TicketLimits
from chalicelib.domain.tickets.ticket import (
    _HANDLING,
    _S,
    MAX_TIMELINE,
    STATE_LABELS,
    ClockOp,
    Complexity,
    ContactMethod,
    Effects,
    Event,
    Notice,
    RoutingMatch,
    Ticket,
    TicketState,
    TimelineEntry,
    _iso,
)

# Targets that are not a fixed state.
SAME = "same"  # the event records something without moving the ticket
PREVIOUS = "previous"  # back to the state before the pending 退单 request

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
