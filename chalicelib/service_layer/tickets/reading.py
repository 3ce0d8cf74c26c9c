"""Reading tickets: one ticket, a person's own, a department's, and the dispatch queues."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.identity import Principal
from chalicelib.domain.tickets.ticket import Owner, Ticket, TicketState
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.tickets.common import TicketDeps, _load, resource_of


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
