"""The HTTP conventions every route shares: health, errors, auth, body limits, OpenAPI."""

from __future__ import annotations

import pytest


def test_health_is_ok_when_tables_and_queues_answer(api):
    result = api.get("/health")
    assert result.status == 200, result
    assert result.json["status"] == "ok"
    assert all(check["ok"] for check in result.json["checks"])


def test_health_is_503_when_a_table_is_missing(api, container):
    container.aws.client("dynamodb").delete_table(TableName="qphb-test-audit")
    result = api.get("/health")
    assert result.status == 503
    assert result.json["status"] == "degraded"


def test_me_requires_a_token(api):
    result = api.get("/me")
    assert result.status == 401
    assert result.json["code"] == "missing_token"
    assert result.json["request_id"]
    assert "登录" in result.json["message"]


def test_me_returns_own_profile_unmasked(api):
    result = api.get("/me", user="u-citizen-zhang")
    assert result.status == 200, result
    assert result.json["role"] == "citizen"
    assert result.json["profile"]["subject_id"] == "310118198503121233"


@pytest.mark.parametrize(
    "token,code",
    [
        ("not-a-jwt", "invalid_token"),
        ("a.b.c", "invalid_token"),
    ],
)
def test_garbage_tokens_are_401(api, token, code):
    result = api.get("/me", token=token)
    assert result.status == 401
    assert result.json["code"] == code


def test_expired_token_is_401_token_expired(api, container):
    from datetime import timedelta

    user = container.directory.get_user("u-citizen-zhang")
    old = container.dev_token_issuer.issue(
        user.principal(), container.clock.now() - timedelta(days=2), ttl_seconds=60
    )
    result = api.get("/me", token=old)
    assert result.status == 401
    assert result.json["code"] == "token_expired"


def test_token_with_wrong_secret_is_rejected(api, container):
    import jwt

    now = int(container.clock.now().timestamp())
    forged = jwt.encode(
        {
            "iss": container.settings.jwt_issuer,
            "aud": container.settings.jwt_audience,
            "sub": "u-admin",
            "role": "admin",
            "iat": now,
            "exp": now + 600,
        },
        "some-other-secret-that-is-long-enough",
        algorithm="HS256",
    )
    assert api.get("/me", token=forged).status == 401


def test_alg_none_token_is_rejected(api, container):
    import jwt

    now = int(container.clock.now().timestamp())
    unsigned = jwt.encode(
        {
            "iss": container.settings.jwt_issuer,
            "aud": container.settings.jwt_audience,
            "sub": "u-admin",
            "role": "admin",
            "iat": now,
            "exp": now + 600,
        },
        None,
        algorithm="none",
    )
    result = api.get("/me", token=unsigned)
    assert result.status == 401
    assert result.json["code"] == "invalid_token"


def test_dev_token_then_me(api):
    issued = api.post("/dev/tokens", {"user_id": "u-dept-scjgj"})
    assert issued.status == 201, issued
    me = api.get("/me", token=issued.json["token"])
    assert me.status == 200
    assert me.json["department_id"] == "dept-scjgj"


def test_dev_token_for_unknown_user_is_404(api):
    result = api.post("/dev/tokens", {"user_id": "nobody"})
    assert result.status == 404
    assert result.json["code"] == "user_not_found"


def test_malformed_json_is_400_invalid_json(api):
    result = api.post("/dev/tokens", raw=b"{not json")
    assert result.status == 400
    assert result.json["code"] == "invalid_json"


def test_wrong_types_list_the_fields(api):
    result = api.post("/dev/tokens", {"user_id": 42, "extra": 1})
    assert result.status == 400
    assert result.json["code"] == "validation_failed"
    fields = {f["field"] for f in result.json["fields"]}
    assert fields == {"user_id", "extra"}


def test_oversized_body_is_413(api, container):
    big = '{"user_id": "' + "x" * (container.settings.max_body_bytes + 1) + '"}'
    result = api.post("/dev/tokens", raw=big)
    assert result.status == 413
    assert result.json["code"] == "payload_too_large"


def test_wrong_method_uses_the_error_shape(api):
    result = api.request("DELETE", "/me", user="u-citizen-zhang")
    assert result.status == 405
    assert result.json["code"] == "method_not_allowed"
    assert result.json["request_id"]


def test_correlation_id_is_echoed(api):
    result = api.get("/health", headers={"X-Correlation-Id": "corr-123"})
    assert result.headers["X-Correlation-Id"] == "corr-123"


def test_every_route_is_in_the_openapi_document(api):
    from app import app

    document = api.get("/openapi.json").json
    assert document["openapi"].startswith("3.1")
    for path, methods in app.routes.items():
        for method in methods:
            assert method.lower() in document["paths"].get(path, {}), f"{method} {path} missing"
