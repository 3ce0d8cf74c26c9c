"""办不成事 ticket use cases: intake, transitions, lists, routing rules, the monthly report.

A change is stored together with its effects (deadline clocks, report counters, notifications,
the audit facts) in one transaction: the ticket put is conditional on the version read (of two
concurrent transitions one wins, the other is re-read and re-judged), and the ticket remembers
the last timeline entry whose effects were applied, which is then always its last one.

Tickets stored before that (or a change too large for one transaction) take the step-by-step
path: the change first, then its effects, each idempotent (clock keys, notification business
keys, count markers); entries after the applied one are applied again before the next change
of the ticket (and on an intake retry), so a crash between the two halves loses nothing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain import hotline
from chalicelib.domain import tickets as domain
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID, Clock, ClockState, Outcome
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.hotline import WorkOrder
from chalicelib.domain.identity import PUBLIC_ROLES, Principal, Role
from chalicelib.domain.items import item_code
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.domain.personal_data import mask_text
from chalicelib.domain.tickets import (
    Channel,
    ClockOp,
    ClockRef,
    Complexity,
    ContactMethod,
    ContactPreference,
    Notice,
    Owner,
    RoutingRule,
    RuleSet,
    Ticket,
    TicketKind,
    TicketState,
    TimelineEntry,
)
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.authorization import Action, Resource, can, require

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.deadlines import DeadlineDeps
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import Directory
    from chalicelib.service_layer.ports.hotline import HotlineStore
    from chalicelib.service_layer.ports.tickets import TicketStore
    from chalicelib.service_layer.ports.transactions import Transactions


_SAVE_ATTEMPTS = 3
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
TICKET_ID = re.compile(r"^QP\d{8}-[0-9A-Z]{8}$")


class TimeSource(Protocol):
    def now(self) -> datetime: ...


def new_ticket_id(now: datetime) -> str:
    """QP<date>-<8 random characters>: people read it out on the phone."""
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"QP{now.astimezone(CHINA_TZ):%Y%m%d}-{suffix}"


def keyed_ticket_id(now: datetime, intake_key: str) -> str:
    digest = hashlib.sha256(intake_key.encode("utf-8")).digest()
    suffix = "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:8])
    return f"QP{now.astimezone(CHINA_TZ):%Y%m%d}-{suffix}"


@dataclass
class TicketDeps:
    tickets: TicketStore
    deadlines: DeadlineDeps
    notifier: Notifier
    audit_log: AuditLog
    directory: Directory
    clock: TimeSource
    completed: Callable[[str, str], None]  # (handling type, id): the container invites a review
    new_id: Callable[[datetime], str] = new_ticket_id
    transactions: Transactions | None = None  # a change and its effects in one write; None: steps
    # The service guide (`latest_item(code)`, cached): tickets and rules name its items.
    items: Any = None

    @classmethod
    def from_container(cls, c: Any) -> TicketDeps:
        from chalicelib.service_layer.deadlines import DeadlineDeps

        return cls(
            tickets=c.ticket_store,
            deadlines=DeadlineDeps.from_container(c),
            notifier=c.notifier,
            audit_log=c.audit_log,
            directory=c.directory,
            clock=c.clock,
            completed=c.handling_completed,
            transactions=c.transactions,
            items=c.application_store,
        )


def resource_of(ticket: Ticket) -> Resource:
    return Resource(
        owner_user_id=ticket.owner.user_id,
        owner_subject_id=ticket.owner.subject_id,
        department_id=ticket.department_id,
    )


def _load(deps: TicketDeps, principal: Principal, ticket_id: str, action: Action) -> Ticket:
    """The ticket, if this principal may see it; someone else's answers like a missing one."""
    require(principal, action)
    not_found = NotFound("未找到该工单", code="ticket_not_found")
    if not TICKET_ID.match(ticket_id):
        raise not_found
    ticket = deps.tickets.get(ticket_id)
    if ticket is None:
        raise not_found
    try:
        require(principal, action, resource_of(ticket))
    except NotFound:
        raise not_found from None
    return ticket


def _limits(deps: TicketDeps, now: datetime) -> domain.TicketLimits:
    """The stored limits in force today (read through the short-lived read cache)."""
    day = now.astimezone(CHINA_TZ).date()
    return domain.limits_in_force(deps.tickets.limits_versions(), day).limits


def _department_name(deps: TicketDeps, department_id: str | None) -> str | None:
    if not department_id:
        return None
    found = deps.directory.get_department(department_id)
    if found is None:
        raise InvalidInput("承办部门不存在", code="department_not_found")
    return found.name


# ---- intake -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeRequest:
    kind: TicketKind
    channel: Channel
    description: str
    contact_method: ContactMethod
    contact_mobile: str | None = None
    contact_note: str = ""
    service_item_id: str | None = None
    service_item_name: str | None = None
    application_id: str | None = None
    attachments: tuple[str, ...] = ()
    centre_id: str | None = None
    # Staff filing for someone (window, hotline): who the ticket is about.
    on_behalf_name: str | None = None
    on_behalf_subject_id: str | None = None
    on_behalf_user_id: str | None = None

    @property
    def on_behalf(self) -> bool:
        return bool(self.on_behalf_name or self.on_behalf_subject_id or self.on_behalf_user_id)


@dataclass(frozen=True)
class IntakeResult:
    ticket: Ticket
    created: bool  # False: a rerun of a keyed request found the ticket its first run filed


def _owner(deps: TicketDeps, principal: Principal, request: IntakeRequest) -> Owner:
    if principal.role in PUBLIC_ROLES:
        if request.on_behalf:
            raise InvalidInput("本人提交时不能填写代办对象", code="on_behalf_not_allowed")
        return Owner(principal.user_id, principal.subject_id, principal.display_name)
    if not request.on_behalf_name or not (
        request.on_behalf_subject_id or request.on_behalf_user_id
    ):
        raise InvalidInput(
            "工作人员代为提交时须填写办事人姓名及证件号码或账号", code="on_behalf_required"
        )
    user_id = request.on_behalf_user_id
    if user_id is not None and not _is_that_account(deps, user_id, request):
        # The account would read the ticket, with the ID number and mobile given for it: when
        # they are not the account's own, the ticket stays with the staff and the centre, and
        # the person is reached through the mobile given.
        user_id = None
    return Owner(user_id, request.on_behalf_subject_id, request.on_behalf_name)


def _is_that_account(deps: TicketDeps, user_id: str, request: IntakeRequest) -> bool:
    """Whether the identity data given for the person are the account's own: an ID number
    (or credit code) and a contact mobile, each if given, equal to the account's profile."""
    from chalicelib.domain.personal_data import normalise_mobile

    profile = deps.directory.get_user(user_id)
    if profile is None:
        return False
    given_subject = (request.on_behalf_subject_id or "").strip().upper()
    if given_subject and given_subject != (profile.subject_id or "").strip().upper():
        return False
    mobile = request.contact_mobile
    return not mobile or normalise_mobile(mobile) == normalise_mobile(profile.mobile or "")


def _contact(deps: TicketDeps, principal: Principal, request: IntakeRequest) -> ContactPreference:
    mobile = request.contact_mobile
    needs_mobile = request.contact_method in (ContactMethod.PHONE, ContactMethod.SMS)
    if needs_mobile and not mobile and principal.role in PUBLIC_ROLES:
        profile = deps.directory.get_user(principal.user_id)
        mobile = profile.mobile if profile else None
    if needs_mobile and not mobile:
        raise InvalidInput("电话或短信联系须填写手机号码", code="contact_mobile_required")
    return ContactPreference(request.contact_method, mobile, request.contact_note.strip())


def file_ticket(
    deps: TicketDeps,
    principal: Principal,
    request: IntakeRequest,
    idempotency_key: str | None = None,
    *,
    limits: domain.TicketLimits | None = None,
    details: dict[str, Any] | None = None,
) -> IntakeResult:
    """Take in a report, route it by the first matching rule, start its clocks and notify.
    Repeats of a keyed request are answered by the HTTP layer's stored response. `limits`
    replace the stored ones for this intake (a 12345 order's own deadlines); `details` are
    kept on the ticket."""
    require(principal, Action.FILE_TICKET)
    owner = _owner(deps, principal, request)
    require(
        principal,
        Action.FILE_TICKET,
        Resource(owner_user_id=owner.user_id, owner_subject_id=owner.subject_id),
    )
    domain.check_channel(principal, request.channel)
    contact = _contact(deps, principal, request)
    now = deps.clock.now()
    intake_key = f"{principal.user_id}#{idempotency_key}" if idempotency_key else None
    # A keyed intake's id follows from caller + key: a rerun of a request whose first run died
    # half-way finds that ticket and finishes its effects instead of filing a second one.
    ticket_id = keyed_ticket_id(now, intake_key) if intake_key else deps.new_id(now)
    rules = deps.tickets.current_rule_set()
    guide_item = _guide_item(deps, request.service_item_id)
    if guide_item is not None:
        request = replace(
            request,
            service_item_id=guide_item.code,
            service_item_name=request.service_item_name or guide_item.name,
        )
    duplicates: list[str] = []
    if request.service_item_id:
        found = deps.tickets.open_for_owner_item(owner.key, request.service_item_id)
        duplicates = domain.possible_duplicates(found, owner.key, request.service_item_id)
    intake = domain.Intake(
        ticket_id=ticket_id,
        kind=request.kind,
        channel=request.channel,
        description=request.description.strip(),
        owner=owner,
        contact=contact,
        service_item_id=request.service_item_id,
        service_item_name=request.service_item_name,
        application_id=request.application_id,
        attachments=request.attachments,
        centre_id=request.centre_id,
        intake_key=intake_key,
    )
    ticket = domain.file(
        intake,
        principal,
        now,
        rules=rules,
        duplicates=duplicates,
        limits=limits or _limits(deps, now),
        item_owner=guide_item.department_id if guide_item is not None else None,
    )
    if details:
        ticket = replace(ticket, details={**ticket.details, **details})
    if ticket.department_id:
        found_department = deps.directory.get_department(ticket.department_id)
        ticket = replace(
            ticket, department_name=found_department.name if found_department else None
        )
    if deps.transactions is not None:
        try:
            return IntakeResult(_store_with_effects(deps, ticket, create=True), created=True)
        except Conflict as error:
            if error.code != "ticket_exists":
                if error.code not in _STEP_BY_STEP:
                    raise
                created = deps.tickets.create(ticket)
            else:
                created = None
    else:
        created = deps.tickets.create(ticket)
    if created is None:
        existing = deps.tickets.get(ticket_id)
        if existing is None or existing.intake_key != intake_key or intake_key is None:
            raise Conflict("工单编号冲突，请重试", code="ticket_id_conflict")
        return IntakeResult(apply_effects(deps, existing), created=False)
    return IntakeResult(apply_effects(deps, created), created=True)


def _guide_item(deps: TicketDeps, code: str | None) -> Any:
    """The guide's item a ticket or rule names (by its code, or a legacy id), or None when
    none is named; an unknown item is refused."""
    if not code or deps.items is None:
        return None
    found = deps.items.latest_item(item_code(code))
    if found is None:
        raise InvalidInput(
            f"办事事项 {code} 不存在，请填写办事指南中的事项编码", code="item_not_found"
        )
    return found


# ---- transitions ------------------------------------------------------------------------


def _transition(
    deps: TicketDeps,
    principal: Principal,
    ticket_id: str,
    change: Callable[[Ticket, datetime], Ticket],
) -> Ticket:
    """Read, change, store on the version read; re-read and re-judge when someone else stored
    a change in between, so two concurrent transitions never both win."""
    for attempt in range(_SAVE_ATTEMPTS):
        ticket = _load(deps, principal, ticket_id, Action.TRANSITION_TICKET)
        if ticket.pending_effects:
            ticket = apply_effects(deps, ticket)
        changed = change(ticket, deps.clock.now())
        try:
            if deps.transactions is not None:
                try:
                    return _store_with_effects(deps, changed, create=False)
                except Conflict as error:
                    if error.code not in _STEP_BY_STEP:
                        raise
            saved = deps.tickets.save(changed)
        except Conflict as error:
            # The ticket or one of its clocks (the deadline sweep) changed since it was read.
            if error.code not in _RETRY or attempt == _SAVE_ATTEMPTS - 1:
                raise
            continue
        return apply_effects(deps, saved)
    raise AssertionError("unreachable")


def dispatch(
    deps: TicketDeps,
    principal: Principal,
    ticket_id: str,
    *,
    department_id: str,
    complexity: Complexity | None = None,
    note: str = "",
) -> Ticket:
    name = _department_name(deps, department_id)
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.dispatch(
            t,
            principal,
            now,
            department_id=department_id,
            department_name=name,
            complexity=complexity,
            note=note.strip(),
            limits=_limits(deps, now),
        ),
    )


def accept(
    deps: TicketDeps,
    principal: Principal,
    ticket_id: str,
    *,
    contact_method: ContactMethod,
    note: str,
    contacted_at: datetime | None = None,
    staff_phone: str | None = None,
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.accept(
            t,
            principal,
            now,
            contact_method=contact_method,
            contacted_at=contacted_at,
            note=note,
            staff_phone=staff_phone,
        ),
    )


def await_person(deps: TicketDeps, principal: Principal, ticket_id: str, *, reason: str) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.await_person(t, principal, now, reason=reason),
    )


def person_responded(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, note: str = ""
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.person_responded(t, principal, now, note=note),
    )


def reply(
    deps: TicketDeps,
    principal: Principal,
    ticket_id: str,
    *,
    answer: str,
    evidence: tuple[str, ...],
    rectification: str = "",
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.reply(
            t,
            principal,
            now,
            answer=answer,
            evidence=evidence,
            rectification=rectification,
            limits=_limits(deps, now),
        ),
    )


def call_back(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, satisfied: bool, note: str
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.call_back(
            t, principal, now, satisfied=satisfied, note=note, limits=_limits(deps, now)
        ),
    )


def close(deps: TicketDeps, principal: Principal, ticket_id: str, *, note: str = "") -> Ticket:
    return _transition(
        deps, principal, ticket_id, lambda t, now: domain.close(t, principal, now, note=note)
    )


def reopen(deps: TicketDeps, principal: Principal, ticket_id: str, *, reason: str) -> Ticket:
    calendar = deps.deadlines.calendar()
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.reopen(
            t, principal, now, reason=reason, calendar=calendar, limits=_limits(deps, now)
        ),
    )


def transfer(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, department_id: str, reason: str
) -> Ticket:
    name = _department_name(deps, department_id)
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.transfer(
            t,
            principal,
            now,
            department_id=department_id,
            department_name=name,
            reason=reason,
            limits=_limits(deps, now),
        ),
    )


def request_return(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, reason: str
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.request_return(t, principal, now, reason=reason),
    )


def decide_return(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, accept: bool, note: str
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.decide_return(t, principal, now, accept=accept, note=note),
    )


def set_complexity(
    deps: TicketDeps,
    principal: Principal,
    ticket_id: str,
    *,
    complexity: Complexity,
    reason: str,
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.set_complexity(
            t, principal, now, complexity=complexity, reason=reason, limits=_limits(deps, now)
        ),
    )


def request_extension(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, days: int, reason: str
) -> Ticket:
    return _transition(
        deps,
        principal,
        ticket_id,
        lambda t, now: domain.request_extension(
            t, principal, now, days=days, reason=reason, limits=_limits(deps, now)
        ),
    )


def decide_extension(
    deps: TicketDeps, principal: Principal, ticket_id: str, *, approve: bool, note: str
) -> Ticket:
    def change(ticket: Ticket, now: datetime) -> Ticket:
        resolve = ticket.clocks.get(ticket.resolve_key)
        if approve and resolve is not None and resolve.due_at and now > resolve.due_at:
            raise RuleViolation("办结时限已过，不能再批准延期", code="deadline_passed")
        return domain.decide_extension(ticket, principal, now, approve=approve, note=note)

    return _transition(deps, principal, ticket_id, change)


# ---- effects ----------------------------------------------------------------------------


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
            subject_type=domain.SUBJECT_TYPE,
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
            subject_type=domain.SUBJECT_TYPE,
            subject_id=ticket.ticket_id,
            before={"state": entry.from_state.value} if entry.from_state else None,
            after={"state": entry.to_state.value, "department_id": entry.department_id},
            correlation_id=get_correlation_id(),
            details=details,
        )
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
        "kind": domain.KIND_LABELS[ticket.kind],
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


# ---- reading ----------------------------------------------------------------------------


def get_ticket(deps: TicketDeps, principal: Principal, ticket_id: str) -> Ticket:
    return _load(deps, principal, ticket_id, Action.READ_TICKET)


@dataclass(frozen=True)
class TicketPage:
    items: list[Ticket]
    last_key: dict[str, Any] | None


def list_my_tickets(
    deps: TicketDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> TicketPage:
    """The caller's own tickets, newest first (filed by them or for them at a window)."""
    owner = Owner(principal.user_id, principal.subject_id)
    require(
        principal,
        Action.READ_TICKET,
        Resource(owner_user_id=owner.user_id, owner_subject_id=owner.subject_id),
    )
    page = deps.tickets.by_owner(owner.key, limit, start_key)
    visible = [t for t in page.items if can(principal, Action.READ_TICKET, resource_of(t))]
    return TicketPage(visible, page.last_key)


def list_department_tickets(
    deps: TicketDeps,
    principal: Principal,
    department_id: str,
    *,
    state: TicketState | None,
    overdue: bool,
    due_before: date | None,
    limit: int,
    start_key: dict[str, Any] | None,
) -> TicketPage:
    """A department's tickets, nearest deadline first; filters are key conditions."""
    require(principal, Action.LIST_DEPARTMENT_TICKETS)
    try:
        require(principal, Action.LIST_DEPARTMENT_TICKETS, Resource(department_id=department_id))
    except NotFound:
        raise NotFound("未找到该部门", code="department_not_found") from None
    bounds = []
    if overdue:
        bounds.append(deps.clock.now())
    if due_before is not None:
        bounds.append(datetime.combine(due_before, time(0), tzinfo=CHINA_TZ))
    page = deps.tickets.by_department(
        department_id, state, min(bounds) if bounds else None, limit, start_key
    )
    return TicketPage(page.items, page.last_key)


QUEUES = ("unrouted", "return", "extension")


def list_queue(
    deps: TicketDeps,
    principal: Principal,
    queue: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> TicketPage:
    """The dispatcher's work: unrouted tickets (manual 转办), 退单 and extension requests."""
    require(principal, Action.DISPATCH_TICKETS)
    if queue not in QUEUES:
        raise InvalidInput("队列应为 unrouted、return 或 extension", code="invalid_queue")
    page = deps.tickets.queue(queue, limit, start_key)
    return TicketPage(page.items, page.last_key)


# ---- routing rules ----------------------------------------------------------------------


def get_rule_set(deps: TicketDeps, principal: Principal) -> RuleSet:
    require(principal, Action.READ_TICKET_ROUTING)
    return deps.tickets.current_rule_set()


def replace_rule_set(
    deps: TicketDeps,
    principal: Principal,
    *,
    rules: list[RoutingRule],
    item_departments: dict[str, str],
    expected_version: int,
) -> RuleSet:
    """Store the next version of the ordered rules. Tickets keep the rule version that routed
    them; a concurrent edit (another version stored meanwhile) is a conflict."""
    require(principal, Action.MANAGE_TICKET_ROUTING)
    current = deps.tickets.current_rule_set()
    if expected_version != current.version:
        raise Conflict(
            f"派单规则已更新为第{current.version}版，请刷新后再修改", code="ruleset_changed"
        )
    for rule in rules:
        for code in rule.service_item_ids:
            _guide_item(deps, code)
    item_departments = {
        _guide_item(deps, code).code if deps.items is not None else code: department
        for code, department in item_departments.items()
    }
    rules = [
        replace(rule, service_item_ids=frozenset(item_code(i) for i in rule.service_item_ids))
        for rule in rules
    ]
    departments = {r.department_id for r in rules} | set(item_departments.values())
    known = {d for d in departments if deps.directory.get_department(d) is not None}
    now = deps.clock.now()
    new = domain.next_rule_set(
        current,
        rules,
        item_departments,
        known_departments=known,
        by=principal.user_id,
        now=now,
    )
    if not deps.tickets.put_rule_set(new):
        raise Conflict("派单规则已被他人更新，请刷新后再修改", code="ruleset_changed")
    deps.audit_log.append(
        AuditEntry(
            actor_id=principal.user_id,
            actor_role=principal.role.value,
            action="ticket_routing.updated",
            subject_type="ticket_routing",
            subject_id="rules",
            before={"version": current.version, "rules": [r.to_dict() for r in current.rules]},
            after={"version": new.version, "rules": [r.to_dict() for r in new.rules]},
            correlation_id=get_correlation_id(),
            details={"item_departments": dict(new.item_departments)},
        )
    )
    return new


# ---- ticket limits ----------------------------------------------------------------------


@dataclass(frozen=True)
class LimitsView:
    in_force: domain.TicketLimitsVersion
    scheduled: list[domain.TicketLimitsVersion]  # later versions, oldest first


def get_limits(deps: TicketDeps, principal: Principal) -> LimitsView:
    require(principal, Action.READ_TICKET_LIMITS)
    versions = deps.tickets.limits_versions()
    today = deps.clock.now().astimezone(CHINA_TZ).date()
    in_force = domain.limits_in_force(versions, today)
    later = [v for v in versions if v.version > in_force.version]
    return LimitsView(in_force, sorted(later, key=lambda v: v.version))


def replace_limits(
    deps: TicketDeps,
    principal: Principal,
    *,
    limits: domain.TicketLimits,
    effective_from: date | None,
    expected_version: int,
    note: str = "",
) -> domain.TicketLimitsVersion:
    """Store the next version of the limits, in force from `effective_from` (today when not
    given). Clocks already running keep the limit they started with."""
    require(principal, Action.MANAGE_TICKET_LIMITS)
    versions = deps.tickets.limits_versions()
    latest = max(versions, key=lambda v: v.version, default=domain.TicketLimitsVersion())
    if expected_version != latest.version:
        raise Conflict(
            f"工单时限已更新为第{latest.version}版，请刷新后再修改", code="limits_changed"
        )
    now = deps.clock.now()
    new = domain.next_limits_version(
        latest,
        limits,
        effective_from=effective_from or now.astimezone(CHINA_TZ).date(),
        by=principal.user_id,
        now=now,
        note=note,
    )
    if not deps.tickets.put_limits_version(new):
        raise Conflict("工单时限已被他人更新，请刷新后再修改", code="limits_changed")
    deps.audit_log.append(
        AuditEntry(
            actor_id=principal.user_id,
            actor_role=principal.role.value,
            action="ticket_limits.updated",
            subject_type="ticket_limits",
            subject_id="limits",
            before={"version": latest.version, "limits": latest.limits.to_dict()},
            after={"version": new.version, "limits": new.limits.to_dict()},
            correlation_id=get_correlation_id(),
            details={
                "effective_from": new.effective_from.isoformat() if new.effective_from else None,
                "note": new.note,
            },
        )
    )
    return new


# ---- the monthly report -----------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentFigures:
    department_id: str
    department_name: str
    counts: dict[str, int]
    overdue: int  # ticket deadlines that passed this month (催办 sent)
    escalations: int  # 督办 this month
    reported: int  # 通报 this month

    def rate(self, good: str, total: str) -> float | None:
        judged = self.counts.get(total, 0)
        return round(self.counts.get(good, 0) / judged, 4) if judged else None


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_STEP_PAGE = 100


def ticket_report(deps: TicketDeps, principal: Principal, month: str) -> list[DepartmentFigures]:
    """Per department: received, on-time contact and resolution, overdue, escalations and
    call-back satisfaction. Counters are one Query on the month; overdue and escalations come
    from the deadline engine's ladder steps of the month (Queries on its step index)."""
    require(principal, Action.READ_TICKET_REPORTS)
    if not _MONTH.match(month):
        raise InvalidInput("月份格式应为 YYYY-MM", code="invalid_month")
    counters = deps.tickets.month_counters(month)
    steps = {name: _ticket_steps(deps, name, month) for name in ("urge", "supervise", "report")}
    departments = set(counters) | {d for found in steps.values() for d in found}
    rows = []
    names: dict[str, str] = {}
    for department in sorted(departments):
        if not can(principal, Action.READ_TICKET_REPORTS, Resource(department_id=department)):
            continue
        found = deps.directory.get_department(department)
        names[department] = found.name if found else department
        rows.append(
            DepartmentFigures(
                department_id=department,
                department_name=names[department],
                counts=counters.get(department, {}),
                overdue=steps["urge"].get(department, 0),
                escalations=steps["supervise"].get(department, 0),
                reported=steps["report"].get(department, 0),
            )
        )
    return rows


def _ticket_steps(deps: TicketDeps, step: str, month: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    start_key = None
    while True:
        page = deps.deadlines.escalations.steps_in_month(step, month, _STEP_PAGE, start_key)
        for record in page.items:
            if record.get("subject_type") == domain.SUBJECT_TYPE and record.get("department_id"):
                department = record["department_id"]
                counts[department] = counts.get(department, 0) + 1
        start_key = page.last_key
        if start_key is None:
            return counts


# ---- 12345 work orders --------------------------------------------------------------------

# The results 12345 is told of: the department's answer, and the ticket's closing.
_REPORTED_TO_12345 = frozenset({TicketState.REPLIED, TicketState.CLOSED})


def receive_work_order(deps: TicketDeps, orders: HotlineStore, order: WorkOrder) -> IntakeResult:
    """A 12345 work order becomes one ticket however often 12345 sends it: the first arrival
    claims the order number for a new ticket id, every later one finds that id (and files the
    ticket itself if the first arrival died before it did). The order's deadlines, in working
    days from when 12345 took the call, are kept on the working-day calendar; the ticket's
    clocks run to them."""
    now = deps.clock.now()
    received = order.received_at.astimezone(CHINA_TZ).isoformat()
    ticket_id = orders.claim_order(order.order_no, deps.new_id(now), received)
    existing = deps.tickets.get(ticket_id)
    if existing is not None:
        return IntakeResult(apply_effects(deps, existing), created=False)
    calendar = deps.deadlines.calendar()
    start = order.received_at.astimezone(CHINA_TZ)
    contact_day, _ = calendar.add_working_days(start.date(), order.contact_days)
    resolve_day, _ = calendar.add_working_days(start.date(), order.resolve_days)
    end_of = time(23, 59, 59)
    details = {
        "hotline": hotline.order_details(
            order,
            datetime.combine(contact_day, end_of, CHINA_TZ),
            datetime.combine(resolve_day, end_of, CHINA_TZ),
        )
    }
    base = _limits(deps, now)
    limits = replace(
        base,
        contact_days=order.contact_days,
        resolve_simple_days=order.resolve_days,
        resolve_complex_days=max(order.resolve_days, base.resolve_complex_days),
    )
    request = IntakeRequest(
        kind=TicketKind.OTHER,
        channel=Channel.HOTLINE,
        description=order.description,
        contact_method=ContactMethod.PHONE,
        contact_mobile=order.caller_mobile,
        contact_note=f"12345 工单 {order.order_no}",
        service_item_id=order.item_code,
        on_behalf_name=order.caller_name,
        on_behalf_subject_id=order.subject_id,
    )
    keyed = replace(deps, new_id=lambda _now: ticket_id)
    try:
        return file_ticket(
            keyed, hotline.HOTLINE_PRINCIPAL, request, limits=limits, details=details
        )
    except Conflict as error:
        # Two arrivals of one order at once: the other filed it first.
        found = deps.tickets.get(ticket_id)
        if error.code not in ("ticket_id_conflict", "ticket_exists") or found is None:
            raise
        return IntakeResult(apply_effects(deps, found), created=False)


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


# ---- help requests not resolved ------------------------------------------------------------


def file_for_help(deps: TicketDeps, agent: Principal, request: Any, reason: str) -> str:
    """A live-help request not resolved, as a 办不成事 ticket filed by the agent for the person
    (one tap): the ticket id. Keyed by the request, so a second tap finds the same ticket."""
    profile = deps.directory.get_user(request.user_id)
    if profile is None:
        raise NotFound("求助人不存在", code="user_not_found")
    intake = IntakeRequest(
        kind=TicketKind.OTHER,
        channel=Channel.LIVE_HELP,
        description=f"人工帮办未能解决：{reason}（求助：{request.topic}）",
        contact_method=ContactMethod.MINI_PROGRAM,
        contact_mobile=profile.mobile,
        service_item_id=request.item_id,
        on_behalf_name=profile.display_name or profile.user_id,
        on_behalf_subject_id=profile.subject_id,
        on_behalf_user_id=profile.user_id,
    )
    result = file_ticket(deps, agent, intake, f"help-{request.request_id}")
    return result.ticket.ticket_id
