"""The one outbound mechanism, end to end on moto and a real HTTP receiver on loopback:
outbox write -> stream record -> enqueue handler -> SQS -> delivery handler -> webhook / inbox.

The event source mappings are driven by hand: stream records are read with the DynamoDB
Streams API and wrapped as Lambda events; SQS messages are received, handed to the handler and
deleted unless reported as failures, as Lambda's SQS poller does. Nothing waits: the retry
schedule and the department circuits read the ManualClock, which tests move; a delayed message
the handler sends is recorded and made visible at once (it does nothing before its time); the
due sweep is invoked by hand. The jitter's random source is fixed at the middle (no jitter).
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib.domain.notifications import (
    NotificationRequest,
    NotificationStatus,
    RecipientKind,
    notification_id_for,
)
from local.seed import WEBHOOK_SECRETS
from local.webhook_receiver import WebhookReceiver

EVENTS = Path(__file__).resolve().parents[2] / "events"
QUEUE = "notification-delivery"


class FakeAuditLog:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    def append(self, entry: Any, fact_id: str | None = None) -> Any:
        self.entries.append(entry)
        return entry

    def actions(self, subject_id: str | None = None) -> list[str]:
        return [e.action for e in self.entries if subject_id in (None, e.subject_id)]


@pytest.fixture(autouse=True)
def no_jitter(container) -> None:
    container.random = lambda: 0.5


@pytest.fixture(autouse=True)
def audit(container) -> FakeAuditLog:
    log = FakeAuditLog()
    container.audit_log = log
    return log


@pytest.fixture
def receiver(container):
    from local.seed import WEBHOOK_SECRETS, seed

    with WebhookReceiver(secrets=WEBHOOK_SECRETS) as running:
        seed(container.directory, webhook_base_url=running.base_url)
        yield running


@pytest.fixture
def pipeline(api, provisioned, container):
    return Pipeline(api.client, provisioned, container)


class Pipeline:
    """Plays Lambda's event source mappings for the notifications stream and queue."""

    def __init__(self, client, provisioned, container):
        self.client = client
        self.container = container
        self.clock = container.clock
        self.queue_url = provisioned.queue_urls[QUEUE]
        self.dlq_url = provisioned.dlq_urls[QUEUE]
        self.stream_arn = provisioned.stream_arns["notifications"]
        # The test's own clients: the handlers' client is spied on, these calls are not.
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        # boto3 sends stream calls to an account-specific endpoint moto does not serve.
        self.streams = boto3.client(
            "dynamodbstreams",
            region_name="us-east-1",
            config=Config(account_id_endpoint_mode="disabled"),
        )
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.client_dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        self._iterators: dict[str, str] = {}
        self.failed_receipts: list[str] = []
        self.visibility_changes: list[int] = []
        self.delays: list[int] = []
        events = container.aws.client("sqs").meta.events
        events.register("provide-client-params.sqs.ChangeMessageVisibility", self._spy_visibility)
        events.register("provide-client-params.sqs.SendMessage", self._spy_delay)

    def _spy_visibility(self, params, **_):
        self.visibility_changes.append(int(params["VisibilityTimeout"]))

    def _spy_delay(self, params, **_):
        """Record the delay the handler asked for and drop it: the clock is the test's."""
        delay = int(params.pop("DelaySeconds", 0) or 0)
        if delay:
            self.delays.append(delay)

    def sweep(self) -> dict:
        return self.invoke("sweep_notifications", load_event("schedule/notification_sweep.json"))

    def drain(self) -> int:
        """Poll until the queue is empty; the number of messages handled."""
        handled = 0
        while True:
            messages, _ = self.deliver()
            if not messages:
                return handled
            handled += len(messages)

    def invoke(self, name: str, event: dict) -> dict:
        return self.client.lambda_.invoke(name, event).payload

    # -- the stream -------------------------------------------------------------------------

    def stream_event(self) -> dict:
        """The records written since the last call, as Lambda hands them to the handler."""
        description = self.streams.describe_stream(StreamArn=self.stream_arn)
        records = []
        for shard in description["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            iterator = (
                self._iterators.get(shard_id)
                or self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            page = self.streams.get_records(ShardIterator=iterator)
            self._iterators[shard_id] = page["NextShardIterator"]
            records.extend(self._lambda_stream_record(r) for r in page["Records"])
        return {"Records": records}

    def _lambda_stream_record(self, record: dict) -> dict:
        dynamodb = dict(record["dynamodb"])
        dynamodb["ApproximateCreationDateTime"] = int(
            dynamodb["ApproximateCreationDateTime"].timestamp()
        )
        return {**record, "dynamodb": dynamodb, "eventSourceARN": self.stream_arn}

    def enqueue(self) -> dict:
        return self.invoke("enqueue_notifications", self.stream_event())

    # -- the queue --------------------------------------------------------------------------

    def receive(self, queue_url: str | None = None) -> list[dict]:
        return self.sqs.receive_message(
            QueueUrl=queue_url or self.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])

    def sqs_event(self, messages: list[dict]) -> dict:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def deliver(self) -> tuple[list[dict], dict]:
        """One poll: receive, invoke, delete what the handler did not report as failed."""
        messages = self.receive()
        if not messages:
            return [], {"batchItemFailures": []}
        response = self.invoke("deliver_notifications", self.sqs_event(messages))
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:
                self.failed_receipts.append(message["ReceiptHandle"])
            else:
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return messages, response

    def skip_back_off(self) -> None:
        """Make the failed messages visible now instead of waiting for their back-off."""
        for receipt in self.failed_receipts:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
        self.failed_receipts.clear()

    def next_due_after(self, now: datetime) -> datetime | None:
        """The earliest moment after `now` at which a notification or a circuit has work (a
        test-side read of the small test table)."""
        table = self.container.settings.resource_name("notifications")
        moments = [
            datetime.fromisoformat(item[attribute]["S"])
            for page in self.client_dynamodb.get_paginator("scan").paginate(TableName=table)
            for item in page["Items"]
            for attribute in ("work_at", "probe_at")
            if attribute in item and not item.get("work_key", {}).get("S", "").startswith("dead#")
        ]
        later = [m for m in moments if m > now]
        return min(later) if later else None

    def send_again(self, notification_id: str) -> None:
        """What SQS does when it delivers a message twice."""
        body = {"notification_id": notification_id, "correlation_id": "dup"}
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def queue_depth(self, queue_url: str | None = None) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


def department_request(key: str = "ticket:T1:dispatched", **overrides) -> NotificationRequest:
    values = dict(
        business_key=key,
        recipient_kind=RecipientKind.DEPARTMENT,
        recipient_id="dept-scjgj",
        category="ticket.dispatched",
        title="新派单：办不成事工单 T1",
        body="请于1个工作日内联系反映人。",
        data={"ticket_id": "T1"},
        correlation_id="corr-T1",
    )
    values.update(overrides)
    return NotificationRequest(**values)


def user_request(user_id: str, key: str, title: str = "您的申请已受理") -> NotificationRequest:
    return NotificationRequest(
        business_key=key,
        recipient_kind=RecipientKind.USER,
        recipient_id=user_id,
        category="application.accepted",
        title=title,
        body="请留意后续办理进度。",
        data={"application_id": key},
    )


def load_event(relative: str) -> dict:
    return json.loads((EVENTS / relative).read_text(encoding="utf-8"))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the outbox -----------------------------------------------------------------------------


def test_notify_twice_with_one_business_key_writes_one_item_and_delivers_once(
    container, audit, receiver, pipeline
):
    first = container.notifier.notify(department_request())
    second = container.notifier.notify(department_request(title="另一个标题"))

    notification_id = notification_id_for("ticket:T1:dispatched")
    assert first == (notification_id, True)
    assert second == (notification_id, False)
    table = container.aws.client("dynamodb").scan(TableName="qphb-test-notifications")
    assert table["Count"] == 1
    assert container.notifier.get(notification_id).title == "新派单：办不成事工单 T1"

    event = pipeline.stream_event()
    assert [r["eventName"] for r in event["Records"]].count("INSERT") == 1
    assert pipeline.invoke("enqueue_notifications", event) == {"batchItemFailures": []}
    # The creation is audited from the outbox's stream record, once.
    assert audit.actions() == ["notification.created"]
    pipeline.deliver()

    assert len(receiver.received) == 1
    assert pipeline.queue_depth() == (0, 0)


def test_stream_handler_enqueues_each_inserted_notification_from_the_real_stream(
    container, pipeline
):
    department_id, _ = container.notifier.notify(department_request())
    user_id, _ = container.notifier.notify(user_request("u-citizen-zhang", "app:A1:accepted"))
    # A delivery lease: bookkeeping that modifies the item (a MODIFY record, not a new one).
    assert container.notifier.claim(department_id, container.clock.now(), 60)

    event = pipeline.stream_event()
    names = [r["eventName"] for r in event["Records"]]
    assert names.count("INSERT") == 2
    assert "MODIFY" in names  # bookkeeping updates are in the stream too, and are skipped
    response = pipeline.invoke("enqueue_notifications", event)

    assert response == {"batchItemFailures": []}
    bodies = [json.loads(m["Body"]) for m in pipeline.receive()]
    assert sorted(b["notification_id"] for b in bodies) == sorted([department_id, user_id])
    by_id = {b["notification_id"]: b for b in bodies}
    assert by_id[department_id]["correlation_id"] == "corr-T1"
    assert by_id[user_id]["correlation_id"]


# -- department webhooks --------------------------------------------------------------------


def test_department_delivery_is_signed_and_the_receiver_verifies_it(
    container, audit, receiver, pipeline, clock
):
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()
    messages, response = pipeline.deliver()

    assert len(messages) == 1
    assert response == {"batchItemFailures": []}
    [call] = receiver.received
    assert call["department_id"] == "dept-scjgj"
    assert call["signature_valid"] is True
    # Standard Webhooks: the id is the notification's (stable across retries), the timestamp
    # the wall time of the attempt (what the receiver checks freshness against).
    assert call["headers"]["webhook-id"] == notification_id
    assert call["headers"]["x-correlation-id"] == "corr-T1"
    assert abs(int(call["headers"]["webhook-timestamp"]) - time.time()) < 60
    assert call["headers"]["webhook-signature"].startswith("v1,")
    assert call["body"]["title"] == "新派单：办不成事工单 T1"
    assert call["body"]["data"] == {"ticket_id": "T1"}

    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.DELIVERED
    assert stored.delivered_at == clock.now()
    [attempt] = stored.attempts
    assert (attempt.number, attempt.delivered, attempt.status_code) == (1, True, 204)
    assert audit.actions(notification_id) == ["notification.created", "notification.delivered"]
    assert pipeline.queue_depth() == (0, 0)


def test_a_wrong_secret_is_refused_by_the_receiver_and_counts_as_a_failed_attempt(
    container, receiver, pipeline
):
    receiver.set_secret("dept-scjgj", WEBHOOK_SECRETS["dept-rsj"])
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()
    _, response = pipeline.deliver()

    assert response == {"batchItemFailures": []}  # the schedule is on the item, not the queue
    assert receiver.received[0]["signature_valid"] is False
    stored = container.notifier.get(notification_id)
    assert stored.attempts[0].status_code == 401
    assert stored.status is NotificationStatus.RETRYING


def test_a_failed_attempt_is_stored_and_the_next_follows_the_schedule(
    container, receiver, pipeline, clock
):
    receiver.respond_with(500, "dept-scjgj")
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()
    started = clock.now()

    _, response = pipeline.deliver()

    assert response == {"batchItemFailures": []}
    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.RETRYING
    [attempt] = stored.attempts
    assert (attempt.number, attempt.delivered) == (1, False)
    assert (attempt.status_code, attempt.error) == (500, "http_500")
    assert stored.next_attempt_at == started + timedelta(seconds=5)
    assert pipeline.delays == [5]  # a wait within SQS's 15 minutes rides on a delayed message

    assert pipeline.sweep()["enqueued"] == 0  # the delayed message carries it, not the sweep
    clock.advance(timedelta(seconds=5))
    pipeline.drain()
    stored = container.notifier.get(notification_id)
    assert [a.number for a in stored.attempts] == [1, 2]
    assert stored.next_attempt_at == clock.now() + timedelta(minutes=5)
    assert pipeline.delays == [5, 300]

    # drain() took the delayed message before its time (delays are dropped here): it did
    # nothing, as if lost. The due sweep sends the attempt once the message's grace has passed.
    assert [a.number for a in container.notifier.get(notification_id).attempts] == [1, 2]
    assert pipeline.queue_depth() == (0, 0)
    receiver.respond_with(200, "dept-scjgj")
    clock.advance(timedelta(minutes=5))
    assert pipeline.sweep()["enqueued"] == 0
    clock.advance(timedelta(minutes=5))
    assert pipeline.sweep()["enqueued"] == 1
    pipeline.drain()

    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.DELIVERED
    assert [a.number for a in stored.attempts] == [1, 2, 3]
    assert [a.status_code for a in stored.attempts] == [500, 500, 200]
    assert stored.next_attempt_at is None
    assert pipeline.queue_depth() == (0, 0)
    assert pipeline.sweep() == {"enqueued": 0, "budget_exhausted": False}


def test_a_closed_port_is_a_failed_attempt(container, pipeline):
    from chalicelib.domain.directory import Department

    container.directory.put_department(
        Department(
            "dept-rsj",
            "青浦区人力资源和社会保障局",
            f"http://127.0.0.1:{closed_port()}/hooks/dept-rsj",
            "local-secret-rsj",
        )
    )
    notification_id, _ = container.notifier.notify(
        department_request("ticket:T2:dispatched", recipient_id="dept-rsj")
    )
    pipeline.enqueue()
    _, response = pipeline.deliver()

    assert response == {"batchItemFailures": []}
    [attempt] = container.notifier.get(notification_id).attempts
    assert (attempt.status_code, attempt.error) == (None, "connection_failed")
    assert pipeline.delays == [5]


def _run_until(pipeline, clock, done, *, step=timedelta(minutes=1), limit=timedelta(days=3)):
    """Move the clock, running the sweep and the queue, until `done()`. The sweep runs every
    minute in AWS; between two moments when something falls due it finds nothing, so the clock
    jumps from one such moment (a notification's `work_at`, a circuit's probe) to the next,
    and by `step` when nothing is due."""
    deadline = clock.now() + limit
    while not done():
        assert clock.now() < deadline, "not done within the limit"
        due = pipeline.next_due_after(clock.now())
        clock.advance(max(step, due - clock.now()) if due else step)
        pipeline.sweep()
        pipeline.drain()


def test_after_the_whole_schedule_it_is_a_dead_letter_of_its_department(
    api, container, audit, receiver, pipeline, clock
):
    receiver.respond_with(503)
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()
    started = clock.now()
    pipeline.drain()

    def dead() -> bool:
        return container.notifier.get(notification_id).status is NotificationStatus.FAILED

    _run_until(pipeline, clock, dead, step=timedelta(minutes=10))

    stored = container.notifier.get(notification_id)
    assert [a.number for a in stored.attempts] == list(range(1, 10))
    assert stored.attempts[-1].at - started > timedelta(days=1)  # the schedule spans a day
    assert len(receiver.received) == 9
    assert all(call["signature_valid"] for call in receiver.received)
    assert audit.actions(notification_id)[-1] == "notification.delivery_failed"
    assert pipeline.receive(pipeline.dlq_url) == []  # the queue's DLQ is for crashes only

    page = api.get("/notifications/dead-letters?department_id=dept-scjgj", user="u-supervisor-zhao")
    assert page.status == 200, page
    [item] = page.json["items"]
    assert item["notification_id"] == notification_id
    assert item["status"] == "failed"
    assert item["last_attempt"]["status_code"] == 503
    # Nothing is left for the sweep: a dead letter waits for a re-drive.
    clock.advance(timedelta(days=2))
    assert pipeline.sweep()["enqueued"] == 0


def test_redelivery_of_a_delivered_notification_sends_nothing(container, receiver, pipeline):
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()
    pipeline.deliver()
    assert len(receiver.received) == 1

    pipeline.send_again(notification_id)
    messages, response = pipeline.deliver()

    assert len(messages) == 1
    assert response == {"batchItemFailures": []}
    assert len(receiver.received) == 1
    assert len(container.notifier.get(notification_id).attempts) == 1
    assert pipeline.queue_depth() == (0, 0)


def test_a_notification_another_consumer_is_delivering_is_retried_later(
    container, receiver, pipeline, clock
):
    notification_id, _ = container.notifier.notify(department_request())
    assert container.notifier.claim(notification_id, clock.now(), 15)  # the other consumer
    pipeline.enqueue()

    _, response = pipeline.deliver()

    assert len(response["batchItemFailures"]) == 1
    assert receiver.received == []
    assert container.notifier.get(notification_id).attempts == ()
    from chalicelib import topology

    lease = (
        int(container.settings.webhook_timeout_seconds)
        + topology.queue("notification-delivery").consumer_timeout_seconds
    )
    assert pipeline.visibility_changes == [lease]


def test_malformed_and_unknown_messages(container, pipeline):
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody="not json")
    messages, response = pipeline.deliver()
    # A malformed message can never succeed: parked (logged, counted), not retried.
    assert len(messages) == 1 and response == {"batchItemFailures": []}

    pipeline.send_again(notification_id_for("never-written"))
    pipeline.skip_back_off()
    messages, response = pipeline.deliver()
    assert all(m["Body"] != "not json" for m in messages)
    assert response == {"batchItemFailures": []}


# -- the sample events in events/ -----------------------------------------------------------


def test_sample_stream_event_enqueues_its_notification(pipeline):
    event = load_event("dynamodb/notification_inserted.json")
    response = pipeline.invoke("enqueue_notifications", event)

    assert response == {"batchItemFailures": []}
    [message] = pipeline.receive()
    assert json.loads(message["Body"]) == {
        "notification_id": notification_id_for("sample:ticket:T20261126-0001:dispatched"),
        "correlation_id": "sample-correlation-0001",
    }


def test_sample_sqs_event_delivers_the_sample_notification(container, receiver, pipeline):
    event = load_event("sqs/notification_delivery.json")
    notification_id, _ = container.notifier.notify(
        department_request(
            "sample:ticket:T20261126-0001:dispatched", correlation_id="sample-correlation-0001"
        )
    )
    assert json.loads(event["Records"][0]["body"])["notification_id"] == notification_id

    response = pipeline.invoke("deliver_notifications", event)

    assert response == {"batchItemFailures": []}
    [call] = receiver.received
    assert call["signature_valid"]
    assert call["headers"]["x-correlation-id"] == "sample-correlation-0001"


def test_sample_sqs_event_schedules_the_retry_of_a_failed_delivery(container, receiver, pipeline):
    receiver.respond_with(500)
    event = load_event("sqs/notification_delivery.json")
    notification_id, _ = container.notifier.notify(
        department_request("sample:ticket:T20261126-0001:dispatched")
    )

    response = pipeline.invoke("deliver_notifications", event)

    assert response == {"batchItemFailures": []}
    assert container.notifier.get(notification_id).status is NotificationStatus.RETRYING
    [message] = pipeline.receive()  # the next attempt, as a delayed message
    assert json.loads(message["Body"])["notification_id"] == notification_id
    assert pipeline.delays == [5]


# -- the users' inbox -----------------------------------------------------------------------


def _deliver_user_notifications(container, pipeline, clock, requests) -> list[str]:
    ids = []
    for request in requests:
        ids.append(container.notifier.notify(request)[0])
        clock.advance(timedelta(minutes=1))
    pipeline.enqueue()
    while True:
        messages, response = pipeline.deliver()
        assert response == {"batchItemFailures": []}
        if not messages:
            return ids


def test_user_notification_reaches_only_that_users_inbox_newest_first_with_a_cursor(
    api, container, pipeline, clock
):
    zhang_ids = _deliver_user_notifications(
        container,
        pipeline,
        clock,
        [user_request("u-citizen-zhang", f"app:A{n}:accepted", f"第{n}条") for n in range(3)]
        + [user_request("u-citizen-li", "app:B1:accepted", "李的消息")],
    )[:3]

    first = api.get("/me/notifications?limit=2", user="u-citizen-zhang")
    assert first.status == 200, first
    assert [i["title"] for i in first.json["items"]] == ["第2条", "第1条"]
    assert first.json["next_cursor"]
    second = api.get(
        f"/me/notifications?limit=2&cursor={first.json['next_cursor']}", user="u-citizen-zhang"
    )
    assert second.status == 200, second
    assert [i["title"] for i in second.json["items"]] == ["第0条"]
    assert second.json["next_cursor"] is None
    seen = [i["notification_id"] for i in first.json["items"] + second.json["items"]]
    assert sorted(seen) == sorted(zhang_ids)
    assert all(i["read"] is False for i in first.json["items"])

    li = api.get("/me/notifications", user="u-citizen-li")
    assert [i["title"] for i in li.json["items"]] == ["李的消息"]
    stolen = api.get(f"/me/notifications?cursor={first.json['next_cursor']}", user="u-citizen-li")
    assert stolen.status == 400
    assert stolen.json["code"] == "invalid_cursor"
    assert api.get("/me/notifications", user="u-dept-scjgj").json["items"] == []


def test_user_notification_is_not_in_the_inbox_before_it_is_delivered(api, container, pipeline):
    container.notifier.notify(user_request("u-citizen-zhang", "app:A1:accepted"))
    pipeline.enqueue()
    assert api.get("/me/notifications", user="u-citizen-zhang").json["items"] == []

    pipeline.deliver()
    assert len(api.get("/me/notifications", user="u-citizen-zhang").json["items"]) == 1


def test_redelivery_of_a_user_notification_sends_nothing(container, pipeline, clock):
    [notification_id] = _deliver_user_notifications(
        container, pipeline, clock, [user_request("u-citizen-zhang", "app:A1:accepted")]
    )
    pipeline.send_again(notification_id)
    _, response = pipeline.deliver()

    assert response == {"batchItemFailures": []}
    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.DELIVERED
    assert len(stored.attempts) == 1


def test_marking_a_notification_read_and_someone_elses_is_404(
    api, audit, container, pipeline, clock
):
    [notification_id] = _deliver_user_notifications(
        container, pipeline, clock, [user_request("u-citizen-zhang", "app:A1:accepted")]
    )

    someone_else = api.post(f"/me/notifications/{notification_id}/read", user="u-citizen-li")
    missing = api.post(f"/me/notifications/{'0' * 32}/read", user="u-citizen-zhang")
    garbage = api.post("/me/notifications/not-an-id/read", user="u-citizen-zhang")
    for result in (someone_else, missing, garbage):
        assert result.status == 404, result
        assert result.json["code"] == "notification_not_found"
    assert someone_else.json["message"] == missing.json["message"]

    marked = api.post(f"/me/notifications/{notification_id}/read", user="u-citizen-zhang")
    assert marked.status == 200, marked
    assert marked.json["read"] is True
    assert marked.json["read_at"].startswith(clock.now().date().isoformat())
    again = api.post(f"/me/notifications/{notification_id}/read", user="u-citizen-zhang")
    assert again.json["read_at"] == marked.json["read_at"]
    assert audit.actions(notification_id).count("notification.read") == 1
    [item] = api.get("/me/notifications", user="u-citizen-zhang").json["items"]
    assert item["read"] is True


def test_inbox_requires_a_token(api):
    assert api.get("/me/notifications").status == 401


def test_every_attempt_is_logged_without_the_message_text(container, receiver, pipeline, caplog):
    from chalicelib.observability import logger

    # Chalice's `app.debug = False` lowers the shared logger to ERROR; this test looks at INFO.
    caplog.set_level("INFO", logger=logger.name)
    receiver.respond_with(500, "dept-scjgj")
    notification_id, _ = container.notifier.notify(
        department_request(title="张伟 310118198503121233 的投诉", body="联系电话 13812345678")
    )
    pipeline.enqueue()
    pipeline.deliver()
    receiver.respond_with(204, "dept-scjgj")
    pipeline.clock.advance(timedelta(seconds=5))
    pipeline.deliver()

    attempts = [
        r
        for r in caplog.records
        if r.getMessage() == "notification delivery attempt" and hasattr(r, "attempt")
    ]
    assert [(r.attempt, r.outcome, r.status_code) for r in attempts] == [
        (1, "failed", 500),
        (2, "delivered", 204),
    ]
    assert all(r.notification_id == notification_id for r in attempts)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in ("张伟", "310118198503121233", "13812345678", "local-secret-scjgj"):
        assert secret not in logged


def test_receiver_refuses_bad_signatures_and_lists_what_it_received(receiver):
    import urllib.error
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    body = b'{"notification_id": "x"}'
    unsigned = urllib.request.Request(
        receiver.url_for("dept-scjgj"),
        data=body,
        headers={"X-QPHB-Timestamp": "1", "X-QPHB-Signature": "0" * 64},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        direct.open(unsigned, timeout=5)
    assert refused.value.code == 401

    with direct.open(receiver.base_url, timeout=5) as listing:
        received = json.loads(listing.read())
    assert [(r["department_id"], r["signature_valid"], r["status"]) for r in received] == [
        ("dept-scjgj", False, 401)
    ]
    assert received[0]["body"] == {"notification_id": "x"}


# -- outages: the schedule, the circuit, dead letters and re-drives --------------------------


def test_an_endpoint_down_for_an_hour_receives_every_notification_after_it_comes_back(
    container, receiver, pipeline, clock
):
    receiver.respond_with(503, "dept-scjgj")
    ids = [
        container.notifier.notify(department_request(f"ticket:T{n}:dispatched"))[0]
        for n in range(6)
    ]
    pipeline.enqueue()
    pipeline.drain()
    back_at = clock.now() + timedelta(hours=1)
    _run_until(pipeline, clock, lambda: clock.now() >= back_at)
    calls_while_down = len(receiver.received)
    # The circuit held the outage to a few attempts and probes, not one per message per retry.
    assert calls_while_down < 6 * 4

    receiver.respond_with(200, "dept-scjgj")

    def all_delivered() -> bool:
        return all(container.notifier.get(i).is_delivered for i in ids)

    _run_until(pipeline, clock, all_delivered, limit=timedelta(hours=6))
    delivered = [c for c in receiver.received if c["status"] == 200]
    assert sorted(c["body"]["notification_id"] for c in delivered) == sorted(ids)  # once each


class CountingWebhook:
    """One department's endpoint hangs (each call times out); the others answer at once."""

    def __init__(self, hanging: str) -> None:
        self.hanging = hanging
        self.calls: dict[str, int] = {}

    def deliver(
        self, department_id: str, url: str, message_id: str, body: bytes, headers: dict[str, str]
    ) -> Any:
        from chalicelib.domain.notifications import SendResult

        department = department_id
        self.calls[department] = self.calls.get(department, 0) + 1
        if department == self.hanging:
            return SendResult(False, error="timeout", duration_ms=5000)
        return SendResult(True, 204, duration_ms=1)


def test_a_hanging_endpoint_costs_a_few_attempts_and_does_not_hold_other_departments(
    container, pipeline, clock
):
    from chalicelib.domain.notifications import CIRCUIT_FAILURE_THRESHOLD

    webhook = CountingWebhook(hanging="dept-scjgj")
    container.webhook_sender = webhook
    for n in range(10):
        container.notifier.notify(department_request(f"ticket:H{n}:dispatched"))
        container.notifier.notify(
            department_request(f"ticket:R{n}:dispatched", recipient_id="dept-rsj")
        )
    pipeline.enqueue()
    pipeline.drain()

    # Every healthy delivery made in the same pass; the hanging endpoint was called only
    # until its circuit opened, the other messages deferred without an HTTP attempt.
    assert webhook.calls["dept-rsj"] == 10
    assert webhook.calls["dept-scjgj"] == CIRCUIT_FAILURE_THRESHOLD
    circuit = container.notifier.circuit("dept-scjgj")
    assert circuit.is_open

    # An hour on: one probe at a time, never one call per waiting message.
    an_hour_on = clock.now() + timedelta(hours=1)
    _run_until(pipeline, clock, lambda: clock.now() >= an_hour_on)
    probes = webhook.calls["dept-scjgj"] - CIRCUIT_FAILURE_THRESHOLD
    assert 0 < probes <= 10  # probes back off from 30 s to 10 minutes: about 9 in an hour
    assert webhook.calls["dept-rsj"] == 10


def test_staff_redrive_a_dead_letter_once_and_a_recovered_endpoint_redrives_the_rest(
    api, container, audit, receiver, pipeline, clock
):
    receiver.respond_with(503, "dept-scjgj")
    ids = [
        container.notifier.notify(department_request(f"ticket:D{n}:dispatched"))[0]
        for n in range(3)
    ]
    pipeline.enqueue()
    pipeline.drain()

    def all_dead() -> bool:
        return all(container.notifier.get(i).is_dead_letter for i in ids)

    _run_until(pipeline, clock, all_dead, step=timedelta(minutes=10))
    first = api.get(
        "/notifications/dead-letters?department_id=dept-scjgj&limit=2", user="u-dept-scjgj"
    )
    assert first.status == 200, first
    assert len(first.json["items"]) == 2 and first.json["next_cursor"]
    rest = api.get(
        "/notifications/dead-letters?department_id=dept-scjgj&limit=2"
        f"&cursor={first.json['next_cursor']}",
        user="u-dept-scjgj",
    )
    listed = [i["notification_id"] for i in first.json["items"] + rest.json["items"]]
    assert sorted(listed) == sorted(ids)
    other = api.get("/notifications/dead-letters?department_id=dept-scjgj", user="u-dept-rsj")
    assert other.status == 404  # another department's dead letters are not theirs to see
    citizen = api.get(
        "/notifications/dead-letters?department_id=dept-scjgj", user="u-citizen-zhang"
    )
    assert citizen.status == 403

    # Staff re-drive one while the endpoint is still down: a new round, sent at once.
    receiver.clear()
    redriven = api.post(f"/notifications/{ids[0]}/redrive", {}, user="u-supervisor-zhao")
    assert redriven.status == 200, redriven
    assert redriven.json["redriven"] is True and redriven.json["status"] == "retrying"
    again = api.post(f"/notifications/{ids[0]}/redrive", {}, user="u-supervisor-zhao")
    assert again.json["redriven"] is False  # idempotent: nothing new is sent
    assert audit.actions(ids[0]).count("notification.redriven") == 1

    # The endpoint answers again: the probe succeeds and re-drives the other dead letters.
    receiver.respond_with(200, "dept-scjgj")

    def all_delivered() -> bool:
        return all(container.notifier.get(i).is_delivered for i in ids)

    _run_until(pipeline, clock, all_delivered, limit=timedelta(hours=1))
    delivered = [c["body"]["notification_id"] for c in receiver.received if c["status"] == 200]
    assert sorted(delivered) == sorted(ids)
    assert (
        api.get("/notifications/dead-letters?department_id=dept-scjgj", user="u-dept-scjgj").json[
            "items"
        ]
        == []
    )


def test_a_notification_that_cannot_be_delivered_for_its_data_is_a_dead_letter_at_once(
    api, container, pipeline, monkeypatch
):
    from chalicelib.service_layer import notifications as service

    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()

    def unreadable(*args, **kwargs):
        raise ValueError("Invalid isoformat string: '2026-02-30'")

    monkeypatch.setattr(service, "deliver_notification", unreadable)
    _, response = pipeline.deliver()

    assert response == {"batchItemFailures": []}  # not retried
    assert container.notifier.get(notification_id).status is NotificationStatus.FAILED
    page = api.get("/notifications/dead-letters?department_id=dept-scjgj", user="u-supervisor-zhao")
    assert [i["notification_id"] for i in page.json["items"]] == [notification_id]
