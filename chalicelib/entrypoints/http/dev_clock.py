"""Local stage only: read and move the demo clock (`/dev/clock`).

The local runner shares one ManualClock between the API and its schedule pump, so moving it
forward makes deadlines fall due and fires the schedules that measure time on it.
"""

from chalice import Blueprint
from pydantic import ConfigDict, Field

from chalicelib.domain.errors import RuleViolation
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel

bp = Blueprint(__name__)

_MAX_MINUTES = 400 * 24 * 60


class ClockView(ApiModel):
    now: str = Field(description="当前演示时间（ISO 8601，北京时间）")


class AdvanceClockRequest(ApiModel):
    model_config = ConfigDict(extra="forbid")
    advance_minutes: int = Field(ge=1, le=_MAX_MINUTES, description="向前拨动的分钟数")


class AdvancedClockView(ClockView):
    previous: str
    advanced_minutes: int


@api_route(
    bp,
    "/dev/clock",
    summary="（仅本地）当前演示时间",
    tags=("dev",),
    response=ClockView,
    public=True,
    local_only=True,
)
def read_clock(call: Call):
    from chalicelib.bootstrap import container

    return ClockView(now=container().clock.now().isoformat())


@api_route(
    bp,
    "/dev/clock",
    method="POST",
    summary="（仅本地）将演示时间向前拨动",
    tags=("dev",),
    body=AdvanceClockRequest,
    response=AdvancedClockView,
    public=True,
    local_only=True,
    errors=(RuleViolation,),
)
def advance_clock(call: Call):
    from datetime import timedelta

    from chalicelib.adapters.clock import ManualClock
    from chalicelib.bootstrap import container
    from chalicelib.domain.audit import AuditEntry

    c = container()
    clock = c.clock
    if not isinstance(clock, ManualClock):
        raise RuleViolation("当前时钟不可调整", code="clock_not_adjustable")
    previous = clock.now()
    now = clock.advance(timedelta(minutes=call.body.advance_minutes))
    c.audit_log.append(
        AuditEntry(
            actor_id="dev",
            actor_role="system",
            action="demo_clock.advanced",
            subject_type="demo_clock",
            subject_id="local",
            before={"now": previous.isoformat()},
            after={"now": now.isoformat()},
            correlation_id=call.correlation_id,
        )
    )
    return AdvancedClockView(
        now=now.isoformat(),
        previous=previous.isoformat(),
        advanced_minutes=call.body.advance_minutes,
    )
