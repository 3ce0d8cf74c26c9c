"""Pure notification rules: identity from the business key, webhook body, the retry schedule
with jitter and the per-department circuit. The webhook signature (Standard Webhooks) is the
sender's: tests/integration/test_secrets.py."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.notifications import (
    CIRCUIT_FAILURE_THRESHOLD,
    PROBE_BACKOFF_SECONDS,
    RETRY_SCHEDULE_SECONDS,
    ROUND_SPAN,
    CircuitDecision,
    DeliveryAttempt,
    DepartmentCircuit,
    Notification,
    NotificationRequest,
    RecipientKind,
    check_request,
    circuit_decision,
    deferred_until,
    new_notification,
    notification_id_for,
    opens_after,
    probe_delay,
    retry_delay,
    round_expired,
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


def test_the_schedule_follows_standard_webhooks_and_spans_more_than_a_day():
    middle = [retry_delay(n, 0.5) for n in range(1, 9)]
    assert middle == [5, 300, 1800, 7200, 18000, 36000, 36000, 36000]
    assert retry_delay(9, 0.5) is None  # nine attempts in all, then a dead letter
    assert retry_delay(0, 0.5) is None
    assert sum(RETRY_SCHEDULE_SECONDS) * 0.8 > 24 * 3600  # a day even with the least jitter
    assert max(RETRY_SCHEDULE_SECONDS) > 12 * 3600 / 2  # waits SQS visibility could not hold


def test_jitter_is_twenty_percent_either_way_from_the_draw():
    assert retry_delay(2, 0.0) == pytest.approx(240)
    assert retry_delay(2, 1.0) == pytest.approx(360)
    assert retry_delay(2, 0.25) == pytest.approx(270)


@given(st.integers(min_value=1, max_value=8), st.floats(min_value=0, max_value=1))
def test_every_wait_stays_within_the_jitter_band(n, draw):
    base = RETRY_SCHEDULE_SECONDS[n - 1]
    assert base * 0.8 - 1e-9 <= retry_delay(n, draw) <= base * 1.2 + 1e-9


def test_a_round_counts_only_attempts_since_the_last_redrive():
    attempts = tuple(
        DeliveryAttempt(number=n, at=NOW, delivered=False, error="timeout") for n in range(1, 10)
    )
    dead = _notification(attempts=attempts)
    assert dead.failed_in_round == 9
    assert retry_delay(dead.failed_in_round, 0.5) is None
    redriven = _notification(attempts=attempts, round_base=9, round_started_at=NOW)
    assert redriven.failed_in_round == 0
    assert redriven.round_start == NOW


def test_a_deferred_notification_expires_after_the_whole_schedule():
    notification = _notification()
    assert not round_expired(notification, NOW + ROUND_SPAN)
    assert round_expired(notification, NOW + ROUND_SPAN + timedelta(seconds=1))


def test_the_circuit_opens_at_the_threshold_and_probes_at_its_time():
    assert not opens_after(CIRCUIT_FAILURE_THRESHOLD - 1)
    assert opens_after(CIRCUIT_FAILURE_THRESHOLD)
    closed = DepartmentCircuit("dept-a", consecutive_failures=2)
    assert circuit_decision(closed, NOW) is CircuitDecision.SEND
    probe_at = NOW + timedelta(minutes=1)
    open_ = DepartmentCircuit("dept-a", 3, probe_at=probe_at, openings=1)
    assert circuit_decision(open_, NOW) is CircuitDecision.DEFER
    assert circuit_decision(open_, probe_at) is CircuitDecision.PROBE


def test_probes_back_off_to_a_cap_and_deferrals_follow_the_probe():
    delays = [probe_delay(n, 0.5) for n in range(1, 9)]
    assert delays[: len(PROBE_BACKOFF_SECONDS)] == list(PROBE_BACKOFF_SECONDS)
    assert set(delays[len(PROBE_BACKOFF_SECONDS) :]) == {PROBE_BACKOFF_SECONDS[-1]}
    assert deferred_until(NOW, 0.0) == NOW
    assert NOW < deferred_until(NOW, 0.9) <= NOW + timedelta(seconds=30)


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
