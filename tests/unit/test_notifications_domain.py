"""Pure notification rules: identity from the business key, webhook body, back-off.
The webhook signature (Standard Webhooks) is the sender's: tests/unit/test_webhook_signing.py."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.notifications import (
    MAX_BACKOFF_SECONDS,
    DeliveryAttempt,
    Notification,
    NotificationRequest,
    RecipientKind,
    check_request,
    is_last_attempt,
    new_notification,
    notification_id_for,
    retry_delay_seconds,
    webhook_body,
)

CHINA = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA)


def _request(**overrides) -> NotificationRequest:
    values = dict(
        business_key="ticket:T1:dispatched",
        recipient_kind=RecipientKind.DEPARTMENT,
        recipient_id="dept-scjgj",
        category="ticket.dispatched",
        title="新派单",
        body="请于1个工作日内联系反映人",
        data={"ticket_id": "T1"},
    )
    values.update(overrides)
    return NotificationRequest(**values)


def test_notification_id_is_derived_from_the_business_key_only():
    first = notification_id_for("clock:c1:warning")
    assert first == notification_id_for("clock:c1:warning")
    assert first == hashlib.sha256(b"clock:c1:warning").hexdigest()[:32]
    assert len(first) == 32 and all(c in "0123456789abcdef" for c in first)
    assert first != notification_id_for("clock:c1:overdue")


def test_back_off_doubles_from_the_base_per_receive():
    assert [retry_delay_seconds(5, n) for n in range(1, 7)] == [5, 10, 20, 40, 80, 160]


def test_back_off_is_capped_and_tolerates_odd_counts():
    assert retry_delay_seconds(5, 0) == 5
    assert retry_delay_seconds(5, 10_000) == MAX_BACKOFF_SECONDS
    assert retry_delay_seconds(5, 20, cap_seconds=60) == 60
    assert MAX_BACKOFF_SECONDS <= 43_200  # SQS's limit on a visibility timeout


@given(st.integers(min_value=0, max_value=600), st.integers(min_value=1, max_value=200))
def test_back_off_never_shrinks_and_never_passes_the_cap(base, receive_count):
    delay = retry_delay_seconds(base, receive_count)
    assert 0 <= delay <= MAX_BACKOFF_SECONDS
    assert retry_delay_seconds(base, receive_count + 1) >= delay


def test_last_attempt_is_the_queues_max_receive_count():
    assert not is_last_attempt(5, 6)
    assert is_last_attempt(6, 6)
    assert is_last_attempt(7, 6)


def test_new_notification_keeps_the_request_and_its_correlation_id():
    notification = new_notification(
        _request(correlation_id="corr-1"), now=NOW, correlation_id="ambient"
    )
    assert notification.notification_id == notification_id_for("ticket:T1:dispatched")
    assert notification.correlation_id == "corr-1"
    assert notification.created_at == NOW
    assert notification.status.value == "pending"
    assert new_notification(_request(), now=NOW, correlation_id="ambient").correlation_id == (
        "ambient"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"business_key": ""},
        {"business_key": "   "},
        {"business_key": "k" * 513},
        {"recipient_id": ""},
    ],
)
def test_requests_without_a_usable_key_or_recipient_are_refused(overrides):
    with pytest.raises(ValueError):
        check_request(_request(**overrides))


def test_webhook_body_is_stable_utf8_json_with_the_notification():
    notification = new_notification(_request(), now=NOW, correlation_id="corr-1")
    body = webhook_body(notification)
    assert body == webhook_body(notification)
    assert "新派单".encode() in body  # readable Chinese, not \\u escapes
    payload = json.loads(body)
    assert payload == {
        "notification_id": notification.notification_id,
        "department_id": "dept-scjgj",
        "category": "ticket.dispatched",
        "title": "新派单",
        "body": "请于1个工作日内联系反映人",
        "data": {"ticket_id": "T1"},
        "created_at": "2026-11-26T10:00:00+08:00",
        "correlation_id": "corr-1",
    }


def _notification(**overrides) -> Notification:
    base = new_notification(_request(), now=NOW, correlation_id="c")
    values = {**base.__dict__, **overrides}
    return Notification(**values)


def test_attempt_numbers_continue_after_the_last_stored_attempt():
    assert _notification().next_attempt_number == 1
    attempts = (
        DeliveryAttempt(number=7, at=NOW, delivered=False, error="timeout"),
        DeliveryAttempt(number=8, at=NOW, delivered=False, status_code=500),
    )
    assert _notification(attempts=attempts).next_attempt_number == 9


def test_only_a_user_notification_placed_in_the_inbox_has_an_inbox_owner():
    assert _notification(in_inbox=True).inbox_owner_id is None  # a department's
    user = _notification(recipient_kind=RecipientKind.USER, recipient_id="u-1")
    assert user.inbox_owner_id is None  # not delivered yet
    assert _notification(
        recipient_kind=RecipientKind.USER, recipient_id="u-1", in_inbox=True
    ).inbox_owner_id == ("u-1")


def test_data_that_cannot_travel_as_json_is_refused():
    with pytest.raises(ValueError):
        check_request(_request(data={"when": NOW}))
