"""OpenAPI 3.1, generated from the route declarations and their pydantic models."""

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.entrypoints.http.routing import ROUTES, RouteSpec

_REF = "#/components/schemas/{model}"
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "request_id"],
    "properties": {
        "code": {"type": "string", "description": "稳定的机器可读错误码"},
        "message": {"type": "string", "description": "面向用户的中文说明"},
        "request_id": {"type": "string"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def registered_specs(app: Any) -> list[RouteSpec]:
    """The declared routes that this app actually serves (a stage may leave some out)."""
    seen: set[tuple[str, str]] = set()
    specs = []
    for spec in ROUTES:
        key = (spec.path, spec.method)
        if key in seen:
            continue
        if spec.method in app.routes.get(spec.path, {}):
            seen.add(key)
            specs.append(spec)
    return specs


def build_openapi(app: Any) -> dict[str, Any]:
    specs = registered_specs(app)
    models: set[type[BaseModel]] = set()
    for spec in specs:
        for model in (spec.body, spec.response):
            if model is not None:
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in ordered]
    keyed += [(m, "serialization") for m in ordered]
    refs, defs = models_json_schema(keyed, ref_template=_REF) if keyed else ({}, {})
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {
            "operationId": _operation_id(spec),
            "summary": spec.summary,
            "tags": list(spec.tags),
            "parameters": _path_parameters(spec.path) + _query_parameters(spec.query),
            "responses": _responses(spec, refs),
        }
        if spec.description:
            operation["description"] = spec.description
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
            }
        if spec.idempotency:
            operation["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": spec.idempotency == "required",
                    "description": "重复请求返回首次的结果（Idempotent-Replayed: true）",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_\\-]{8,128}$"},
                }
            )
        operation["security"] = [] if spec.public else [{"bearerAuth": []}]
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "青浦好办 API",
            "version": "0.1.0",
            "description": "青浦区“一网通办”政务服务平台后端接口",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation_id(spec: RouteSpec) -> str:
    words = re.sub(r"[{}]", "", spec.path).strip("/").replace("/", "_").replace("-", "_")
    return f"{spec.method.lower()}_{words or 'root'}".replace(".", "_")


# Every identifier in a path is one URL segment of these characters; anything else (a "/", a
# "%") never reaches the route: the gateway answers it before the application.
_PATH_SEGMENT = {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,128}$"}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": _PATH_SEGMENT}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "title"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


_DESCRIPTIONS = {
    400: "请求有误",
    401: "未登录或登录凭证无效",
    403: "无权操作",
    404: "未找到相关记录",
    409: "与当前记录状态冲突（已被修改或重复提交）",
    413: "请求内容过大",
    415: "请求内容格式不受支持",
    422: "不符合办理规则",
    500: "系统错误",
    503: "服务暂时不可用",
}
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def error_statuses(spec: RouteSpec) -> set[int]:
    """Every error status the route can answer, derived from what the routing layer checks
    and what its kind of view can raise, plus what the route declares (`api_route(errors=)`)."""
    from chalicelib.entrypoints.http.errors import STATUS_BY_ERROR, status_for

    # Validation; a record named in the path or the query that does not exist (or is someone
    # else's, which answers the same); unhandled; a dependency down.
    # 401 on public routes too: some read an optional token, and refuse a bad one.
    statuses = {400, 401, 404, 500, 503}
    if not spec.public:
        statuses.add(403)
    if spec.method in _WRITE_METHODS:
        statuses.add(413)  # the size limit applies to every body method
        # A change can meet a concurrent writer or a state that refuses it.
        statuses |= {404, 409, 422}
    if spec.body is not None:
        statuses.add(415)
    for error in spec.errors:
        statuses.add(STATUS_BY_ERROR.get(error) or status_for(error()))
    return statuses


def _responses(spec: RouteSpec, refs: dict[Any, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    ok: dict[str, Any] = {"description": "成功"}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(spec.response, "serialization")]}}
    if _offers_csv(spec):
        ok.setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(spec.status): ok}
    for status in sorted(error_statuses(spec)):
        responses[str(status)] = {"description": _DESCRIPTIONS.get(status, "错误"), **error}
    return responses


def _offers_csv(spec: RouteSpec) -> bool:
    """A `format` query parameter that allows "csv" (reports): the body is then CSV."""
    if spec.query is None:
        return False
    prop = spec.query.model_json_schema().get("properties", {}).get("format", {})
    return "csv" in prop.get("enum", []) or "csv" in str(prop)
