"""Property-based API test: schemathesis over `/openapi.json`, against the app in-process.

Every declared operation gets a few generated requests (valid and invalid by the schema) with an
admin token, through a WSGI adapter of the Chalice app on an in-process embedded AWS. Asserted:
no 5xx, every status is one the document lists, every body matches its declared schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app import app as local_app
from tests.integration.helpers import app_on_fresh_aws

MAX_EXAMPLES = 3  # per operation: about 100 operations, the whole run well under a minute
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class ChaliceWSGI:
    """The Chalice app as a WSGI application, through Chalice's own local gateway."""

    def __init__(self, client: Any):
        self.client = client

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        path = environ.get("PATH_INFO") or "/"
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        response = self.client.http.request(
            environ["REQUEST_METHOD"], path, headers=headers, body=body
        )
        start_response(f"{response.status_code} -", list(response.headers.items()))
        return [response.body or b""]


def _schema() -> Any:
    from chalicelib.entrypoints.http.openapi import build_openapi

    return schemathesis.openapi.from_dict(build_openapi(local_app))


SCHEMA = _schema()
# Moving the shared clock would expire the token and turn every later case into a 401.
OPERATIONS = [
    op
    for op in (result.ok() for result in SCHEMA.get_all_operations())
    if op.label != "POST /dev/clock"
]


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """An embedded AWS for the module, the app served to the schema; yields an admin token."""
    with app_on_fresh_aws() as (client, _container, token):
        SCHEMA.app = ChaliceWSGI(client)
        try:
            yield token
        finally:
            SCHEMA.app = None


def test_the_document_is_the_one_the_app_serves(served):
    served_document = SCHEMA.app.client.http.get("/openapi.json")
    assert served_document.status_code == 200
    assert len(OPERATIONS) >= 100


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_no_server_error_and_every_response_matches_the_document(served, operation):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {served}"}, checks=CHECKS, app=SCHEMA.app
        )

    check()
