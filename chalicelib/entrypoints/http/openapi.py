"""OpenAPI 3.1, generated from the route declarations and their pydantic models."""

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

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
    keyed = [(m, "validation") for m in ordered] + [(m, "serialization") for m in ordered]
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


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
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


def _responses(spec: RouteSpec, refs: dict[Any, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    ok: dict[str, Any] = {"description": "成功"}
    if spec.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(spec.response, "serialization")]}}
    responses: dict[str, Any] = {str(spec.status): ok}
    responses["400"] = {"description": "请求有误", **error}
    if not spec.public:
        responses["401"] = {"description": "未登录或登录凭证无效", **error}
        responses["403"] = {"description": "无权操作", **error}
    if spec.body is not None:
        responses["413"] = {"description": "请求内容过大", **error}
        responses["415"] = {"description": "请求内容格式不受支持", **error}
    responses["500"] = {"description": "系统错误", **error}
    return responses
