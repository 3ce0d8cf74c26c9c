"""Live help (专业人工帮办): requests, pick-up against the one-minute target, and how they end."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.bookings import live_help as domain_help
from chalicelib.domain.bookings.jobs import Job, JobKind, job_id_for
from chalicelib.domain.bookings.live_help import (
    HELP_ENDED,
    HelpOutcome,
    HelpRequest,
    HelpStatus,
    pick_up,
)
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, NotFound, RuleViolation
from chalicelib.domain.identity import Principal
from chalicelib.domain.notifications import RecipientKind
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.bookings.common import (
    BookingDeps,
    Page,
    _audit,
    _check_id,
    _new_booking_id,
    _notify,
)


def request_help(
    deps: BookingDeps,
    principal: Principal,
    topic: str,
    item_id: str | None,
    idempotency_key: str | None = None,
    conversation_id: str | None = None,
    transcript: tuple[str, ...] = (),
) -> HelpRequest:
    """A person asks for help now; an agent should pick it up within a minute (target). From
    the assistant, the request carries the conversation's transcript for the agent."""
    require(principal, Action.REQUEST_HELP)
    now, rules = deps.clock.now(), deps.rules()
    request_id = _new_booking_id(principal, f"help\n{idempotency_key}" if idempotency_key else None)
    if idempotency_key:
        existing = deps.store.get_help(request_id)
        if existing is not None:
            return existing
    request = HelpRequest(
        request_id,
        principal.user_id,
        topic,
        item_id,
        HelpStatus.WAITING,
        now,
        team=_help_team(deps, item_id, rules),
        conversation_id=conversation_id,
        transcript=transcript,
    )
    try:
        saved = deps.store.create_help(request)
    except Exception:
        existing = deps.store.get_help(request_id)
        if existing is None:
            raise
        return existing
    # A pick-up at exactly the target still meets it: the check is due a second later.
    due = now + timedelta(seconds=rules.help_pickup_target_seconds + 1)
    job_id = job_id_for(request_id, JobKind.HELP_PICKUP.value, 0)
    deps.jobs.schedule(Job(job_id, "help", request_id, JobKind.HELP_PICKUP.value, 0, due), now)
    _audit(
        deps, principal, "help.requested", "help_request", request_id, None, _help_snapshot(saved)
    )
    deps.metric("HelpRequested", 1, "Count")
    return saved


def get_help(deps: BookingDeps, principal: Principal, request_id: str) -> HelpRequest:
    require(principal, Action.READ_HELP)
    _check_id(request_id, "help_request_not_found", "求助不存在")
    request = deps.store.get_help(request_id)
    if request is None or not can(
        principal, Action.READ_HELP, Resource(owner_user_id=request.user_id)
    ):
        raise NotFound("求助不存在", code="help_request_not_found")
    return request


def waiting_help(
    deps: BookingDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Page:
    require(principal, Action.ANSWER_HELP)
    page = deps.store.waiting_help(limit, start_key)
    return Page(page.items, page.last_key)


def pick_up_help(deps: BookingDeps, principal: Principal, request_id: str) -> HelpRequest:
    """An agent takes the request: time to pick-up is measured against the 1-minute target."""
    require(principal, Action.ANSWER_HELP)
    request = get_help(deps, principal, request_id)
    now, rules = deps.clock.now(), deps.rules()
    room = deps.video.create_room(
        f"help:{request_id}", title="专业人工帮办", starts_at=now, participant_id=request.user_id
    )
    try:
        picked = deps.store.save_help(pick_up(request, principal.user_id, now, rules, room))
    except Conflict as error:
        raise RuleViolation("该求助已被其他帮办人员接入", code="help_already_picked_up") from error
    _notify(
        deps,
        f"help:{request_id}:picked",
        picked.user_id,
        "help.picked_up",
        "帮办人员已接入",
        f"专业帮办人员已接入您的求助，请点击链接进入视频：{room.join_url}",
        {"request_id": request_id, "room_id": room.room_id, "join_url": room.join_url},
    )
    if not picked.target_met:
        _alert_help_missed(deps, picked, now, rules)
    deps.jobs.finish(job_id_for(request_id, JobKind.HELP_PICKUP.value, 0), "picked_up", now)
    _audit(
        deps,
        principal,
        "help.picked_up",
        "help_request",
        request_id,
        _help_snapshot(request),
        _help_snapshot(picked),
    )
    deps.metric("HelpPickupSeconds", picked.pickup_seconds or 0, "Seconds")
    deps.metric("HelpPickupOnTime", 1 if picked.target_met else 0, "Count")
    _help_fact(deps, picked)
    return picked


def _help_team(deps: BookingDeps, item_id: str | None, rules: BookingRules) -> str:
    """Who answers a request: the specialists of the item's department, else the help desk."""
    if item_id and deps.items is not None:
        item = deps.items.latest_item(item_id)
        if item is not None and item.department_id:
            return str(item.department_id)
    return rules.help_alert_department_id


def _help_fact(deps: BookingDeps, request: HelpRequest) -> None:
    """The request as a fact of its month's operations report (written again as it ends)."""
    if deps.facts is None:
        return
    deps.facts.put_fact(
        request.requested_at.astimezone(CHINA_TZ).strftime("%Y-%m"),
        "help",
        request.request_id,
        {
            "request_id": request.request_id,
            "team": request.team,
            "pickup_seconds": request.pickup_seconds,
            "pickup_met": request.target_met,
            "outcome": request.status.value if request.status in HELP_ENDED else None,
            "ticket_id": request.ticket_id,
        },
    )


def end_help(
    deps: BookingDeps,
    principal: Principal,
    request_id: str,
    outcome: HelpOutcome,
    reason: str = "",
    file_ticket: bool = True,
) -> HelpRequest:
    """How a help request ended: the agent says resolved or not (with the reason; a request
    not resolved becomes a 办不成事 ticket in the same tap); the person or the agent records
    that the person left. Counted per team for the report."""
    request = get_help(deps, principal, request_id)
    if outcome is not HelpOutcome.ABANDONED or principal.user_id != request.user_id:
        require(principal, Action.ANSWER_HELP)
    now = deps.clock.now()
    ended = domain_help.end_help(request, outcome, now, principal.user_id, reason)
    if outcome is HelpOutcome.NOT_RESOLVED and file_ticket:
        if deps.file_ticket is None:
            raise RuntimeError("filing a ticket from a help request needs the tickets capability")
        # Keyed by the request: a retry of this call files no second ticket.
        ended = replace(ended, ticket_id=deps.file_ticket(principal, ended, reason.strip()))
    try:
        saved = deps.store.save_help(ended)
    except Conflict as error:
        raise RuleViolation("该求助已被他人处理，请刷新", code="help_changed") from error
    if request.status is HelpStatus.WAITING:
        deps.jobs.finish(job_id_for(request_id, JobKind.HELP_PICKUP.value, 0), "abandoned", now)
    _audit(
        deps,
        principal,
        f"help.{saved.status.value}",
        "help_request",
        request_id,
        _help_snapshot(request),
        _help_snapshot(saved),
        reason=saved.outcome_reason,
        ticket_id=saved.ticket_id,
    )
    deps.metric("HelpEnded", 1, "Count", outcome=saved.status.value)
    _help_fact(deps, saved)
    return saved


def _help_snapshot(request: HelpRequest) -> dict[str, Any]:
    return {
        "status": request.status.value,
        "item_id": request.item_id,
        "agent_id": request.agent_id,
        "pickup_seconds": request.pickup_seconds,
        "target_met": request.target_met,
        "team": request.team,
        "ticket_id": request.ticket_id,
    }


def _alert_help_missed(
    deps: BookingDeps, request: HelpRequest, now: datetime, rules: BookingRules
) -> None:
    waited = int((now - request.requested_at).total_seconds())
    created = _notify(
        deps,
        f"help:{request.request_id}:missed",
        rules.help_alert_department_id,
        "help.pickup_missed",
        "专业人工帮办响应超时",
        f"求助 {request.request_id} 已等待{waited}秒，超过{rules.help_pickup_target_seconds}秒"
        "的响应目标，请尽快安排帮办人员接入。",
        {"request_id": request.request_id, "waited_seconds": waited},
        RecipientKind.DEPARTMENT,
    )
    if created:
        deps.metric("HelpPickupMissed", 1, "Count")
