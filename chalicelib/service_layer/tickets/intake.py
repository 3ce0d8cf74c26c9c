"""Filing a ticket: from a person or staff on their behalf, from a 12345 work order, from a live
help request not resolved."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from chalicelib.domain import hotline
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.domain.hotline import WorkOrder
from chalicelib.domain.identity import PUBLIC_ROLES, Principal
from chalicelib.domain.tickets.intake import Intake, check_channel, file, possible_duplicates
from chalicelib.domain.tickets.limits import TicketLimits
from chalicelib.domain.tickets.ticket import (
    Channel,
    ContactMethod,
    ContactPreference,
    Owner,
    Ticket,
    TicketKind,
)
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.tickets.common import (
    TicketDeps,
    _guide_item,
    _limits,
    keyed_ticket_id,
)
from chalicelib.service_layer.tickets.effects import (
    _STEP_BY_STEP,
    _store_with_effects,
    apply_effects,
)

if TYPE_CHECKING:
    from chalicelib.service_layer.ports.hotline import HotlineStore


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
    limits: TicketLimits | None = None,
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
    check_channel(principal, request.channel)
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
        duplicates = possible_duplicates(found, owner.key, request.service_item_id)
    intake = Intake(
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
    ticket = file(
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
