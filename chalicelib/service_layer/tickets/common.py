"""What every ticket use case shares: its dependencies, ticket ids, loading a ticket the caller
may act on, the limits in force and department names."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.identity import Principal
from chalicelib.domain.items import item_code
from chalicelib.domain.tickets.limits import TicketLimits, limits_in_force
from chalicelib.domain.tickets.ticket import Ticket
from chalicelib.service_layer.authorization import Action, Resource, require

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.deadlines import DeadlineDeps
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import Directory
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


def _limits(deps: TicketDeps, now: datetime) -> TicketLimits:
    """The stored limits in force today (read through the short-lived read cache)."""
    day = now.astimezone(CHINA_TZ).date()
    return limits_in_force(deps.tickets.limits_versions(), day).limits


def _department_name(deps: TicketDeps, department_id: str | None) -> str | None:
    if not department_id:
        return None
    found = deps.directory.get_department(department_id)
    if found is None:
        raise InvalidInput("承办部门不存在", code="department_not_found")
    return found.name


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
