"""Domain errors map to HTTP in one place, and Chalice's own error bodies take our shape."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import chalice.app
import pytest
from chalice import Response

import chalicelib.domain
import chalicelib.service_layer
from chalicelib.domain import errors as e
from chalicelib.entrypoints.http.errors import (
    STATUS_BY_ERROR,
    error_response,
    internal_error_response,
    normalise_framework_error,
    status_for,
)

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _import_all(package) -> None:
    """Capabilities may declare their own DomainError subclasses: load them all."""
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


_import_all(chalicelib.domain)
_import_all(chalicelib.service_layer)
DOMAIN_ERRORS = sorted(set(_subclasses(e.DomainError)), key=lambda c: c.__qualname__)


def _instance(cls: type[e.DomainError]) -> e.DomainError:
    try:
        return cls()
    except TypeError:  # a subclass with required arguments: the class alone decides the status
        error = cls.__new__(cls)
        error.message, error.details = cls.message, {}
        if isinstance(error, e.InvalidInput):
            error.fields = []
        return error


def _body(response: Response) -> dict:
    return json.loads(response.body)


def test_the_base_errors_are_all_discovered():
    assert set(STATUS_BY_ERROR) <= set(DOMAIN_ERRORS)


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_domain_error_maps_to_an_error_status(cls):
    error = _instance(cls)
    status = status_for(error)
    assert 400 <= status <= 599
    response = error_response(error, "req-1")
    assert response.status_code == status
    body = _body(response)
    assert body["code"] == error.code
    assert body["message"] == error.message
    assert body["request_id"] == "req-1"
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_domain_error_has_a_snake_case_code_and_a_chinese_message(cls):
    assert _SNAKE.match(cls.code), cls.code
    assert _CJK.search(cls.message), cls.message


@pytest.mark.parametrize(
    "error,status",
    [
        (e.InvalidInput(), 400),
        (e.Unauthenticated(), 401),
        (e.Forbidden(), 403),
        (e.NotFound(), 404),
        (e.Conflict(), 409),
        (e.PayloadTooLarge(), 413),
        (e.UnsupportedMediaType(), 415),
        (e.RuleViolation(), 422),
        (e.DependencyUnavailable(), 503),
        (e.DomainError(), 400),
    ],
)
def test_status_of_each_kind(error, status):
    assert status_for(error) == status


def test_a_subclass_inherits_its_parents_status():
    class SlotTaken(e.Conflict):
        code = "slot_taken"

    assert status_for(SlotTaken("该时段已约满")) == 409


def test_custom_code_and_message_are_kept():
    body = _body(error_response(e.NotFound("工单不存在", code="ticket_not_found"), "r"))
    assert body == {"code": "ticket_not_found", "message": "工单不存在", "request_id": "r"}


def test_validation_errors_list_their_fields():
    fields = [
        {"field": "mobile", "message": "手机号码应为11位中国大陆手机号", "type": "value_error"}
    ]
    body = _body(error_response(e.InvalidInput(code="validation_failed", fields=fields), "r"))
    assert body["fields"] == fields


def test_errors_without_fields_carry_no_fields_key():
    assert "fields" not in _body(error_response(e.InvalidInput(), "r"))


def test_unauthenticated_asks_for_a_bearer_token():
    response = error_response(e.Unauthenticated(), "r")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_internal_error_hides_details():
    response = internal_error_response("req-9")
    assert response.status_code == 500
    assert _body(response) == {
        "code": "internal_error",
        "message": "系统繁忙，请稍后再试",
        "request_id": "req-9",
    }


def test_messages_are_not_ascii_escaped():
    assert "请先登录" in error_response(e.Unauthenticated(), "r").body


# --- Chalice's own error bodies ----------------------------------------------------------

CHALICE_ERRORS = _subclasses(chalice.app.ChaliceViewError)


@pytest.mark.parametrize("cls", CHALICE_ERRORS, ids=lambda c: c.__name__)
def test_chalice_view_errors_take_our_shape_and_keep_their_status(cls):
    raw = Response(
        body={"Code": cls.__name__, "Message": "internal detail"},
        status_code=cls.STATUS_CODE,
        headers={"Content-Type": "application/json"},
    )
    response = normalise_framework_error(raw, "req-7")
    assert response.status_code == cls.STATUS_CODE
    body = _body(response)
    assert set(body) == {"code", "message", "request_id"}
    assert body["request_id"] == "req-7"
    assert _SNAKE.match(body["code"])
    assert _CJK.search(body["message"])
    assert "internal detail" not in response.body
    assert response.headers["X-Request-Id"] == "req-7"
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "chalice_code,status,code",
    [
        ("MethodNotAllowedError", 405, "method_not_allowed"),
        ("UnsupportedMediaType", 415, "unsupported_media_type"),
        ("BadRequestError", 400, "bad_request"),
        ("NotFoundError", 404, "not_found"),
        ("InternalServerError", 500, "internal_error"),
    ],
)
def test_errors_chalice_itself_answers_get_specific_codes(chalice_code, status, code):
    raw = Response(body={"Code": chalice_code, "Message": "x"}, status_code=status)
    assert _body(normalise_framework_error(raw, "r"))["code"] == code


def test_unknown_framework_code_still_takes_our_shape():
    raw = Response(body={"Code": "SomethingNew", "Message": "x"}, status_code=400)
    assert _body(normalise_framework_error(raw, "r"))["code"] == "bad_request"


@pytest.mark.parametrize(
    "raw",
    [
        Response(body={"ok": True}, status_code=200),
        Response(body={"Code": "NotFoundError"}, status_code=200),
        Response(body='{"code":"not_found"}', status_code=404),
        Response(body={"code": "x", "message": "y", "request_id": "z"}, status_code=404),
    ],
)
def test_successes_and_our_own_errors_are_left_alone(raw):
    assert normalise_framework_error(raw, "r") is raw
