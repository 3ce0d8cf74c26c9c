"""The one place that maps domain errors (and framework errors) to HTTP responses.

Every error a client sees has the shape {"code", "message", "request_id"} (plus "fields" for
validation errors); `code` is stable for machines, `message` is Chinese for people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalice import Response

from chalicelib.domain import errors as e

STATUS_BY_ERROR: dict[type[e.DomainError], int] = {
    e.InvalidInput: 400,
    e.Unauthenticated: 401,
    e.Forbidden: 403,
    e.NotFound: 404,
    e.Conflict: 409,
    e.PayloadTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.RuleViolation: 422,
    e.DependencyUnavailable: 503,
}

# Chalice answers some requests itself ({"Code": ..., "Message": ...}); we restate them.
_FRAMEWORK_ERRORS: dict[str, tuple[str, str]] = {
    "MethodNotAllowedError": ("method_not_allowed", "不支持该请求方法"),
    "UnsupportedMediaType": ("unsupported_media_type", "请求内容格式不受支持，请使用 JSON"),
    "BadRequestError": ("bad_request", "请求格式有误"),
    "BadRequest": ("bad_request", "请求格式有误"),
    "NotFoundError": ("not_found", "未找到相关记录"),
    "InternalServerError": ("internal_error", "系统繁忙，请稍后再试"),
}

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def status_for(error: e.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def json_response(
    body: Any, status: int, headers: Mapping[str, str | list[str]] | None = None
) -> Response:
    all_headers: dict[str, str | list[str]] = {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})}
    text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(body=text, status_code=status, headers=all_headers)


def error_body(code: str, message: str, request_id: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    body.update({k: v for k, v in extra.items() if v})
    return body


def error_response(error: e.DomainError, request_id: str) -> Response:
    extra: dict[str, Any] = {}
    if isinstance(error, e.InvalidInput) and error.fields:
        extra["fields"] = error.fields
    headers = {"X-Request-Id": request_id}
    if isinstance(error, e.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="qingpu-haoban"'
    return json_response(
        error_body(error.code, error.message, request_id, **extra), status_for(error), headers
    )


def internal_error_response(request_id: str) -> Response:
    code, message = _FRAMEWORK_ERRORS["InternalServerError"]
    return json_response(error_body(code, message, request_id), 500, {"X-Request-Id": request_id})


def normalise_framework_error(response: Response, request_id: str) -> Response:
    """Rewrite Chalice's own error bodies into our shape; leave everything else alone."""
    body = response.body
    if response.status_code < 400 or not isinstance(body, dict) or "Code" not in body:
        return response
    code, message = _FRAMEWORK_ERRORS.get(body["Code"], ("bad_request", "请求格式有误"))
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    headers["X-Request-Id"] = request_id
    return json_response(error_body(code, message, request_id), response.status_code, headers)
