"""Signed, opaque cursors and the page-size cap."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.adapters.clock import CHINA_TZ, ManualClock
from chalicelib.adapters.signing import Signer, SigningKeys
from chalicelib.bootstrap import Container, set_container
from chalicelib.domain.errors import InvalidInput
from chalicelib.entrypoints.http.pagination import (
    PAGE_SIZE_CAP,
    PageQuery,
    decode_cursor,
    encode_cursor,
)
from chalicelib.settings import Settings

KEYS = SigningKeys("k1", {"k1": b"unit-test-signing-key-of-32-bytes-or-more"})
START = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)


@pytest.fixture(autouse=True)
def signer():
    """The container's signer (read from Secrets Manager in a running system) with a known key."""
    container = Container(Settings(), clock=ManualClock(START))
    container.signer = Signer(KEYS)
    set_container(container)
    yield container
    set_container(None)


LAST_KEY = {
    "pk": {"S": "USER#u-citizen-zhang"},
    "sk": {"S": "NOTIFICATION#2026-11-26T10:00:00+08:00#通知"},
    "n": {"N": "42"},
}


def _invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_cursor(cursor)
    assert info.value.code == "invalid_cursor"
    assert "游标" in info.value.message


def test_round_trip_returns_the_same_key():
    cursor = encode_cursor(LAST_KEY)
    assert isinstance(cursor, str)
    assert decode_cursor(cursor) == LAST_KEY


def test_cursor_is_url_safe_and_unpadded():
    cursor = encode_cursor(LAST_KEY)
    assert "=" not in cursor
    assert not set(cursor) & set("+/ ")


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
def test_round_trip_of_any_json_key(key):
    assert decode_cursor(encode_cursor(key)) == key


def test_no_key_means_no_cursor_and_no_cursor_means_first_page():
    assert encode_cursor(None) is None
    assert encode_cursor({}) is None
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


def test_tampered_cursor_is_invalid_cursor():
    kid, payload, mac = encode_cursor(LAST_KEY).split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-3] ^= 0x01  # change the payload, keep the signature
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    _invalid_cursor(f"{kid}.{tampered}.{mac}")


def test_forged_payload_without_signature_is_invalid_cursor():
    forged = base64.urlsafe_b64encode(b'{"pk":{"S":"USER#u-admin"}}').decode()
    _invalid_cursor(forged)
    _invalid_cursor(f"k1.{forged}.")


@pytest.mark.parametrize("garbage", ["not-a-cursor", "!!!!", "a", "\u4e2d\u6587"])
def test_garbage_is_invalid_cursor(garbage):
    _invalid_cursor(garbage)


def test_signed_value_that_is_not_an_object_is_invalid_cursor():
    _invalid_cursor(encode_cursor(["pk", "sk"]))  # type: ignore[arg-type]


def test_cursor_signed_with_another_key_is_invalid_cursor(signer):
    cursor = encode_cursor(LAST_KEY)
    signer.signer = Signer(SigningKeys("k1", {"k1": b"another-key-under-the-same-key-id-00000"}))
    _invalid_cursor(cursor)


def test_cursor_expires_after_a_day_on_the_injected_clock(signer):
    cursor = encode_cursor(LAST_KEY)
    signer.clock.advance(timedelta(hours=23))
    assert decode_cursor(cursor) == LAST_KEY
    signer.clock.advance(timedelta(hours=1))
    _invalid_cursor(cursor)


def test_another_kind_of_token_is_not_a_cursor(signer):
    token = signer.signer.sign("prefill", LAST_KEY, START + timedelta(hours=1))
    _invalid_cursor(token)


# --- Page size ---------------------------------------------------------------------------


def test_page_query_defaults():
    query = PageQuery()
    assert query.limit == 20
    assert query.cursor is None


def test_page_size_cap_is_100():
    assert PAGE_SIZE_CAP == 100
    assert PageQuery(limit=100).limit == 100


@pytest.mark.parametrize("limit,error_type", [(101, "less_than_equal"), (0, "greater_than_equal")])
def test_page_size_outside_1_to_100_is_refused(limit, error_type):
    with pytest.raises(ValidationError) as info:
        PageQuery(limit=limit)
    assert [e["type"] for e in info.value.errors()] == [error_type]


def test_query_string_values_are_coerced():
    # Query parameters arrive as strings.
    assert PageQuery.model_validate({"limit": "50", "cursor": "abc"}).limit == 50


def test_overlong_cursor_is_refused_before_decoding():
    with pytest.raises(ValidationError):
        PageQuery(cursor="a" * 2049)


def test_page_size_errors_read_in_chinese_through_the_api_mapping():
    from chalicelib.entrypoints.http.routing import field_errors

    with pytest.raises(ValidationError) as info:
        PageQuery.model_validate({"limit": "1000"})
    assert field_errors(info.value) == [
        {"field": "limit", "message": "数值过大", "type": "less_than_equal"}
    ]
