"""Repair of side effects: for each capability that stores a change before applying its effects,
a crash between the two (the effect fails once) is finished by one run of the repair schedule,
exactly once; a second run finds nothing to do. The schedule reads only the sparse effects
indexes, and only changes pending for longer than the grace period."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from chalicelib.domain.notifications import notification_id_for
from chalicelib.service_layer.repair import GRACE

EVENTS = Path(__file__).resolve().parents[2] / "events"
REPAIR_EVENT = json.loads((EVENTS / "schedule" / "effects_repair.json").read_text())
ENTERPRISE = "u-enterprise-lvjing"
SUPERVISOR = "u-supervisor-zhao"
CLERK = "u-window-wang"


def _repair(api) -> dict:
    result = api.client.lambda_.invoke("repair_effects", REPAIR_EVENT).payload
    assert isinstance(result, dict) and "errorMessage" not in result, result
    return result


def _fail_once(monkeypatch, owner, name: str) -> list[int]:
    """Make `owner.name` raise on its first call only; the list counts the calls."""
    real = getattr(owner, name)
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the process died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return calls


def _messages(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    found = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in {f["MessageId"] for f in found}]
        if not new:
            return found
        found += new


def _drain(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    taken = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for m in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        taken += batch
    return taken


# ---- applications ---------------------------------------------------------------------------


@pytest.fixture
def applications(api, container):
    from local.seed_applications import seed_applications

    seed_applications(container)
    return container


def _submit(api, code: str, fields: dict) -> str:
    pre = api.get(f"/items/{code}/prefill", user=ENTERPRISE).json
    values = {f["name"]: f["value"] for f in pre["fields"]} | fields
    body = {"item_code": code, "prefill_token": pre["prefill_token"], "fields": values}
    answer = api.post("/applications", body, user=ENTERPRISE)
    assert answer.status == 202, answer
    return answer.json["application_id"]


def _prereview(api, queue_url: str) -> None:
    messages = _drain(queue_url)
    assert messages, "no pre-review message"
    records = [
        {"messageId": m["MessageId"], "receiptHandle": "r", "body": m["Body"], "attributes": {}}
        for m in messages
    ]
    for record in records:
        record.update(eventSource="aws:sqs", eventSourceARN="arn:aws:sqs:us-east-1:0:q")
    payload = api.client.lambda_.invoke("prereview_applications", {"Records": records}).payload
    assert payload == {"batchItemFailures": []}, payload


def test_a_lost_prereview_hand_over_is_sent_once_by_the_repair(
    api, applications, provisioned, clock, monkeypatch
):
    from chalicelib.service_layer.applications.common import ApplicationDeps

    queue_url = provisioned.queue_urls["application-prereview"]
    # The enqueue closure is built per request from the container: fail the client's send.
    sqs = applications.aws.client("sqs")
    calls = _fail_once(monkeypatch, type(sqs), "send_message")
    application_id = _submit(api, "QP-SC-103", {"sale_type": "预包装食品"})
    assert calls and not _messages(queue_url)
    store = ApplicationDeps.from_container(applications).store
    assert store.effects_pending(clock.now() + GRACE, 10) == [application_id]

    assert _repair(api)["applications"] == []  # still within the grace period
    clock.advance(GRACE + timedelta(seconds=1))
    assert _repair(api)["applications"] == [application_id]
    (message,) = _messages(queue_url)
    assert json.loads(message["Body"])["application_id"] == application_id
    assert _repair(api)["applications"] == []
    assert len(_messages(queue_url)) == 1

    _prereview(api, queue_url)
    assert api.get(f"/applications/{application_id}", user=ENTERPRISE).json["state"] == "approved"
    assert store.effects_pending(clock.now() + GRACE * 10, 10) == []


def test_a_failed_review_invitation_after_a_decision_is_made_once_by_the_repair(
    api, applications, provisioned, clock, monkeypatch
):
    from chalicelib.service_layer import reviews

    queue_url = provisioned.queue_urls["application-prereview"]
    calls = _fail_once(monkeypatch, reviews, "invite_person")
    application_id = _submit(api, "QP-SC-103", {"sale_type": "预包装食品"})
    _prereview(api, queue_url)
    app = api.get(f"/applications/{application_id}", user=ENTERPRISE).json
    assert app["state"] == "approved" and len(calls) == 1
    key = f"review-invite:application#{application_id}:{ENTERPRISE}"
    assert applications.notifier.get(notification_id_for(key)) is None

    clock.advance(GRACE + timedelta(seconds=1))
    assert _repair(api)["applications"] == [application_id]
    assert len(calls) == 2
    assert applications.notifier.get(notification_id_for(key)) is not None
    assert _repair(api)["applications"] == []
    assert len(calls) == 2
    again = api.get(f"/applications/{application_id}", user=ENTERPRISE).json
    licences = applications.application_store.licences("91310118MA1JL0000N")
    issued = [x.number for x in licences if x.issued_for == application_id]
    assert issued == [again["issued_licence"]]  # issued by the repair, once


# ---- policies -------------------------------------------------------------------------------


def test_lost_match_messages_of_a_publication_are_sent_once_by_the_repair(
    api, container, provisioned, clock, monkeypatch
):
    from chalicelib.service_layer import policies
    from local.seed_applications import seed_applications
    from local.seed_policies import JOBS_POLICY, seed_policies

    seed_applications(container)
    seed_policies(container)
    queue_url = provisioned.queue_urls["policy-match"]
    _drain(queue_url)
    calls = _fail_once(monkeypatch, policies, "_enqueue_segment")
    published = api.post(f"/policies/{JOBS_POLICY}/versions/1/publish", None, user=SUPERVISOR)
    assert published.status == 200, published
    assert len(calls) == 1 and not _messages(queue_url)

    clock.advance(GRACE + timedelta(seconds=1))
    assert _repair(api)["policies"] == [f"{JOBS_POLICY}#v1"]
    shards = sorted(json.loads(m["Body"])["shard"] for m in _messages(queue_url))
    assert shards == list(range(policies.match_shards()))
    assert _repair(api)["policies"] == []
    assert len(_messages(queue_url)) == policies.match_shards()


# ---- bookings -------------------------------------------------------------------------------


def test_a_failed_review_invitation_after_serving_is_made_once_by_the_repair(
    api, container, clock, monkeypatch
):
    from chalicelib.service_layer import reviews
    from local.seed_bookings import seed_bookings
    from tests.integration.helpers import t

    seed_bookings(container)
    booked = api.post(
        "/bookings",
        {
            "center_id": "qp-district",
            "item_id": "item-id-card",
            "channel": "counter",
            "date": "2026-11-27",
            "start": "09:00",
        },
        user="u-citizen-li",
    )
    assert booked.status == 201, booked
    booking_id = booked.json["booking_id"]
    clock.set(t(2026, 11, 27, 8, 50))
    assert api.post(f"/bookings/{booking_id}/check-in", {}, user=CLERK).status == 200
    assert api.post(f"/bookings/{booking_id}/call", {}, user=CLERK).status == 200
    calls = _fail_once(monkeypatch, reviews, "invite_person")
    assert api.post(f"/bookings/{booking_id}/serve", {}, user=CLERK).status == 200
    key = f"review-invite:booking#{booking_id}:u-citizen-li"
    assert len(calls) == 1 and container.notifier.get(notification_id_for(key)) is None

    assert _repair(api)["bookings"] == []  # within the grace period
    clock.advance(GRACE + timedelta(seconds=1))
    assert _repair(api)["bookings"] == [booking_id]
    assert container.notifier.get(notification_id_for(key)) is not None
    assert _repair(api)["bookings"] == []
    assert len(calls) == 2
