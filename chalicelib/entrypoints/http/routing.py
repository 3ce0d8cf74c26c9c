"""How every HTTP route is declared: `api_route` parses, authenticates, validates and maps errors.

A route declares its request body, query and response models; the same declaration feeds the
OpenAPI document (`ROUTES`). Views receive a `Call` and return a pydantic model, a dict, a list,
None (204) or a Chalice Response. Views never see malformed input: a bad body, query or token is
answered here with the shared error shape, before the view runs and before anything is written.
"""

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from chalicelib.domain import errors as e
from chalicelib.domain.identity import Principal
from chalicelib.entrypoints.http.errors import (
    error_response,
    internal_error_response,
    json_response,
)
from chalicelib.observability import logger, set_correlation_id
from chalicelib.settings import get_settings


@dataclass(frozen=True)
class RouteSpec:
    path: str
    method: str
    summary: str
    tags: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    public: bool
    local_only: bool
    description: str = ""
    # None, or "optional" / "required": an Idempotency-Key makes repeats answer the first response.
    idempotency: str | None = None
    # The domain errors the view can raise (OpenAPI lists their statuses, and only those,
    # besides the refusals of this module that apply to the route).
    errors: tuple[type[e.DomainError], ...] = ()
    view: str = ""  # "<module>:<function>", for the checks of the declarations
    # Other statuses answered with the response model (not an error body), e.g. 503 degraded.
    also_statuses: tuple[int, ...] = ()


ROUTES: list[RouteSpec] = []


@dataclass
class Call:
    """Everything a view may use about the request, already checked."""

    request_id: str
    correlation_id: str
    principal: Principal | None
    body: Any = None
    query: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> Principal:
        if self.principal is None:
            raise e.Unauthenticated()
        return self.principal

    @property
    def idempotency_key(self) -> str | None:
        key = self.headers.get("idempotency-key")
        if key is None:
            return None
        if not _IDEMPOTENCY_KEY.match(key):
            raise e.InvalidInput(
                "Idempotency-Key 应为8到128位字母、数字、下划线或连字符",
                code="invalid_idempotency_key",
            )
        return key


_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_\-]{8,128}$")
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,128}$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def api_route(
    bp: Blueprint,
    path: str,
    *,
    method: str = "GET",
    summary: str,
    tags: tuple[str, ...] = (),
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    public: bool = False,
    local_only: bool = False,
    description: str = "",
    idempotency: str | None = None,
    errors: tuple[type[e.DomainError], ...] = (),
    also_statuses: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if idempotency is None and method in _BODY_METHODS:
        # One retry behaviour for every create and state change: a repeat carrying the same
        # Idempotency-Key answers the first response (docs/glossary.md, "Retries").
        idempotency = "optional"
    spec = RouteSpec(
        path,
        method,
        summary,
        tags,
        body,
        query,
        response,
        status,
        public,
        local_only,
        description,
        idempotency,
    )
    if errors or also_statuses:
        spec = replace(spec, errors=tuple(errors), also_statuses=tuple(also_statuses))

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES.append(replace(spec, view=f"{view.__module__}:{view.__name__}"))

        @functools.wraps(view)
        def handler(**path_params: str) -> Response:
            return handle_request(spec, view, bp.current_request, path_params)

        bp.route(path, methods=[method], content_types=["application/json"])(handler)
        return view

    return decorator


def handle_request(
    spec: RouteSpec, view: Callable[..., Any], request: Any, path_params: dict[str, str]
) -> Response:
    request_id = _request_id(request)
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    supplied = headers.get("x-correlation-id", "")
    correlation_id = set_correlation_id(supplied if _CORRELATION_ID.match(supplied) else request_id)
    response_headers = {"X-Request-Id": request_id, "X-Correlation-Id": correlation_id}
    try:
        call = Call(request_id, correlation_id, None, headers=headers)
        call.principal = None if spec.public else authenticate(headers)
        call.body = _parse_body(spec, request)
        call.query = _parse_query(spec, request)
        if spec.idempotency:
            return _run_idempotently(spec, view, call, path_params, response_headers)
        result = view(call, **path_params)
    except e.DomainError as error:
        logger.info("request refused", extra={"code": error.code, "route": spec.path})
        response = error_response(error, request_id)
        response.headers["X-Correlation-Id"] = correlation_id
        return response
    except Exception:
        logger.exception("unhandled error", extra={"route": spec.path, "method": spec.method})
        return internal_error_response(request_id)
    return _to_response(result, spec.status, response_headers)


def _run_idempotently(
    spec: RouteSpec,
    view: Callable[..., Any],
    call: Call,
    path_params: dict[str, str],
    response_headers: dict[str, str],
) -> Response:
    """With an Idempotency-Key, the view runs once per caller and key; a repeat of the same
    request answers the stored status, body and headers, marked `Idempotent-Replayed: true`."""
    key = call.idempotency_key
    if key is None:
        if spec.idempotency == "required":
            raise e.InvalidInput(
                "此操作须带 Idempotency-Key 请求头", code="idempotency_key_required"
            )
        return _to_response(view(call, **path_params), spec.status, response_headers)

    from chalicelib.bootstrap import container
    from chalicelib.domain.idempotency import StoredResponse, fingerprint
    from chalicelib.service_layer.idempotency import run_once

    body = call.body.model_dump(mode="json") if isinstance(call.body, BaseModel) else None

    def execute() -> StoredResponse:
        response = _to_response(view(call, **path_params), spec.status, {})
        text = response.body
        if not isinstance(text, str):
            text = "" if text is None else json.dumps(text, ensure_ascii=False)
        headers = {
            k: v if isinstance(v, str) else ", ".join(v)
            for k, v in (response.headers or {}).items()
        }
        return StoredResponse(response.status_code, text, headers)

    owner = call.principal.user_id if call.principal else "-"
    stored, replayed = run_once(
        container().idempotency_store,
        container().clock,
        f"{owner}#{key}",
        fingerprint(spec.method, spec.path, path_params, body),
        execute,
    )
    headers: dict[str, str | list[str]] = {**stored.headers, **response_headers}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body=stored.body, status_code=stored.status, headers=headers)


def authenticate(headers: dict[str, str]) -> Principal:
    from chalicelib.bootstrap import container

    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise e.Unauthenticated("请先登录（缺少 Bearer 登录凭证）", code="missing_token")
    return container().token_verifier.verify(token.strip())


def _request_id(request: Any) -> str:
    context = getattr(request, "context", None) or {}
    if context.get("requestId"):
        return str(context["requestId"])
    import uuid  # API Gateway always sends one; only local callers need a fresh id

    return str(uuid.uuid4())


def _parse_body(spec: RouteSpec, request: Any) -> BaseModel | None:
    if spec.method not in _BODY_METHODS:
        return None
    raw = request.raw_body or b""
    if len(raw) > get_settings().max_body_bytes:
        raise e.PayloadTooLarge(f"请求内容不能超过 {get_settings().max_body_bytes // 1024} KB")
    if spec.body is None:
        return None
    content_type = (request.headers or {}).get("content-type", "application/json")
    if not content_type.lower().startswith("application/json"):
        raise e.UnsupportedMediaType()
    _check_charset(content_type)
    if not raw.strip():
        raise e.InvalidInput("请求内容不能为空", code="empty_body")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise e.InvalidInput("请求内容不是有效的 UTF-8 编码", code="invalid_encoding") from exc
    try:
        data = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite
        )
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, _DuplicateKey):
            raise e.InvalidInput(
                f"请求内容中字段“{exc.key[:64]}”重复出现", code="duplicate_json_key"
            ) from None
        raise e.InvalidInput("请求内容不是有效的 JSON", code="invalid_json") from exc
    _refuse_control_characters(data)
    return _validate(spec.body, data)


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Last-wins would let a second "user_id" override the one a proxy or log looked at.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python extensions, not JSON


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")  # 1e400 would reach storage as infinity
    return value


def _check_charset(content_type: str) -> None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise e.InvalidInput(
                "请求内容只支持 UTF-8 编码（charset=utf-8）", code="unsupported_charset"
            )


def _refuse_control_characters(data: Any) -> None:
    """No control character (or lone surrogate) anywhere in a body, keys included, whatever the
    model declares: free-form fields (rule conditions, form values) are stored too."""
    from chalicelib.entrypoints.http.types import CONTROL_CHARACTERS

    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if CONTROL_CHARACTERS.search(item):
                raise e.InvalidInput("请求内容含有不允许的控制字符", code="control_characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _parse_query(spec: RouteSpec, request: Any) -> BaseModel | None:
    if spec.query is None:
        return None
    params = request.query_params or {}
    data = {name: params.get(name) for name in params}
    _refuse_control_characters(data)
    return _validate(spec.query, data)


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise e.InvalidInput(
            "请求内容有误，请检查标注的字段", code="validation_failed", fields=field_errors(exc)
        ) from exc


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    fields = []
    for item in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in item["loc"]) or "body"
        fields.append({"field": location, "message": _chinese_reason(item), "type": item["type"]})
    return fields


_REASONS = {
    "missing": "必填项",
    "extra_forbidden": "不允许的字段",
    "string_too_long": "内容过长",
    "string_too_short": "内容过短",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "string_type": "应为文本",
    "bool_parsing": "应为是或否",
    "date_from_datetime_parsing": "日期格式应为 YYYY-MM-DD",
    "date_parsing": "日期格式应为 YYYY-MM-DD",
    "datetime_parsing": "时间格式应为 ISO 8601",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "model_type": "应为对象",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "finite_number": "应为有限数值",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "too_long": "项目过多",
    "too_short": "项目过少",
}


def _chinese_reason(item: ErrorDetails) -> str:
    if item["type"] == "value_error":
        # Our own validators raise Chinese messages: "Value error, <message>".
        return str(item["msg"]).removeprefix("Value error, ")
    return _REASONS.get(item["type"], "格式不正确")


def _to_response(result: Any, status: int, headers: Mapping[str, str | list[str]]) -> Response:
    if isinstance(result, Response):
        result.headers.update(headers)
        return result
    if result is None:
        return Response(body="", status_code=204, headers=dict(headers))
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return json_response(result, status, headers)
