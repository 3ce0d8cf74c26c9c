"""Secrets read through Powertools Parameters from the embedded AWS: outside the local stage a
missing key set or a known default stops the function on first use, with a CRITICAL log line;
webhook secrets rotate with two signatures; the loopback receiver refuses stale timestamps."""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request

import boto3
import pytest

from chalicelib.adapters.secrets import SecretsMisconfigured
from chalicelib.adapters.webhook import sign_headers
from chalicelib.bootstrap import Container
from chalicelib.settings import Settings
from local.provision import LOCAL_SIGNING_KEYS, put_secret

PREFIX = "qphb-sectest"
GOOD_KEY = "k" * 48
GOOD_WEBHOOK = "whsec_" + base64.b64encode(b"a-department-secret-of-32-bytes!").decode()
NEW_WEBHOOK = "whsec_" + base64.b64encode(b"the-rotated-department-secret-32").decode()


def stage_container(stage: str = "prod") -> Container:
    return Container(Settings(stage=stage, resource_prefix=PREFIX))


def put(name: str, value: str) -> None:
    put_secret(boto3.client("secretsmanager", region_name="us-east-1"), f"{PREFIX}/{name}", value)


def stops(container: Container, caplog, fragment: str) -> None:
    with caplog.at_level(logging.CRITICAL), pytest.raises(SecretsMisconfigured):
        container.signer  # noqa: B018 (first use builds it)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert any(f"{PREFIX}/signing-keys" in line and fragment in line for line in lines), lines


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_a_missing_signing_key_set_stops_the_function_outside_local(aws, caplog, stage):
    stops(stage_container(stage), caplog, "缺失")


@pytest.mark.parametrize(
    "document",
    [
        LOCAL_SIGNING_KEYS,  # what the local stage provisions
        {"current": "k1", "k1": "local-only-cursor-secret"},  # the default that shipped before
        {"current": "k2", "previous": "k1", "k2": GOOD_KEY, "k1": "local-only-cursor-secret"},
    ],
)
def test_a_known_default_key_stops_the_function_outside_local(aws, caplog, document):
    put("signing-keys", json.dumps(document))
    stops(stage_container(), caplog, "默认值")


def test_a_short_key_stops_the_function_outside_local(aws, caplog):
    put("signing-keys", json.dumps({"current": "k1", "k1": "short"}))
    stops(stage_container(), caplog, "字节")


def test_audit_heads_outside_local_are_signed_by_kms_never_by_the_local_default(aws, caplog):
    with caplog.at_level(logging.CRITICAL), pytest.raises(SecretsMisconfigured):
        stage_container().audit_signer  # noqa: B018 (first use builds it)
    assert any("QPHB_AUDIT_KMS_KEY_ID" in r.getMessage() for r in caplog.records)
    key = boto3.client("kms", region_name="us-east-1").create_key(
        KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"
    )["KeyMetadata"]["Arn"]
    with_kms = Container(Settings(stage="prod", resource_prefix=PREFIX, audit_kms_key_id=key))
    assert type(with_kms.audit_signer).__name__ == "KmsHeadSigner"
    assert type(stage_container("local").audit_signer).__name__ == "HmacHeadSigner"


def test_a_real_key_set_signs_outside_local_and_the_local_defaults_serve_locally(aws):
    put("signing-keys", json.dumps({"current": "k1", "k1": GOOD_KEY}))
    assert stage_container().signer.current_key_id == "k1"
    put("signing-keys", json.dumps(LOCAL_SIGNING_KEYS))
    assert stage_container("local").signer.current_key_id == "local-1"


def test_a_default_webhook_secret_is_not_used_outside_local(aws):
    from local.seed import WEBHOOK_SECRETS

    put("webhooks/dept-scjgj", WEBHOOK_SECRETS["dept-scjgj"])
    put("webhooks/dept-rsj", GOOD_WEBHOOK)
    store = stage_container().secrets
    assert store.webhook_secrets("dept-scjgj") == []
    assert store.webhook_secrets("dept-rsj") == [GOOD_WEBHOOK]
    assert store.webhook_secrets("dept-none") == []
    assert stage_container("local").secrets.webhook_secrets("dept-scjgj") == [
        WEBHOOK_SECRETS["dept-scjgj"]
    ]


def test_the_runner_respects_a_stage_the_user_set(tmp_path):
    from local.runner import RunnerConfig, configure_environment

    config = RunnerConfig(data_dir=tmp_path)
    chosen = {"QPHB_STAGE": "staging"}
    configure_environment(config, chosen)
    assert chosen["QPHB_STAGE"] == "staging"
    defaulted: dict[str, str] = {}
    configure_environment(config, defaulted)
    assert defaulted["QPHB_STAGE"] == "local"
    assert not any("SECRET" in name and name.startswith("QPHB_") for name in defaulted)


# ---- Standard Webhooks: rotation and freshness ---------------------------------------------


def test_during_a_rotation_the_delivery_carries_a_signature_per_secret(container):
    """The container's sender (the one the delivery use case calls) reads both secrets."""
    from local.seed import WEBHOOK_SECRETS, seed
    from local.webhook_receiver import WebhookReceiver

    old = WEBHOOK_SECRETS["dept-scjgj"]
    client = container.aws.client("secretsmanager")
    name = f"{container.settings.resource_prefix}/webhooks/dept-scjgj"
    put_secret(client, name, f"{NEW_WEBHOOK} {old}")
    with (
        WebhookReceiver(secrets={"dept-scjgj": old}) as on_old,
        WebhookReceiver(secrets={"dept-scjgj": NEW_WEBHOOK}) as on_new,
    ):
        for receiver in (on_old, on_new):
            seed(container.directory, webhook_base_url=receiver.base_url)
            department = container.directory.get_department("dept-scjgj")
            notification_id = f"{'0' * 31}{len(receiver.received)}"
            result = container.webhook_sender.deliver(
                department.department_id, department.webhook_url, notification_id, b"{}", {}
            )
            assert result.delivered, result
            [call] = receiver.received
            assert call["signature_valid"]
            assert len(call["headers"]["webhook-signature"].split()) == 2


def _post(receiver, headers: dict[str, str], body: bytes) -> int:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        receiver.url_for("dept-scjgj"), data=body, headers=headers, method="POST"
    )
    try:
        with direct.open(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize(
    "offset,status,refused",
    [(0, 204, None), (-299, 204, None), (-301, 400, "too_old"), (301, 400, "in_future")],
)
def test_the_receiver_refuses_timestamps_beyond_five_minutes(offset, status, refused):
    from local.webhook_receiver import WebhookReceiver

    now = 1_796_000_000.0
    body = b'{"notification_id":"n1"}'
    with WebhookReceiver(secrets={"dept-scjgj": GOOD_WEBHOOK}, wall_time=lambda: now) as receiver:
        headers = sign_headers([GOOD_WEBHOOK], "n1", int(now) + offset, body)
        assert _post(receiver, headers, body) == status
        [call] = receiver.received
        assert (call["status"], call["refused"], call["signature_valid"]) == (
            status,
            refused,
            refused is None,
        )


def test_the_receiver_refuses_a_body_changed_after_signing():
    from local.webhook_receiver import WebhookReceiver

    with WebhookReceiver(secrets={"dept-scjgj": GOOD_WEBHOOK}) as receiver:
        headers = sign_headers([GOOD_WEBHOOK], "n1", int(time.time()), b'{"a":1}')
        assert _post(receiver, headers, b'{"a":2}') == 401
        assert receiver.received[0]["refused"] == "signature"
