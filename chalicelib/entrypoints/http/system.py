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


class HealthView(ApiModel):
    status: str = Field(description="ok 或 degraded")
    stage: str
    checks: list[DependencyStatus]


@api_route(
    bp,
    "/health",
    summary="健康检查：数据表与队列可用",
    tags=("system",),
    response=HealthView,
    public=True,
)
def health(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.health import check_dependencies

    checks = check_dependencies(container().aws, container().settings)
    ok = all(check.ok for check in checks)
    view = HealthView(
        status="ok" if ok else "degraded",
        stage=container().settings.stage,
        checks=[DependencyStatus(name=c.name, ok=c.ok) for c in checks],
    )
    return json_response(view.model_dump(mode="json"), 200 if ok else 503)


@api_route(bp, "/openapi.json", summary="OpenAPI 3.1 接口文档", tags=("system",), public=True)
def openapi_document(call: Call):
    from chalicelib.entrypoints.http.openapi import build_openapi

    return build_openapi(bp.current_app)
