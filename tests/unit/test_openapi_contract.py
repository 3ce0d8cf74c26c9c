"""The OpenAPI document is precise enough to generate clients from: each route lists the
statuses it can answer (no more, no fewer than its view can raise, read from the source), and
every operation has a unique operationId, a Chinese summary and valid examples."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app import app
from chalicelib.entrypoints.http.errors import STATUS_BY_ERROR
from chalicelib.entrypoints.http.openapi import build_openapi, error_statuses, registered_specs
from tests.unit.error_paths import errors_raised

SPECS = registered_specs(app)
DOCUMENT = build_openapi(app)
STATUS_BY_NAME = {cls.__name__: status for cls, status in STATUS_BY_ERROR.items()}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _label(spec: Any) -> str:
    return f"{spec.method} {spec.path}"


@pytest.mark.parametrize("spec", SPECS, ids=_label)
def test_each_route_declares_exactly_the_errors_its_view_can_raise(spec):
    module, function = spec.view.split(":")
    inferred = {STATUS_BY_NAME[name] for name in errors_raised(module, function)}
    declared = {STATUS_BY_ERROR[error] for error in spec.errors}
    assert inferred <= declared, f"{_label(spec)} can also answer {sorted(inferred - declared)}"
    assert declared <= inferred, f"{_label(spec)} never answers {sorted(declared - inferred)}"
    assert inferred <= error_statuses(spec)


def test_a_read_without_input_lists_no_validation_or_conflict_status():
    spec = next(s for s in SPECS if (s.method, s.path) == ("GET", "/tickets/{ticket_id}"))
    assert error_statuses(spec) == {401, 403, 404, 500} | (
        {400} if any(STATUS_BY_ERROR[e] == 400 for e in spec.errors) else set()
    )
    assert 409 not in error_statuses(spec) and 413 not in error_statuses(spec)


def test_every_operation_has_a_unique_id_a_chinese_summary_and_its_error_schema():
    seen: set[str] = set()
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation["operationId"] not in seen, where
            seen.add(operation["operationId"])
            assert CJK.search(operation["summary"]), where
            for status, response in operation["responses"].items():
                if int(status) >= 400 and status != "503":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (where, status)


def _media(operation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    if "requestBody" in operation:
        found.append(("request", operation["requestBody"]["content"]["application/json"]))
    for status, response in operation["responses"].items():
        if "application/json" in response.get("content", {}):
            found.append((status, response["content"]["application/json"]))
    return found


def test_every_request_and_response_body_has_an_example_that_its_schema_accepts():
    registry = Registry().with_resource(
        "urn:openapi",
        Resource.from_contents(
            {"components": DOCUMENT["components"]}, default_specification=DRAFT202012
        ),
    )
    checked = 0
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for where, media in _media(operation):
                label = f"{method.upper()} {path} {where}"
                assert "example" in media, label
                schema = media["schema"]
                if "$ref" in schema:
                    schema = {"$ref": "urn:openapi" + schema["$ref"]}
                validator = jsonschema.Draft202012Validator(schema, registry=registry)
                errors = [e.message for e in validator.iter_errors(media["example"])]
                assert not errors, (label, errors[:3])
                checked += 1
    assert checked > 300
