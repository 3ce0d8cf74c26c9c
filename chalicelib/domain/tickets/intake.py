"""Filing a ticket: the channel a caller may use, the first timeline entry, possible duplicates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import PUBLIC_ROLES, SYSTEM, Principal
from chalicelib.domain.tickets.limits import DEFAULT_TICKET_LIMITS, TicketLimits
from chalicelib.domain.tickets.routing import RoutingFacts, RuleSet
from chalicelib.domain.tickets.ticket import (
    OPEN_STATES,
    PUBLIC_CHANNELS,
    STAFF_CHANNELS,
    Channel,
    ContactPreference,
    Event,
    Owner,
    Ticket,
    TicketKind,
    TicketState,
)
from chalicelib.domain.tickets.transitions import _append, dispatch


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
