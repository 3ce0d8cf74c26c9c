"""OpenAPI 3.1, generated from the route declarations and their pydantic models."""

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

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


class _Schemas(GenerateJsonSchema):
    """A response carries every field of its model (defaults too: views dump whole models),
    so a generated client may rely on each; a request may leave out the defaulted ones."""

    def field_is_required(self, field: Any, total: bool) -> bool:
        if self.mode == "serialization" and field["type"] != "typed-dict-field":
            return True
        return super().field_is_required(field, total)


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
    bodies = {spec.body for spec in specs if spec.body is not None}
    answers = {spec.response for spec in specs if spec.response is not None}
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in sorted(bodies, key=lambda m: m.__name__)),
        *((m, "serialization") for m in sorted(answers, key=lambda m: m.__name__)),
    ]
    refs, defs = (
        models_json_schema(keyed, ref_template=_REF, schema_generator=_Schemas)
        if keyed
        else ({}, {})
    )
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {
            "operationId": _operation_id(spec),
            "summary": spec.summary,
            "tags": list(spec.tags),
            "parameters": _path_parameters(spec.path) + _query_parameters(spec.query),
            "responses": _responses(spec, refs, schemas),
        }
        if spec.description:
            operation["description"] = spec.description
        if spec.body is not None:
            schema = refs[(spec.body, "validation")]
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": schema,
                        **_example_of(schema, schemas, optional=False),
                    }
                },
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

    tags = sorted({tag for spec in specs for tag in spec.tags})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "青浦好办 API",
            "version": "0.1.0",
            "description": "青浦区“一网通办”政务服务平台后端接口",
            "license": {"name": "仅限青浦区政务服务使用", "identifier": "LicenseRef-Proprietary"},
        },
        "servers": [{"url": "/", "description": "与本文档同源"}],
        "tags": [{"name": tag, "description": _TAG_DESCRIPTIONS.get(tag, tag)} for tag in tags],
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
# One example body per status: a code each status is answered with.
_ERROR_EXAMPLES = {
    400: ("validation_failed", "请求内容有误，请检查标注的字段"),
    401: ("missing_token", "请先登录（缺少 Bearer 登录凭证）"),
    403: ("forbidden", "无权进行此操作"),
    404: ("not_found", "未找到相关记录"),
    409: ("conflict", "记录已被他人修改，请刷新后重试"),
    413: ("payload_too_large", "请求内容不能超过 64 KB"),
    415: ("unsupported_media_type", "请求内容格式不受支持，请使用 JSON"),
    422: ("rule_violation", "不符合办理规则"),
    500: ("internal_error", "系统繁忙，请稍后再试"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}
_TAG_DESCRIPTIONS = {
    "applications": "办事指南与办件（快申、预审、补正、办结）",
    "audit": "审计记录与校验",
    "bookings": "预约取号与现场叫号",
    "calendar": "工作日历与办理时限",
    "dev": "本地开发辅助（仅本地环境）",
    "identity": "登录身份",
    "knowledge": "知识库与问答",
    "notifications": "消息通知",
    "policies": "政策体检与免申即享",
    "reviews": "好差评与整改",
    "system": "系统",
    "tickets": "办不成事反映",
    "bundles": "一件事一次办：一表申请、多部门分头办理",
    "cross-region": "跨省通办：合作地区之间的签名转交与回调",
}
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def error_statuses(spec: RouteSpec) -> set[int]:
    """Every error status the route can answer: the refusals of the request pipeline
    (routing.py) that apply to this route, and those of the domain errors its view can raise,
    which the route declares (`api_route(errors=)`)."""
    from chalicelib.entrypoints.http.errors import STATUS_BY_ERROR, status_for

    statuses = {500}  # unhandled
    if not spec.public:
        statuses.add(401)  # no token, or one that does not verify
    if spec.body is not None or spec.query is not None or spec.idempotency:
        statuses.add(400)  # the body, the query or the Idempotency-Key is refused
    if spec.method in _WRITE_METHODS:
        statuses.add(413)  # the size limit applies to every body method
    if spec.body is not None:
        statuses.add(415)
    if spec.idempotency:
        statuses.add(409)  # the key reused for another request, or still in progress
    for error in spec.errors:
        statuses.add(STATUS_BY_ERROR.get(error) or status_for(error()))
    return statuses


def _responses(spec: RouteSpec, refs: dict[Any, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "成功"}
    if spec.response is not None:
        schema = refs[(spec.response, "serialization")]
        ok["content"] = {"application/json": {"schema": schema, **_example_of(schema, schemas)}}
    if _offers_csv(spec):
        ok.setdefault("content", {})["text/csv"] = {
            "schema": {"type": "string"},
            "example": "department_id,department_name\r\n",
        }
    responses: dict[str, Any] = {str(spec.status): ok}
    for status in spec.also_statuses:
        responses[str(status)] = {**ok, "description": _DESCRIPTIONS.get(status, "其他结果")}
    for status in sorted(error_statuses(spec) - set(spec.also_statuses)):
        code, message = _ERROR_EXAMPLES.get(status, ("error", "错误"))
        example: dict[str, Any] = {"code": code, "message": message, "request_id": _REQUEST_ID}
        if status == 400:
            example["fields"] = [{"field": "name", "message": "必填项", "type": "missing"}]
        responses[str(status)] = {
            "description": _DESCRIPTIONS.get(status, "错误"),
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model="Error")},
                    "example": example,
                }
            },
        }
    return responses


_REQUEST_ID = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"


# ---- examples ---------------------------------------------------------------------------

# Strings tried, in order, for a string field: the first that its pattern and length allow.
_SAMPLE_TEXTS = (
    "示例",
    "请在此填写具体情况",
    "dept-scjgj",
    "example_key_0001",
    "2026-12",
    "09:30",
    "share_used",
    "responsible",
    "91310118MA1JL00015",
    "021-59732000",
    "qp01",
    "13812345678",
)
_SAMPLE_FORMATS = {
    "date": "2026-12-04",
    "date-time": "2026-12-04T10:00:00+08:00",
    "time": "10:00:00",
}


def _example_of(
    schema: dict[str, Any], schemas: dict[str, Any], *, optional: bool = True
) -> dict[str, Any]:
    """{"example": value} for a schema, or nothing when no value could be made for it. A
    request's example has its required fields only: the least a client must send."""
    value = _sample(schema, schemas, 0 if optional else _OPTIONAL_DEPTH)
    return {} if value is _NONE else {"example": value}


_NONE: Any = object()
_MAX_DEPTH = 9
_OPTIONAL_DEPTH = 3  # optional properties are shown above this depth only


def _sample(schema: Any, schemas: dict[str, Any], depth: int) -> Any:
    """A value valid against `schema` (a deterministic, small one), or _NONE."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return _NONE
    if "$ref" in schema:
        return _sample(schemas.get(schema["$ref"].rsplit("/", 1)[-1]), schemas, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0] if schema["enum"] else _NONE
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            for branch in schema[key]:
                if branch.get("type") != "null":
                    value = _sample(branch, schemas, depth + 1)
                    if value is not _NONE:
                        return value
            return None if any(b.get("type") == "null" for b in schema[key]) else _NONE
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _sample(schema["allOf"][0], schemas, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return _sample_object(schema, schemas, depth)
    if kind == "array":
        item = _sample(schema.get("items", {}), schemas, depth + 1)
        if item is _NONE:
            return [] if not schema.get("minItems") else _NONE
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string":
        return _sample_text(schema)
    if kind in ("integer", "number"):
        return _sample_number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _NONE


def _sample_object(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    value: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name not in required and depth >= _OPTIONAL_DEPTH:
            continue
        sample = _sample(prop, schemas, depth + 1)
        if sample is _NONE:
            if name in required:
                return _NONE
            continue
        value[name] = sample
    extra = schema.get("additionalProperties")
    if not value and isinstance(extra, dict):
        sample = _sample(extra, schemas, depth + 1)
        names = schema.get("propertyNames", {})
        key = _sample_text(names) if names else "key"
        if sample is not _NONE and key is not _NONE:
            value[key] = sample
    return value


def _sample_text(schema: dict[str, Any]) -> Any:
    if schema.get("format") in _SAMPLE_FORMATS:
        return _SAMPLE_FORMATS[schema["format"]]
    low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", 10**6))
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    candidates = [*_SAMPLE_TEXTS, "示" * max(low, 1)]
    for text in candidates:
        if low <= len(text) <= high and (pattern is None or pattern.search(text)):
            return text
    return _NONE


def _sample_number(schema: dict[str, Any], kind: str) -> Any:
    value: float = 1
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + 1)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - 1)
    return int(value) if kind == "integer" else value


def _offers_csv(spec: RouteSpec) -> bool:
    """A `format` query parameter that allows "csv" (reports): the body is then CSV."""
    if spec.query is None:
        return False
    prop = spec.query.model_json_schema().get("properties", {}).get("format", {})
    return "csv" in prop.get("enum", []) or "csv" in str(prop)
