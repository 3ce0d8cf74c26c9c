"""Every signed token through the API, with keys read from the embedded AWS's Secrets Manager:
a re-signed pre-fill token, an expired one, a token of another kind and a token under a retired
key are refused; a rotation keeps the previous key valid."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from chalicelib.adapters.signing import Signer, SigningKeys
from local.provision import LOCAL_SIGNING_KEYS, put_secret

ENTERPRISE = "u-enterprise-lvjing"
ITEM = "QP-RS-201"


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications

    seed_applications(container)
    return container


def prefill(api) -> dict:
    result = api.get(f"/items/{ITEM}/prefill", user=ENTERPRISE)
    assert result.status == 200, result
    return result.json


def submit(api, pre: dict, token: str | None = None):
    body = {
        "item_code": ITEM,
        "prefill_token": token or pre["prefill_token"],
        "fields": {f["name"]: f["value"] for f in pre["fields"]},
    }
    return api.post("/applications", body, user=ENTERPRISE)


def refused_prefill(result) -> None:
    assert result.status == 400 and result.json["code"] == "invalid_prefill_token", result


def rotate(container, document: dict) -> None:
    """What an operator does: put a new key set; a fresh container (a new Lambda environment,
    or a warm one after the cache's max age) reads it."""
    from chalicelib.bootstrap import Container, set_container

    client = boto3.client("secretsmanager", region_name=container.settings.aws_region)
    put_secret(client, f"{container.settings.resource_prefix}/signing-keys", json.dumps(document))
    fresh = Container(container.settings, clock=container.clock)
    fresh.directory = container.directory
    set_container(fresh)
    return fresh


def test_a_valid_prefill_token_is_accepted(api, seeded):
    assert submit(api, prefill(api)).status == 202


def test_a_prefill_token_re_signed_with_changed_verified_fields_is_refused(api, seeded):
    pre = prefill(api)
    data = Signer(SigningKeys.from_json(json.dumps(LOCAL_SIGNING_KEYS))).verify(
        "prefill", pre["prefill_token"], seeded.clock.now()
    )
    assert data["l"], "the item has verified (locked) fields"
    changed = {**data, "l": {name: "篡改的值" for name in data["l"]}}
    expires = seeded.clock.now() + timedelta(hours=1)
    # Signed under the current key id with the default that shipped before, and another guess.
    for guess in (b"local-only-cursor-secret", b"a-guessed-key-of-the-right-length-0000"):
        forged = Signer(SigningKeys("local-1", {"local-1": guess})).sign(
            "prefill", changed, expires
        )
        refused_prefill(submit(api, pre, forged))


def test_an_expired_prefill_token_is_refused(api, seeded):
    pre = prefill(api)
    seeded.clock.advance(timedelta(hours=2, seconds=1))
    result = submit(api, pre)
    refused_prefill(result)
    assert "过期" in result.json["message"]


def test_a_token_of_another_kind_is_refused(api, seeded):
    pre = prefill(api)
    cursor = seeded.signer.sign("cursor", {"pk": {"S": "x"}}, seeded.clock.now() + timedelta(1))
    refused_prefill(submit(api, pre, cursor))
    listed = api.get(f"/me/applications?cursor={pre['prefill_token']}", user=ENTERPRISE)
    assert listed.status == 400 and listed.json["code"] == "invalid_cursor", listed


def test_a_rotation_keeps_the_previous_key_until_it_is_retired(api, seeded):
    pre = prefill(api)
    new_key = "a-new-signing-key-of-the-local-stage-000000"
    fresh = rotate(
        seeded,
        {**LOCAL_SIGNING_KEYS, "current": "local-2", "previous": "local-1", "local-2": new_key},
    )
    assert submit(api, pre).status == 202  # signed with local-1, now the previous key
    assert prefill(api)["prefill_token"].startswith("local-2.")

    rotate(fresh, {"current": "local-2", "local-2": new_key})  # local-1 retired
    pre_again = prefill(api)
    assert submit(api, pre_again).status == 202
    refused_prefill(submit(api, pre))
