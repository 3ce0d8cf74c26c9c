"""The one outbound mechanism, end to end on moto and a real HTTP receiver on loopback:
outbox write -> stream record -> enqueue handler -> SQS -> delivery handler -> webhook / inbox.

The event source mappings are driven by hand: stream records are read with the DynamoDB
Streams API and wrapped as Lambda events; SQS messages are received, handed to the handler and
deleted unless reported as failures, as Lambda's SQS poller does. Instead of waiting out a
back-off, a test sets the message's visibility to 0.
"""

from __future__ import annotations

import json
import socket
from datetime import timedelta
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
from local.webhook_receiver import WebhookReceiver

EVENTS = Path(__file__).resolve().parents[2] / "events"
QUEUE = "notification-delivery"


class FakeAuditLog:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    def append(self, entry: Any) -> Any:
        self.entries.append(entry)
        return entry

    def actions(self, subject_id: str | None = None) -> list[str]:
        return [e.action for e in self.entries if subject_id in (None, e.subject_id)]


@pytest.fixture(autouse=True)
def audit(container) -> FakeAuditLog:
    log = FakeAuditLog()
    container.audit_log = log
    return log


@pytest.fixture
def receiver(container):
    from local.seed import DEPARTMENTS, seed

    secrets = {d.department_id: d.webhook_secret for d in DEPARTMENTS}
    with WebhookReceiver(secrets=secrets) as running:
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
        self._iterators: dict[str, str] = {}
        self.failed_receipts: list[str] = []
        self.visibility_changes: list[int] = []
        container.aws.client("sqs").meta.events.register(
            "provide-client-params.sqs.ChangeMessageVisibility", self._spy_visibility
        )

    def _spy_visibility(self, params, **_):
        self.visibility_changes.append(int(params["VisibilityTimeout"]))

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
    assert audit.actions() == ["notification.created"]

    event = pipeline.stream_event()
    assert [r["eventName"] for r in event["Records"]].count("INSERT") == 1
    assert pipeline.invoke("enqueue_notifications", event) == {"batchItemFailures": []}
    pipeline.deliver()

    assert len(receiver.received) == 1
    assert pipeline.queue_depth() == (0, 0)


def test_stream_handler_enqueues_each_inserted_notification_from_the_real_stream(
    container, pipeline
):
    department_id, _ = container.notifier.notify(department_request())
    user_id, _ = container.notifier.notify(user_request("u-citizen-zhang", "app:A1:accepted"))

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
    assert call["headers"]["x-qphb-notification-id"] == notification_id
    assert call["headers"]["x-correlation-id"] == "corr-T1"
    assert call["headers"]["x-qphb-timestamp"] == str(int(clock.now().timestamp()))
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
    receiver.set_secret("dept-scjgj", "not-the-secret-the-platform-uses")
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()
    _, response = pipeline.deliver()

    assert len(response["batchItemFailures"]) == 1
    assert receiver.received[0]["signature_valid"] is False
    assert container.notifier.get(notification_id).attempts[0].status_code == 401


def test_failing_endpoint_reports_the_item_records_the_attempt_and_backs_off(
    container, receiver, pipeline
):
    receiver.respond_with(500, "dept-scjgj")
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()

    messages, response = pipeline.deliver()

    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.RETRYING
    [attempt] = stored.attempts
    assert (attempt.number, attempt.delivered) == (1, False)
    assert (attempt.status_code, attempt.error) == (500, "http_500")
    base = container.settings.webhook_base_backoff_seconds
    assert pipeline.visibility_changes == [base]
    assert pipeline.queue_depth() == (0, 1)  # still on the queue, invisible for the back-off

    pipeline.skip_back_off()
    pipeline.deliver()
    assert pipeline.visibility_changes == [base, base * 2]  # growing back-off
    receiver.respond_with(200, "dept-scjgj")
    pipeline.skip_back_off()
    _, response = pipeline.deliver()

    assert response == {"batchItemFailures": []}
    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.DELIVERED
    assert [a.number for a in stored.attempts] == [1, 2, 3]
    assert [a.status_code for a in stored.attempts] == [500, 500, 200]
    assert pipeline.queue_depth() == (0, 0)


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
    messages, response = pipeline.deliver()

    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    [attempt] = container.notifier.get(notification_id).attempts
    assert (attempt.status_code, attempt.error) == (None, "connection_failed")
    assert pipeline.visibility_changes == [container.settings.webhook_base_backoff_seconds]


def test_after_the_last_receive_the_message_lands_in_the_dlq(container, audit, receiver, pipeline):
    from chalicelib import topology

    max_receives = topology.queue(QUEUE).max_receive_count
    receiver.respond_with(503)
    notification_id, _ = container.notifier.notify(department_request())
    pipeline.enqueue()

    for _ in range(max_receives):
        messages, response = pipeline.deliver()
        assert len(messages) == 1 and len(response["batchItemFailures"]) == 1
        pipeline.skip_back_off()
    assert pipeline.receive() == []  # the redrive moved it on this receive

    [dead] = pipeline.receive(pipeline.dlq_url)
    assert json.loads(dead["Body"])["notification_id"] == notification_id
    stored = container.notifier.get(notification_id)
    assert stored.status is NotificationStatus.FAILED
    assert [a.number for a in stored.attempts] == list(range(1, max_receives + 1))
    base = container.settings.webhook_base_backoff_seconds
    assert pipeline.visibility_changes == [base * 2**n for n in range(max_receives)]
    assert len(receiver.received) == max_receives
    assert all(call["signature_valid"] for call in receiver.received)
    assert audit.actions(notification_id)[-1] == "notification.delivery_failed"


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


def test_sample_sqs_event_reports_a_failed_delivery(container, receiver, pipeline):
    receiver.respond_with(500)
    event = load_event("sqs/notification_delivery.json")
    container.notifier.notify(department_request("sample:ticket:T20261126-0001:dispatched"))

    response = pipeline.invoke("deliver_notifications", event)

    # The sample's receipt handle is on no queue: the visibility change fails, the retry stays.
    message_id = event["Records"][0]["messageId"]
    assert response == {"batchItemFailures": [{"itemIdentifier": message_id}]}


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
    pipeline.skip_back_off()
    pipeline.deliver()

    attempts = [r for r in caplog.records if r.getMessage() == "notification delivery attempt"]
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
