"""Domain errors. Each carries a stable machine-readable `code` and a Chinese message for people.

The HTTP status of each kind is decided in one place: `entrypoints/http/errors.py`.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "domain_error"
    message: str = "请求无法处理"

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any):
        self.message = message or type(self).message
        if code:
            self.code = code
        self.details = details
        super().__init__(self.message)


class InvalidInput(DomainError):
    code = "invalid_input"
    message = "请求内容不符合要求"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        fields: list[dict[str, str]] | None = None,
    ):
        super().__init__(message, code=code)
        self.fields = fields or []


class Unauthenticated(DomainError):
    code = "unauthenticated"
    message = "请先登录"


class Forbidden(DomainError):
    code = "forbidden"
    message = "您无权进行此操作"


class NotFound(DomainError):
    code = "not_found"
    message = "未找到相关记录"


class Conflict(DomainError):
    code = "conflict"
    message = "记录已被修改，请刷新后重试"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    message = "请求内容过大"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    message = "请求内容格式不受支持，请使用 JSON"


class RuleViolation(DomainError):
    """A business rule refuses the request (e.g. a deadline passed, a state forbids it)."""

    code = "rule_violation"
    message = "该操作不符合办理规则"


class DependencyUnavailable(DomainError):
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后再试"


class TokenRefused(ValueError):
    """Why a signed token was not accepted: malformed, unknown_key, signature, kind, expired.
    Raised by the signer and mapped by the use case that asked for the token to a DomainError."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
