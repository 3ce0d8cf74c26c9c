"""The ticket limits: reading them and storing a new version in force from a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Principal
from chalicelib.domain.tickets.limits import (
    TicketLimits,
    TicketLimitsVersion,
    limits_in_force,
    next_limits_version,
)
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.tickets.common import TicketDeps


@dataclass(frozen=True)
class LimitsView:
    in_force: TicketLimitsVersion
    scheduled: list[TicketLimitsVersion]  # later versions, oldest first


def get_limits(deps: TicketDeps, principal: Principal) -> LimitsView:
    require(principal, Action.READ_TICKET_LIMITS)
    versions = deps.tickets.limits_versions()
    today = deps.clock.now().astimezone(CHINA_TZ).date()
    in_force = limits_in_force(versions, today)
    later = [v for v in versions if v.version > in_force.version]
    return LimitsView(in_force, sorted(later, key=lambda v: v.version))


def replace_limits(
    deps: TicketDeps,
    principal: Principal,
    *,
    limits: TicketLimits,
    effective_from: date | None,
    expected_version: int,
    note: str = "",
) -> TicketLimitsVersion:
    """Store the next version of the limits, in force from `effective_from` (today when not
    given). Clocks already running keep the limit they started with."""
    require(principal, Action.MANAGE_TICKET_LIMITS)
    versions = deps.tickets.limits_versions()
    latest = max(versions, key=lambda v: v.version, default=TicketLimitsVersion())
    if expected_version != latest.version:
        raise Conflict(
            f"工单时限已更新为第{latest.version}版，请刷新后再修改", code="limits_changed"
        )
    now = deps.clock.now()
    new = next_limits_version(
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
