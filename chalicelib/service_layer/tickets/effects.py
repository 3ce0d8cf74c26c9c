"""A change's effects (deadline clocks, report counters, notifications, audit, the 12345 result):
in the change's transaction, or step by step and idempotent after it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain import hotline
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID, Clock, ClockState, Outcome
from chalicelib.domain.errors import Conflict, RuleViolation
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.domain.personal_data import mask_text
from chalicelib.domain.tickets.ticket import (
    KIND_LABELS,
    SUBJECT_TYPE,
    ClockOp,
    ClockRef,
    Complexity,
    Notice,
    Ticket,
    TicketState,
    TimelineEntry,
)
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.tickets.common import _SAVE_ATTEMPTS, TicketDeps

# Conflicts of a transaction that the step-by-step path resolves: an effect found already
# stored (written by that path before), or more writes than one transaction holds.
_STEP_BY_STEP = frozenset({"effect_conflict", "transaction_too_large"})
_RETRY = frozenset({"ticket_changed", "clock_changed"})


@dataclass
class _Run:
    """What applying one ticket's pending entries has learned so far."""

    clocks: dict[str, ClockRef]
    deadlines: Any  # DeadlineDeps
    touched: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    # In a transaction: what may only happen once it is written (metrics, review invitations).
    later: list[Callable[[], None]] | None = None

    def then(self, action: Callable[[], None]) -> None:
        if self.later is None:
            action()
        else:
            self.later.append(action)


def _store_with_effects(deps: TicketDeps, ticket: Ticket, *, create: bool) -> Ticket:
    """Store a new or changed ticket and the effects of its entries not yet applied, in one
    transaction; the stored ticket has them all applied."""
    pending = ticket.pending_effects
    later: list[Callable[[], None]] = []

    def metric(*args: Any, **kwargs: Any) -> None:
        later.append(lambda: deps.deadlines.metric(*args, **kwargs))

    run = _Run(
        clocks=dict(ticket.clocks),
        deadlines=replace(deps.deadlines, metric=metric),
        later=later,
    )
    if deps.transactions is None:
        raise RuntimeError("storing a ticket with its effects needs the transactions port")
    with deps.transactions.atomic() as transaction:
        for entry in pending:
            _apply_entry(deps, ticket, entry, run)
        done = replace(
            ticket,
            clocks={**ticket.clocks, **{k: run.clocks[k] for k in run.touched}},
            effects_through=max([ticket.effects_through, *(e.seq for e in pending)]),
        )
        stored = deps.tickets.create(done) if create else deps.tickets.save(done)
        for action in later:
            transaction.after_commit(action)
    if stored is None:  # a create the store refused without raising: the id is taken
        raise Conflict("工单已存在", code="ticket_exists")
    return stored


def apply_effects(deps: TicketDeps, ticket: Ticket) -> Ticket:
    """Apply the effects of every entry not yet applied, in order; then remember that.
    A failure is logged and left for the next change of the ticket to apply again."""
    pending = ticket.pending_effects
    if not pending:
        return ticket
    run = _Run(clocks=dict(ticket.clocks), deadlines=deps.deadlines)
    for entry in pending:
        try:
            _apply_entry(deps, ticket, entry, run)
        except Exception:
            from chalicelib.observability import logger

            logger.exception(
                "ticket effects failed; applied again on the next change",
                extra={"ticket_id": ticket.ticket_id, "seq": entry.seq},
            )
            return replace(ticket, clocks=run.clocks)
    return _mark_applied(deps, ticket, pending[-1].seq, run)


def _mark_applied(deps: TicketDeps, ticket: Ticket, seq: int, run: _Run) -> Ticket:
    current = ticket
    for attempt in range(_SAVE_ATTEMPTS):
        clocks = {**current.clocks, **{k: run.clocks[k] for k in run.touched}}
        updated = replace(current, clocks=clocks, effects_through=max(seq, current.effects_through))
        try:
            return deps.tickets.save(updated)
        except Conflict:
            fresh = deps.tickets.get(ticket.ticket_id)
            if fresh is None or attempt == _SAVE_ATTEMPTS - 1:
                return replace(ticket, clocks=clocks)
            current = fresh
    return ticket


def _actor(entry: TimelineEntry) -> Principal:
    return Principal(entry.actor_id, Role(entry.actor_role), entry.actor_name)


def _apply_entry(deps: TicketDeps, ticket: Ticket, entry: TimelineEntry, run: _Run) -> None:
    _audit(deps, ticket, entry)
    judged: list[tuple[str, str, bool]] = []
    for op in entry.effects.clocks:
        result = _clock_op(deps, ticket, entry, op, run)
        if (
            op.judge
            and result is not None
            and result.state in (ClockState.MET, ClockState.BREACHED)
        ):
            judged.append((result.department_id or "", op.judge, result.state is ClockState.MET))
    _count(deps, ticket, entry, judged)
    for notice in entry.effects.notices:
        _notify(deps, ticket, entry, notice, run)
    if entry.to_state in _REPORTED_TO_12345 and ticket.details.get("hotline"):
        _report_to_12345(deps, ticket, entry)
    if entry.to_state is TicketState.CLOSED:
        run.then(lambda: deps.completed("ticket", ticket.ticket_id))


def _ref(key: str, clock: Clock) -> ClockRef:
    return ClockRef(
        key=key,
        clock_id=clock.clock_id,
        kind=clock.kind,
        department_id=clock.department_id,
        state=clock.state.value,
        due_at=clock.due_at,
        provisional=clock.provisional,
        extension=clock.extension,
    )


def _clock_op(
    deps: TicketDeps, ticket: Ticket, entry: TimelineEntry, op: ClockOp, run: _Run
) -> Clock | None:
    from chalicelib.service_layer import deadlines

    dl = run.deadlines
    actor = _actor(entry)
    if op.op == "start":
        clock = deadlines.start_clock(
            dl,
            subject_type=SUBJECT_TYPE,
            subject_id=ticket.ticket_id,
            kind=op.kind,
            limit=op.limit,
            department_id=op.department_id,
            started_at=op.started_at,
            key=op.key,
            label=ticket.ticket_id,
            actor=actor,
        )
    else:
        ref = run.clocks.get(op.key)
        if ref is None:
            return None  # never started (e.g. a leg ended before its clocks began)
        try:
            clock = _change_clock(dl, op, ref.clock_id, actor)
        except RuleViolation:
            # Already in the asked-for state (applied before) or no longer applicable.
            clock = deadlines.get_clock(dl, ref.clock_id)
    run.clocks[op.key] = _ref(op.key, clock)
    run.touched.add(op.key)
    return clock


def _change_clock(dl: Any, op: ClockOp, clock_id: str, actor: Principal) -> Clock:
    from chalicelib.service_layer import deadlines

    if op.op == "stop":
        return deadlines.stop_clock(dl, clock_id, outcome=Outcome.MET, actor=actor)
    if op.op == "cancel":
        return deadlines.stop_clock(
            dl, clock_id, outcome=Outcome.CANCELLED, actor=actor, reason=op.reason
        )
    if op.op == "pause":
        return deadlines.pause_clock(dl, clock_id, reason=op.reason or "等待办事人", actor=actor)
    if op.op == "resume":
        return deadlines.resume_clock(dl, clock_id, actor=actor)
    if op.op == "extend":
        return deadlines.extend_clock(
            dl, clock_id, amount=op.amount, reason=op.reason or "批准延期", approved_by=actor
        )
    raise ValueError(f"unknown clock operation {op.op}")


def _count(
    deps: TicketDeps, ticket: Ticket, entry: TimelineEntry, judged: list[tuple[str, str, bool]]
) -> None:
    amounts: dict[str, dict[str, int]] = {}
    for department, name in entry.effects.counts:
        if department:
            bucket = amounts.setdefault(department, {})
            bucket[name] = bucket.get(name, 0) + 1
    for department, prefix, on_time in judged:
        if department:
            bucket = amounts.setdefault(department, {})
            for name in (f"{prefix}_judged", f"{prefix}_on_time" if on_time else f"{prefix}_late"):
                bucket[name] = bucket.get(name, 0) + 1
    month = entry.at.astimezone(CHINA_TZ).strftime("%Y-%m")
    for department, figures in amounts.items():
        deps.tickets.count(
            ticket.ticket_id, entry.seq, department, month, figures, deps.clock.now()
        )


def _audit(deps: TicketDeps, ticket: Ticket, entry: TimelineEntry) -> None:
    details: dict[str, Any] = {"seq": entry.seq}
    for name in ("routing", "department_id", "from_department_id", "complexity", "days"):
        if name in entry.data:
            details[name] = entry.data[name]
    deps.audit_log.append(
        AuditEntry(
            actor_id=entry.actor_id,
            actor_role=entry.actor_role,
            action=f"ticket.{entry.event.value}",
            subject_type=SUBJECT_TYPE,
            subject_id=ticket.ticket_id,
            before={"state": entry.from_state.value} if entry.from_state else None,
            after={"state": entry.to_state.value, "department_id": entry.department_id},
            correlation_id=get_correlation_id(),
            details=details,
        ),
        # Effects applied again (after a partial failure, or by the next change) name the
        # same fact: the audit trail keeps one.
        fact_id=f"ticket.{ticket.ticket_id}.{entry.seq}",
    )


# -- notifications --------------------------------------------------------------------------
_TEMPLATES: dict[str, tuple[str, str]] = {
    "dispatched": (
        "派单：办不成事工单 {ticket_id}",
        "{kind}：{summary}。请于 {contact_due} 前联系办事人，"
        "{resolve_due} 前办结（{complexity}）。",
    ),
    "transferred": (
        "转办：办不成事工单 {ticket_id}",
        "{from_department}转来{kind}工单：{summary}。请于 {contact_due} 前联系办事人，"
        "{resolve_due} 前办结（{complexity}）。",
    ),
    "reopened": (
        "重新办理：办不成事工单 {ticket_id}",
        "办事人对答复不满意，工单重新交由贵单位办理：{note}。请于 {contact_due} 前联系办事人，"
        "{resolve_due} 前办结。",
    ),
    "return_requested": (
        "退单申请：办不成事工单 {ticket_id}",
        "{department}申请退单，理由：{note}。请派单员审核。",
    ),
    "return_accepted": (
        "退单已同意：办不成事工单 {ticket_id}",
        "派单员已同意贵单位的退单申请：{note}。工单将另行派发。",
    ),
    "return_rejected": (
        "退单被驳回：办不成事工单 {ticket_id}",
        "派单员驳回了贵单位的退单申请：{note}。请继续办理，时限照常计算。",
    ),
    "extension_requested": (
        "延期申请：办不成事工单 {ticket_id}",
        "{department}申请延期{days}个工作日，理由：{note}。请派单员审批。",
    ),
    "extension_approved": (
        "延期已批准：办不成事工单 {ticket_id}",
        "办结时限延长{days}个工作日，新的办结时限为 {resolve_due}。",
    ),
    "extension_rejected": (
        "延期未获批准：办不成事工单 {ticket_id}",
        "派单员未批准延期：{note}。请在原时限内办结。",
    ),
    "accepted": (
        "您反映的问题已受理",
        "{department}已受理您反映的问题（工单 {ticket_id}），承办人已与您联系。",
    ),
    "replied": (
        "您反映的问题已答复",
        "{department}已答复您反映的问题（工单 {ticket_id}），请在“我的反映”中查看。"
        "如不满意，可在答复后15个工作日内申请重新办理。",
    ),
    "closed": ("您反映的问题已办结", "工单 {ticket_id} 已办结，感谢您的反映与监督。"),
}


def _when(ref: ClockRef | None) -> str:
    if ref is None or ref.due_at is None:
        return "（时限计算中）"
    return ref.due_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _dept_name(deps: TicketDeps, department_id: str | None, run: _Run) -> str:
    if not department_id:
        return "承办部门"
    if department_id not in run.names:
        found = deps.directory.get_department(department_id)
        run.names[department_id] = found.name if found else department_id
    return run.names[department_id]


_CLAUSE_LIMIT = 80
_CLOSING_PUNCTUATION = "。．.！!？?；;，,、 \t\r\n"


def _clause(text: str) -> str:
    """Free text quoted inside a sentence of a template ("…：{summary}。请于…"): masked,
    shortened, without its own closing punctuation (no "。。")."""
    text = mask_text(text.strip())  # before shortening: a cut ID number would not be found
    if len(text) > _CLAUSE_LIMIT:
        return text[:_CLAUSE_LIMIT].rstrip(_CLOSING_PUNCTUATION) + "…"
    return text.rstrip(_CLOSING_PUNCTUATION)


def _notify(
    deps: TicketDeps, ticket: Ticket, entry: TimelineEntry, notice: Notice, run: _Run
) -> None:
    if notice.audience == "person":
        if not ticket.owner.user_id:
            return  # filed for someone without an account: the window tells them
        kind, recipient = RecipientKind.USER, ticket.owner.user_id
    elif notice.audience == "supervisor":
        kind, recipient = RecipientKind.DEPARTMENT, SUPERVISOR_DEPARTMENT_ID
    else:
        if not notice.department_id:
            return
        kind, recipient = RecipientKind.DEPARTMENT, notice.department_id
    starts = {op.kind: run.clocks.get(op.key) for op in entry.effects.clocks if op.op == "start"}
    resolve = starts.get("resolve") or run.clocks.get(ticket.resolve_key)
    values = {
        "ticket_id": ticket.ticket_id,
        "kind": KIND_LABELS[ticket.kind],
        "summary": _clause(ticket.description),
        "note": _clause(entry.note) or "（无）",
        "complexity": "复杂件" if ticket.complexity is Complexity.COMPLEX else "简单件",
        "contact_due": _when(starts.get("contact")),
        "resolve_due": _when(resolve),
        "department": _dept_name(deps, notice.department_id, run),
        "from_department": _dept_name(deps, entry.data.get("from_department_id"), run),
        "days": entry.data.get("days", ""),
    }
    title, body = _TEMPLATES[notice.template]
    deps.notifier.notify(
        NotificationRequest(
            business_key=f"ticket:{ticket.ticket_id}:{entry.seq}:{notice.template}:{recipient}",
            recipient_kind=kind,
            recipient_id=recipient,
            category=f"ticket.{notice.template}",
            title=title.format(**values),
            body=body.format(**values),
            data={
                "ticket_id": ticket.ticket_id,
                "event": entry.event.value,
                "seq": entry.seq,
                "state": entry.to_state.value,
                "department_id": notice.department_id,
                "contact_due_at": _iso(starts.get("contact")),
                "resolve_due_at": _iso(resolve),
            },
            correlation_id=get_correlation_id(),
        )
    )


def _iso(ref: ClockRef | None) -> str | None:
    return ref.due_at.isoformat() if ref is not None and ref.due_at else None


# The results 12345 is told of: the department's answer, and the ticket's closing.
_REPORTED_TO_12345 = frozenset({TicketState.REPLIED, TicketState.CLOSED})


def _report_to_12345(deps: TicketDeps, ticket: Ticket, entry: TimelineEntry) -> None:
    """The ticket's result to 12345, through the signed, retried department webhooks (12345 is
    the department `HOTLINE_DEPARTMENT_ID`); once per entry whatever the retries."""
    order = ticket.details["hotline"]
    reply = ticket.details.get("reply") or {}
    closed = entry.to_state is TicketState.CLOSED
    deps.notifier.notify(
        NotificationRequest(
            business_key=f"hotline:{order['order_no']}:{ticket.ticket_id}:{entry.seq}",
            recipient_kind=RecipientKind.DEPARTMENT,
            recipient_id=hotline.HOTLINE_DEPARTMENT_ID,
            category="hotline.result",
            title=f"12345 工单 {order['order_no']} 办理结果：{'已办结' if closed else '已答复'}",
            body=_clause(reply.get("answer") or entry.note) or "（无）",
            data={
                "order_no": order["order_no"],
                "ticket_id": ticket.ticket_id,
                "state": entry.to_state.value,
                "seq": entry.seq,
                "at": entry.at.isoformat(),
                "answer": reply.get("answer"),
                "department_id": ticket.department_id,
                "resolve_due_at": order.get("resolve_due_at"),
            },
            correlation_id=get_correlation_id(),
        )
    )
