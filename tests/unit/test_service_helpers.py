"""The shared service-layer helpers: retrying a conditional write on conflict, and asking for a
notification with the current correlation id."""

from __future__ import annotations

import contextvars
from typing import Any

import pytest

from chalicelib.domain.errors import Conflict
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.service_layer.conflicts import retry_on_conflict
from chalicelib.service_layer.notify import notify


def test_retry_on_conflict_reads_again_until_the_write_goes_through():
    calls = []

    def attempt() -> str:
        calls.append(len(calls))
        if len(calls) < 3:
            raise Conflict("已被修改", code="changed")
        return "saved"

    assert retry_on_conflict(attempt) == "saved"
    assert len(calls) == 3


def test_retry_on_conflict_gives_up_with_the_last_conflict():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise Conflict(f"第{len(calls)}次冲突", code="changed")

    with pytest.raises(Conflict, match="第2次冲突"):
        retry_on_conflict(attempt, attempts=2)
    assert len(calls) == 2


def test_retry_on_conflict_does_not_retry_other_errors():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise ValueError("boom")

    with pytest.raises(ValueError):
        retry_on_conflict(attempt)
    assert len(calls) == 1


class FakeNotifier:
    def __init__(self, created: bool) -> None:
        self.created = created
        self.requests: list[NotificationRequest] = []

    def notify(self, request: NotificationRequest) -> Any:
        self.requests.append(request)
        return ("n-1", self.created)


def test_notify_builds_the_request_with_the_current_correlation_id():
    from chalicelib.observability import set_correlation_id

    notifier = FakeNotifier(created=True)

    def in_a_request() -> bool:
        set_correlation_id("corr-test-1")
        return notify(
            notifier,
            "review:rv-1:opened:dept-a",
            RecipientKind.DEPARTMENT,
            "dept-a",
            "review.rectification_opened",
            "标题",
            "正文",
            {"review_id": "rv-1"},
        )

    created = contextvars.copy_context().run(in_a_request)  # the id stays in that context

    assert created is True
    (request,) = notifier.requests
    assert request.business_key == "review:rv-1:opened:dept-a"
    assert request.recipient_kind is RecipientKind.DEPARTMENT
    assert request.recipient_id == "dept-a"
    assert (request.category, request.title, request.body) == (
        "review.rectification_opened",
        "标题",
        "正文",
    )
    assert request.data == {"review_id": "rv-1"}
    assert request.correlation_id == "corr-test-1"


def test_notify_answers_whether_this_call_created_the_notification():
    notifier = FakeNotifier(created=False)
    assert notify(notifier, "k:u-1", RecipientKind.USER, "u-1", "c", "t", "b") is False
    assert notifier.requests[0].data == {}
