"""Public system routes: health and the OpenAPI document."""

from chalice import Blueprint
from pydantic import Field

from chalicelib.entrypoints.http.errors import json_response
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel

bp = Blueprint(__name__)


class DependencyStatus(ApiModel):
    name: str
    ok: bool


class PumpLag(ApiModel):
    name: str = Field(description="stream:<表> 或 sqs:<队列>")
    kind: str = Field(description="stream 或 queue")
    lag: int = Field(description="尚未投递的记录或消息数")
    idle_seconds: float = Field(description="距上次投递（或追平）的秒数")
    stalled: bool = Field(description="落后且长时间没有进展")


class HealthView(ApiModel):
    status: str = Field(description="ok 或 degraded")
    stage: str
    checks: list[DependencyStatus]
    pumps: list[PumpLag] | None = Field(default=None, description="仅本地环境：事件泵的积压")


@api_route(
    bp,
    "/health",
    summary="健康检查：数据表与队列可用",
    tags=("system",),
    response=HealthView,
    public=True,
    also_statuses=(503,),  # degraded: the same body
)
def health(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.health import check_dependencies, local_pump_status

    checks = check_dependencies(container().aws, container().settings)
    pumps = local_pump_status() if container().settings.stage == "local" else None
    ok = all(check.ok for check in checks) and not any(p.stalled for p in pumps or ())
    view = HealthView(
        status="ok" if ok else "degraded",
        stage=container().settings.stage,
        checks=[DependencyStatus(name=c.name, ok=c.ok) for c in checks],
        pumps=None
        if pumps is None
        else [
            PumpLag(
                name=p.name, kind=p.kind, lag=p.lag, idle_seconds=p.idle_seconds, stalled=p.stalled
            )
            for p in pumps
        ],
    )
    return json_response(view.model_dump(mode="json"), 200 if ok else 503)


@api_route(bp, "/openapi.json", summary="OpenAPI 3.1 接口文档", tags=("system",), public=True)
def openapi_document(call: Call):
    from chalicelib.entrypoints.http.openapi import build_openapi

    return build_openapi(bp.current_app)
