"""Live help (专业人工帮办): a request, its pick-up against the one-minute target, and how
it ended."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.domain.bookings.booking import VideoRoom
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.errors import InvalidInput, RuleViolation


class HelpStatus(StrEnum):
    WAITING = "waiting"
    PICKED_UP = "picked_up"
    RESOLVED = "resolved"
    NOT_RESOLVED = "not_resolved"
    ABANDONED = "abandoned"


class HelpOutcome(StrEnum):
    RESOLVED = "resolved"
    NOT_RESOLVED = "not_resolved"  # with a reason; may become a 办不成事 ticket
    ABANDONED = "abandoned"  # the person left, before or after pick-up


HELP_ENDED = frozenset({HelpStatus.RESOLVED, HelpStatus.NOT_RESOLVED, HelpStatus.ABANDONED})
HELP_RESOLUTION_TARGET = 0.90


@dataclass(frozen=True)
class HelpRequest:
    request_id: str
    user_id: str
    topic: str
    item_id: str | None
    status: HelpStatus
    requested_at: datetime
    picked_at: datetime | None = None
    agent_id: str | None = None
    pickup_seconds: int | None = None
    target_met: bool | None = None
    alerted: bool = False
    room: VideoRoom | None = None
    version: int | None = None
    team: str | None = None  # who answers: the item's department, else the help desk
    ended_at: datetime | None = None
    ended_by: str | None = None
    outcome_reason: str | None = None
    ticket_id: str | None = None  # the 办不成事 ticket a request not resolved became
    # Handed over from the assistant: its conversation and what was said so far.
    conversation_id: str | None = None
    transcript: tuple[str, ...] = ()


def end_help(
    request: HelpRequest, outcome: HelpOutcome, now: datetime, by: str, reason: str = ""
) -> HelpRequest:
    """How a help request ends. Resolved or not needs an agent to have picked it up; a request
    not resolved says why; a person may abandon it before or after the pick-up."""
    if request.status in HELP_ENDED:
        raise RuleViolation("该求助已结束", code="help_already_ended")
    if outcome is not HelpOutcome.ABANDONED and request.status is not HelpStatus.PICKED_UP:
        raise RuleViolation("求助尚未接入，不能登记办理结果", code="help_not_picked_up")
    reason = reason.strip()
    if outcome is HelpOutcome.NOT_RESOLVED and not reason:
        raise InvalidInput("未解决的求助须说明原因", code="reason_required")
    return replace(
        request,
        status=HelpStatus(outcome.value),
        ended_at=now,
        ended_by=by,
        outcome_reason=reason or None,
    )


def pick_up(
    request: HelpRequest, agent_id: str, now: datetime, rules: BookingRules, room: VideoRoom
) -> HelpRequest:
    if request.status is not HelpStatus.WAITING:
        raise RuleViolation("该求助已被其他帮办人员接入", code="help_already_picked_up")
    waited = max(0, int((now - request.requested_at).total_seconds()))
    return replace(
        request,
        status=HelpStatus.PICKED_UP,
        picked_at=now,
        agent_id=agent_id,
        pickup_seconds=waited,
        target_met=waited <= rules.help_pickup_target_seconds,
        room=room,
    )


def help_overdue(request: HelpRequest, now: datetime, rules: BookingRules) -> bool:
    deadline = request.requested_at + timedelta(seconds=rules.help_pickup_target_seconds)
    return request.status is HelpStatus.WAITING and now > deadline
