"""Stages: local-only routes exist only locally; every non-public route needs a token.

The prod app is built in a fresh interpreter, the way a Lambda builds it (app.py's module-level
`create_app(get_settings())` with QPHB_STAGE=prod). It cannot be built a second time in this
process: Chalice's blueprint registration consumes the `methods` of each deferred route, so a
blueprint registered into a second app re-registers every route as GET.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from chalice.test import Client
from moto import mock_aws

from app import app as local_app
from chalicelib.entrypoints.http.openapi import build_openapi, registered_specs
from chalicelib.entrypoints.http.routing import ROUTES, RouteSpec

ROOT = Path(__file__).resolve().parents[2]
DEV_ROUTES = [("/dev/users", "GET"), ("/dev/tokens", "POST")]
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

_PROD_PROBE = """
import json
import sys

from chalice.test import Client

from app import app
from chalicelib.entrypoints.http.openapi import build_openapi
from chalicelib.settings import get_settings

paths = json.loads(sys.argv[1])
with Client(app) as client:
    answers = {
        f"{method} {path}": client.http.request(
            method, path, body=b"{}", headers={"Content-Type": "application/json"}
        ).status_code
        for path, method in paths
    }
print(json.dumps({
    "stage": get_settings().stage,
    "routes": {path: sorted(methods) for path, methods in app.routes.items()},
    "openapi": {path: sorted(ops) for path, ops in build_openapi(app)["paths"].items()},
    "answers": answers,
}))
"""


def _local_only() -> list[tuple[str, str]]:
    return sorted({(spec.path, spec.method) for spec in ROUTES if spec.local_only})


@pytest.fixture(scope="module")
def prod_app() -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("QPHB_") or key in {"QPHB_AWS_REGION"}
    }
    env.update(
        {
            "QPHB_STAGE": "prod",
            "QPHB_RESOURCE_PREFIX": "qphb-prod",
        }
    )
    probed = sorted(set(DEV_ROUTES) | set(_local_only()))
    result = subprocess.run(
        [sys.executable, "-c", _PROD_PROBE, json.dumps(probed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_probe_built_the_prod_stage(prod_app):
    assert prod_app["stage"] == "prod"
    assert "/me" in prod_app["routes"]


@pytest.mark.parametrize("path,method", DEV_ROUTES)
def test_dev_routes_are_absent_from_prod(prod_app, path, method):
    assert method not in prod_app["routes"].get(path, [])
    assert method.lower() not in prod_app["openapi"].get(path, [])
    assert prod_app["answers"][f"{method} {path}"] in (403, 404)


def test_every_local_only_route_is_absent_from_prod(prod_app):
    for path, method in _local_only():
        assert method not in prod_app["routes"].get(path, []), f"{method} {path}"
        assert prod_app["answers"][f"{method} {path}"] in (403, 404), f"{method} {path}"


@pytest.fixture(scope="module")
def local_openapi() -> dict:
    return build_openapi(local_app)


@pytest.mark.parametrize("path,method", DEV_ROUTES)
def test_dev_routes_are_present_locally(local_openapi, path, method):
    assert method in local_app.routes.get(path, {})
    assert method.lower() in local_openapi["paths"].get(path, {})


def test_prod_serves_every_route_of_local_except_the_local_only_ones(prod_app):
    local = {(p, m) for p, methods in local_app.routes.items() for m in methods}
    prod = {(p, m) for p, methods in prod_app["routes"].items() for m in methods}
    assert prod == local - set(_local_only())


# --- Every non-public route answers 401 without a token ----------------------------------


def _spec_for(path: str, method: str) -> RouteSpec | None:
    return next(
        (s for s in registered_specs(local_app) if (s.path, s.method) == (path, method)), None
    )


def _protected_routes() -> list[tuple[str, str]]:
    """Every route the local app serves, except those declared public. A route registered
    without api_route has no declaration and counts as protected."""
    cases = []
    for path, methods in sorted(local_app.routes.items()):
        for method in sorted(methods):
            spec = _spec_for(path, method)
            if spec is None or not spec.public:
                cases.append((path, method))
    return cases


def _fill(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: f"dummy-{m.group(1)}", path)


@pytest.fixture(scope="module")
def anonymous():
    # No tables: a request without a token must be refused before anything is read. Under
    # mock_aws so that a route that does reach for AWS fails here, not on the network.
    with mock_aws(), Client(local_app) as client:
        yield client


def test_there_are_protected_routes():
    assert ("/me", "GET") in _protected_routes()


@pytest.mark.parametrize("path,method", _protected_routes(), ids=lambda v: str(v))
def test_protected_route_without_a_token_is_401(anonymous, path, method):
    body = b"{}" if method in _BODY_METHODS else None
    response = anonymous.http.request(
        method, _fill(path), body=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401, (response.status_code, response.body[:300])
    error = json.loads(response.body)
    assert error["code"] == "missing_token"
    assert _SNAKE.match(error["code"])
    assert "登录" in error["message"]
    assert error["request_id"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path,method", _protected_routes(), ids=lambda v: str(v))
def test_protected_route_is_documented_as_needing_a_token(local_openapi, path, method):
    operation = local_openapi["paths"][path][method.lower()]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "401" in operation["responses"]
