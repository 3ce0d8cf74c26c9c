"""The transitions of a ticket, each read, judged by the domain and stored on the version read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chalicelib.domain.errors import Conflict, RuleViolation
from chalicelib.domain.identity import Principal
from chalicelib.domain.tickets import transitions as domain
from chalicelib.domain.tickets.ticket import Complexity, ContactMethod, Ticket
from chalicelib.service_layer.authorization import Action
from chalicelib.service_layer.tickets.common import (
    _SAVE_ATTEMPTS,
    TicketDeps,
    _department_name,
    _limits,
    _load,
)
from chalicelib.service_layer.tickets.effects import (
    _RETRY,
    _STEP_BY_STEP,
    _store_with_effects,
    apply_effects,
)


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
