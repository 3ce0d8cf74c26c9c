"""Bad input at the edge: never a 500, always the error shape, and nothing written.

Cases are derived at run time from the route table: every route the local app serves with a
body model gets malformed JSON, non-object JSON, wrong types for each declared field, an
oversized body and a few generated JSON values, sent with a valid admin token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from app import app as local_app
from chalicelib.entrypoints.http.openapi import registered_specs
from chalicelib.entrypoints.http.routing import RouteSpec
from tests.integration.embedded_aws import changes, observed_calls
from tests.integration.helpers import app_on_fresh_aws

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _body_routes() -> list[RouteSpec]:
    return [spec for spec in registered_specs(local_app) if spec.body is not None]


def _route_id(spec: RouteSpec) -> str:
    return f"{spec.method} {spec.path}"


def _fill(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: f"dummy-{m.group(1)}", path)


# --- A module-wide embedded AWS: every case must leave it exactly as it was ----------------


class Edge:
    def __init__(self, client, container, token: str):
        self.client = client
        self.container = container
        self.token = token

    def send(self, spec: RouteSpec, raw: bytes, content_type: str = "application/json"):
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}"}
        return self.client.http.request(spec.method, _fill(spec.path), body=raw, headers=headers)

    def counts(self) -> dict[str, int]:
        """Items per table and messages per queue (a Scan here is the test's, not the app's)."""
        aws = self.container.aws
        dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
        found = {}
        for name in dynamodb.list_tables()["TableNames"]:
            found[name] = sum(
                page["Count"]
                for page in dynamodb.get_paginator("scan").paginate(TableName=name, Select="COUNT")
            )
        for url in sqs.list_queues().get("QueueUrls", []):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            found[url] = sum(int(v) for v in attributes.values())
        return found


@pytest.fixture(scope="module")
def edge() -> Iterator[Edge]:
    """After every case of the module, each table and queue holds what it held before."""
    with app_on_fresh_aws() as (client, container, token):
        running = Edge(client, container, token)
        before = running.counts()
        yield running
        assert running.counts() == before


@contextmanager
def no_changes() -> Iterator[None]:
    """Whatever the block sends, the app calls no AWS operation that could change anything:
    stricter than comparing counts, which an update in place would pass."""
    with observed_calls() as calls:
        yield
    assert changes(calls) == [], f"the app called {changes(calls)}"


# --- Fixed cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    statuses: frozenset[int] = frozenset({400})
    codes: frozenset[str] | None = None
    content_type: str = "application/json"


_PARSE_CODES = frozenset({"invalid_json", "empty_body", "validation_failed", "invalid_encoding"})

MALFORMED = [
    Case("unterminated object", b"{not json", codes=_PARSE_CODES),
    Case("trailing comma", b'{"a": 1,}', codes=_PARSE_CODES),
    Case("single quotes", b"{'single': 'quotes'}", codes=_PARSE_CODES),
    Case("invalid utf-8", b'{"a": "\xff\xfe"}', codes=_PARSE_CODES),
    Case("control bytes", b"\x00\x01\x02", codes=_PARSE_CODES),
    Case("blank", b"   ", codes=_PARSE_CODES),
    Case("empty", b"", codes=_PARSE_CODES),
    Case("NaN unterminated", b'{"a": NaN', codes=_PARSE_CODES),
    Case("invalid utf-8 alone", b'{"a": "\xc3\x28"}', codes=frozenset({"invalid_encoding"})),
    Case("duplicate key", b'{"a": 1, "a": 2}', codes=frozenset({"duplicate_json_key"})),
    Case(
        "nested duplicate key",
        b'{"a": {"b": 1, "b": 1}}',
        codes=frozenset({"duplicate_json_key"}),
    ),
    Case("NaN", b'{"a": NaN}', codes=frozenset({"invalid_json"})),
    Case("Infinity", b'{"a": -Infinity}', codes=frozenset({"invalid_json"})),
    # Valid JSON grammar, but beyond a double: it would be stored as infinity.
    Case("1e999", b"1e999", codes=frozenset({"invalid_json"})),
    Case("1e400 in an object", b'{"a": 1e400}', codes=frozenset({"invalid_json"})),
    Case("NUL in a string", b'{"a": "x\\u0000y"}', codes=frozenset({"control_characters"})),
    Case("NUL in a key", b'{"a\\u0000": 1}', codes=frozenset({"control_characters"})),
    Case("lone surrogate", b'{"a": "\\ud800"}', codes=frozenset({"control_characters"})),
    Case(
        "latin-1 charset",
        b'{"a": 1}',
        codes=frozenset({"unsupported_charset"}),
        content_type="application/json; charset=iso-8859-1",
    ),
    Case(
        "utf-16 body",
        '{"a": 1}'.encode("utf-16"),
        codes=frozenset({"invalid_encoding"}),
    ),
]
# Deeper than the JSON decoder's recursion limit: a parse failure like any other.
DEEP = [
    Case("unterminated deep array", b"[" * 5000, codes=_PARSE_CODES),
    Case("deeply nested objects", b'{"a": ' * 3000 + b"1" + b"}" * 3000, codes=_PARSE_CODES),
    Case("deeply nested arrays", b"[" * 3000 + b"]" * 3000, codes=_PARSE_CODES),
]
NOT_OBJECTS = [b"[]", b"[{}]", b'[1, "a"]', b"null", b"42", b'"text"', b"true"]


def _wrong_value(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "string":
        return 12345
    if kind in ("integer", "number"):
        return "not-a-number"
    if kind == "boolean":
        return "maybe"
    return [[{"unexpected": True}]]  # objects, arrays, unions, nested models


def _refused_by(model: type[BaseModel], data: Any) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return True
    return False


def _cases_for(spec: RouteSpec, max_body_bytes: int) -> list[Case]:
    """Every case is bad input for this route: data cases are kept only if the route's own
    model refuses them."""
    validation = frozenset({"validation_failed"})
    cases = list(MALFORMED)
    cases += [Case(f"JSON {raw.decode()}", raw, codes=validation) for raw in NOT_OBJECTS]
    properties = spec.body.model_json_schema().get("properties", {})
    data_cases = {
        "wrong type for every field": {n: _wrong_value(p) for n, p in properties.items()},
        "empty object": {},
        "unknown field only": {"__unexpected__": {"nested": [1, 2, 3]}},
    }
    cases += [
        Case(name, json.dumps(data).encode(), codes=validation)
        for name, data in data_cases.items()
        if data is not None and _refused_by(spec.body, data)
    ]
    oversized = b'{"padding": "' + b"x" * (max_body_bytes + 1) + b'"}'
    cases.append(Case("oversized", oversized, frozenset({413}), frozenset({"payload_too_large"})))
    cases.append(Case("form body", b"user_id=1", frozenset({415}), None, "text/plain"))
    return cases


def _problem(case: Case, response) -> str | None:
    """None if the answer is a refusal in the error shape as the case expects."""
    text = response.body.decode("utf-8", errors="replace")[:200]
    summary = f"{case.name}: {response.status_code} {text}"
    if response.status_code not in case.statuses:
        return summary
    try:
        error = json.loads(response.body)
    except ValueError:
        return summary
    if not (isinstance(error, dict) and {"code", "message", "request_id"} <= set(error)):
        return summary
    if not (_SNAKE.match(error["code"]) and _CJK.search(error["message"])):
        return summary
    if case.codes is not None and error["code"] not in case.codes:
        return summary
    if error["code"] == "validation_failed":
        fields = error.get("fields") or []
        if not fields or not all(f.get("field") and _CJK.search(f["message"]) for f in fields):
            return summary
    return None


@pytest.mark.parametrize("spec", _body_routes(), ids=_route_id)
def test_bad_bodies_are_refused_in_the_error_shape_without_writes(edge, spec):
    cases = _cases_for(spec, edge.container.settings.max_body_bytes)
    with no_changes():
        problems = [
            problem
            for case in cases
            if (problem := _problem(case, edge.send(spec, case.raw, case.content_type)))
        ]
    assert not problems, f"{_route_id(spec)} answered badly to {len(problems)} case(s): {problems}"


@pytest.mark.parametrize("spec", _body_routes(), ids=_route_id)
def test_deeply_nested_json_is_refused_not_a_500(edge, spec):
    with no_changes():
        problems = [
            problem for case in DEEP if (problem := _problem(case, edge.send(spec, case.raw)))
        ]
    assert not problems, f"{_route_id(spec)} answered badly to {len(problems)} case(s): {problems}"


def test_every_route_gets_the_wrong_types_case():
    for spec in _body_routes():
        names = {case.name for case in _cases_for(spec, 1024)}
        if spec.body.model_json_schema().get("properties"):
            assert "wrong type for every field" in names, _route_id(spec)


# --- Generated cases ---------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _generated_case_for(spec: RouteSpec):
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(data=_JSON)
    def check(edge: Edge, data: Any) -> None:
        try:
            spec.body.model_validate(data)
        except ValidationError:
            pass
        else:
            return  # valid input: not this test's business
        # Control characters anywhere in a body are refused before the model sees it.
        codes = frozenset({"validation_failed", "control_characters"})
        case = Case("generated", json.dumps(data).encode(), codes=codes)
        problem = _problem(case, edge.send(spec, case.raw))
        assert problem is None, problem

    return check


@pytest.mark.parametrize("spec", _body_routes(), ids=_route_id)
def test_generated_invalid_json_is_refused_without_writes(edge, spec):
    with no_changes():
        _generated_case_for(spec)(edge)


def test_there_are_routes_with_a_body():
    assert ("/dev/tokens", "POST") in {(s.path, s.method) for s in _body_routes()}


def test_a_duplicate_user_id_gets_no_token(edge):
    """Last-wins parsing once turned {"user_id": citizen, "user_id": admin} into an admin token."""
    spec = next(s for s in _body_routes() if (s.path, s.method) == ("/dev/tokens", "POST"))
    raw = b'{"user_id": "u-citizen-li", "user_id": "u-admin"}'
    response = edge.send(spec, raw)
    assert response.status_code == 400
    assert json.loads(response.body)["code"] == "duplicate_json_key"
    assert "token" not in json.loads(response.body)


def test_utf8_charset_spelled_any_way_is_accepted(edge):
    spec = next(s for s in _body_routes() if (s.path, s.method) == ("/dev/tokens", "POST"))
    for content_type in ("application/json; charset=UTF-8", 'application/json;charset="utf-8"'):
        response = edge.send(spec, b'{"user_id": "u-citizen-li"}', content_type)
        assert response.status_code == 201, (content_type, response.body[:80])
