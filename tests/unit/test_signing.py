"""The one signing scheme: key id, kind, expiry and rotation of every token the platform signs."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.adapters.signing import Signer, SigningKeys, SigningKeysInvalid, TokenRefused

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
LATER = NOW + timedelta(hours=2)
OLD = b"key-2026a-that-is-long-enough-for-hmac-sha256"
NEW = b"key-2026b-that-is-long-enough-for-hmac-sha256"
PREFILL = {"u": "u-citizen-zhang", "l": {"legal_name": "上海绿境科技有限公司"}}


def signer(current: str = "k1", **keys: bytes) -> Signer:
    return Signer(SigningKeys(current, keys or {"k1": OLD}))


def refused(reason: str, call) -> None:
    with pytest.raises(TokenRefused) as info:
        call()
    assert info.value.reason == reason


def test_a_token_carries_its_key_id_and_round_trips():
    token = signer().sign("prefill", PREFILL, LATER)
    assert token.split(".")[0] == "k1"
    assert signer().verify("prefill", token, NOW) == PREFILL


def test_a_re_signed_prefill_token_with_changed_verified_fields_is_refused():
    token = signer().sign("prefill", PREFILL, LATER)
    kid, _, mac = token.split(".")
    changed = {"k": "prefill", "e": int(LATER.timestamp()), "d": {**PREFILL, "l": {}}}
    body = base64.urlsafe_b64encode(json.dumps(changed).encode()).decode().rstrip("=")
    # The old MAC on the new body, and a MAC made with a key the platform does not hold.
    refused("signature", lambda: signer().verify("prefill", f"{kid}.{body}.{mac}", NOW))
    forged = signer(k1=b"a-key-the-attacker-guessed-wrongly-000000").sign(
        "prefill", changed["d"], LATER
    )
    refused("signature", lambda: signer().verify("prefill", forged, NOW))


def test_an_expired_token_is_refused():
    token = signer().sign("prefill", PREFILL, LATER)
    assert signer().verify("prefill", token, LATER - timedelta(seconds=1)) == PREFILL
    refused("expired", lambda: signer().verify("prefill", token, LATER))


@pytest.mark.parametrize("kind", ["cursor", "booking-cancel", "check-in", "video-link"])
def test_a_token_of_another_kind_is_refused(kind):
    token = signer().sign("prefill", PREFILL, LATER)
    refused("signature", lambda: signer().verify(kind, token, NOW))
    detached = signer().sign_detached("booking-cancel", ["bk1", "0"], LATER)
    if kind != "booking-cancel":
        refused("signature", lambda: signer().verify_detached(kind, detached, ["bk1", "0"], NOW))


def test_during_a_rotation_the_current_key_signs_and_both_verify():
    before = signer("k1", k1=OLD).sign("cursor", {"pk": 1}, LATER)
    rotating = signer("k2", k2=NEW, k1=OLD)
    after = rotating.sign("cursor", {"pk": 1}, LATER)
    assert after.split(".")[0] == "k2"
    assert rotating.verify("cursor", before, NOW) == {"pk": 1}
    assert rotating.verify("cursor", after, NOW) == {"pk": 1}


def test_a_token_under_a_retired_key_is_refused():
    before = signer("k1", k1=OLD).sign("cursor", {"pk": 1}, LATER)
    retired = signer("k2", k2=NEW)
    refused("unknown_key", lambda: retired.verify("cursor", before, NOW))


def test_a_key_id_cannot_be_swapped_onto_another_keys_token():
    token = signer("k2", k2=NEW, k1=OLD).sign("cursor", {"pk": 1}, LATER)
    swapped = "k1." + token.split(".", 1)[1]
    refused("signature", lambda: signer("k2", k2=NEW, k1=OLD).verify("cursor", swapped, NOW))


def test_detached_tokens_bind_the_parts_and_expire():
    token = signer().sign_detached("check-in", ["c1", "2026-11-26"], LATER)
    assert len(token) <= 64  # fits the check-in code field and a QR poster
    signer().verify_detached("check-in", token, ["c1", "2026-11-26"], NOW)
    refused(
        "signature",
        lambda: signer().verify_detached("check-in", token, ["c1", "2026-11-27"], NOW),
    )
    # Part boundaries count: ("c1", "x") is not ("c1x",).
    refused("signature", lambda: signer().verify_detached("check-in", token, ["c1x"], NOW))
    refused(
        "expired", lambda: signer().verify_detached("check-in", token, ["c1", "2026-11-26"], LATER)
    )


def test_a_detached_expiry_cannot_be_extended():
    kid, expiry, mac = signer().sign_detached("booking-cancel", ["bk1", "0"], LATER).split(".")
    extended = f"{kid}.{int(expiry) + 86400}.{mac}"
    refused(
        "signature", lambda: signer().verify_detached("booking-cancel", extended, ["bk1", "0"], NOW)
    )


@pytest.mark.parametrize(
    "garbage", ["", "a", "a.b", "a.b.c.d", "k1..x", "k1.notb64!.x", "中.文.字"]
)
def test_garbage_is_refused(garbage):
    with pytest.raises(TokenRefused):
        signer().verify("cursor", garbage, NOW)
    with pytest.raises(TokenRefused):
        signer().verify_detached("check-in", garbage, ["c1"], NOW)


def test_signing_keys_from_the_secret_keep_only_current_and_previous():
    text = json.dumps({"current": "k3", "previous": "k2", "k3": "c", "k2": "b", "k1": "a"})
    keys = SigningKeys.from_json(text)
    assert keys.current_id == "k3" and set(keys.keys) == {"k3", "k2"}
    old = signer("k1", k1=b"a").sign("cursor", {"pk": 1}, LATER)
    refused("unknown_key", lambda: Signer(keys).verify("cursor", old, NOW))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"k1": "a"}),
        json.dumps({"current": "k1"}),
        json.dumps({"current": "k1", "k1": ""}),
        json.dumps({"current": "k 1", "k 1": "a"}),
        json.dumps({"current": "k1", "k1": "a", "previous": "k0"}),
    ],
)
def test_unusable_signing_keys_are_refused(text):
    with pytest.raises(SigningKeysInvalid):
        SigningKeys.from_json(text)


def test_naive_times_are_a_programming_error():
    with pytest.raises(ValueError):
        signer().sign("cursor", {}, datetime(2026, 11, 26, 12, 0))
