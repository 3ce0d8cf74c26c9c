"""The local runner: pumps deliver to registered handlers with Lambda's semantics, the snapshot
survives a fresh embedded AWS, and `python -m local.runner` serves, stops and keeps its data."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice import Chalice, Rate
from moto import mock_aws

from chalicelib import topology
from chalicelib.settings import get_settings
from local import pumps
from local.snapshot import Snapshotter

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUEUE = "calendar-recompute"


# --- a tiny app whose handlers record what they get ------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sqs_batches: list[list[dict[str, Any]]] = []
        self.stream_batches: list[list[dict[str, Any]]] = []
        self.schedule_events: list[dict[str, Any]] = []
        self.fail_bodies: set[str] = set()
        self.fail_keys: set[str] = set()


def make_test_app(recorder: Recorder) -> Chalice:
    settings = get_settings()
    app = Chalice("pump-test")

    @app.on_sqs_message(queue=topology.queue_name(QUEUE), batch_size=10, name="take_messages")
    def take_messages(event):
        records = event.to_dict()["Records"]
        recorder.sqs_batches.append(records)
        failed = [r["messageId"] for r in records if r["body"] in recorder.fail_bodies]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    @app.on_dynamodb_record(
        stream_arn=(
            f"arn:aws:dynamodb:{settings.aws_region}:000000000000:table/"
            f"{topology.table_name('notifications')}/stream/local"
        ),
        batch_size=10,
        name="take_records",
    )
    def take_records(event):
        records = event.to_dict()["Records"]
        recorder.stream_batches.append(records)
        failed = [
            r["dynamodb"]["SequenceNumber"]
            for r in records
            if {v.get("S") for v in r["dynamodb"]["Keys"].values()} & recorder.fail_keys
        ]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}

    @app.schedule(Rate(7, unit=Rate.MINUTES), name="every_seven_minutes")
    def every_seven_minutes(event):
        recorder.schedule_events.append(event.to_dict())

    return app


@pytest.fixture(autouse=True)
def streams_on_the_regional_endpoint(monkeypatch):
    """botocore sends DynamoDB Streams calls that carry an ARN to an account-id endpoint
    (`<account>.streams-ddb...`), which in-process moto 5.2.5 does not serve."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def bindings(recorder):
    return pumps.discover(make_test_app(recorder), get_settings())


def queue_counts(container, logical: str) -> tuple[int, int]:
    sqs = container.aws.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=container.aws.queue_url(logical),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


# --- discovery -------------------------------------------------------------------------------


def test_discovery_binds_each_event_source_to_its_registered_handler(bindings):
    assert [b.handler_name for b in bindings.sqs] == ["take_messages"]
    assert bindings.sqs[0].queue_name == topology.queue_name(QUEUE)
    assert bindings.sqs[0].timeout_seconds == topology.queue(QUEUE).consumer_timeout_seconds
    assert [b.table_name for b in bindings.streams] == [topology.table_name("notifications")]
    assert [(b.name, b.rate) for b in bindings.schedules] == [
        ("every_seven_minutes", timedelta(minutes=7))
    ]


def test_discovery_of_the_real_app_binds_the_topology_handlers():
    from app import app

    found = pumps.discover(app, get_settings())
    consumers = {b.handler_name for b in found.sqs} | {b.handler_name for b in found.streams}
    declared = {q.consumer for q in topology.QUEUES if not q.function} | {
        s.consumer for s in topology.STREAMS
    }
    registered = set(app.handler_map)
    # Every declared consumer that is registered is pumped; the others are reported.
    assert consumers == declared & registered
    for missing in declared - registered:
        assert any(missing in warning for warning in found.warnings)


# --- SQS -------------------------------------------------------------------------------------


def test_sqs_pump_delivers_a_lambda_shaped_batch_and_deletes_it(container, bindings, recorder):
    sqs = container.aws.client("sqs")
    sqs.send_message(
        QueueUrl=container.aws.queue_url(QUEUE),
        MessageBody='{"year": 2027}',
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "recompute"}},
    )
    pump = pumps.SqsPump(bindings.sqs[0], sqs)

    step = pump.run_once()

    assert (step.received, step.deleted, step.failed) == (1, 1, 0)
    (record,) = recorder.sqs_batches[0]
    assert record["body"] == '{"year": 2027}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":" + topology.queue_name(QUEUE))
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"]["stringValue"] == "recompute"
    assert record["receiptHandle"] and record["messageId"]
    assert queue_counts(container, QUEUE) == (0, 0)


def test_sqs_pump_leaves_a_reported_failure_in_the_queue(container, bindings, recorder):
    sqs = container.aws.client("sqs")
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=container.aws.queue_url(QUEUE), MessageBody=body)
    recorder.fail_bodies = {"bad"}
    pump = pumps.SqsPump(bindings.sqs[0], sqs)

    step = pump.run_once()

    assert (step.received, step.deleted, step.failed) == (3, 2, 1)
    # Not deleted: held invisible by its visibility timeout, as after a Lambda partial failure.
    assert queue_counts(container, QUEUE) == (0, 1)

    # On stop the runner releases it, and it is received again with a higher receive count.
    assert pump.release_held() == 1
    recorder.fail_bodies = set()
    assert pump.run_once().deleted == 1
    (again,) = recorder.sqs_batches[-1]
    assert again["body"] == "bad"
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert queue_counts(container, QUEUE) == (0, 0)


def test_sqs_pump_keeps_the_whole_batch_when_the_handler_raises(container, recorder):
    def broken(event, context):
        raise RuntimeError("boom")

    binding = pumps.SqsBinding("broken", broken, topology.queue_name(QUEUE), 10, 10)
    sqs = container.aws.client("sqs")
    sqs.send_message(QueueUrl=container.aws.queue_url(QUEUE), MessageBody="x")

    step = pumps.SqsPump(binding, sqs).run_once()

    assert (step.deleted, step.failed) == (0, 1)
    assert queue_counts(container, QUEUE) == (0, 1)


# --- streams ---------------------------------------------------------------------------------


def put_notification_rows(container, *keys: str) -> None:
    dynamodb = container.aws.client("dynamodb")
    name = topology.table_name("notifications")
    schema = dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
    for key in keys:
        item = {k["AttributeName"]: {"S": key} for k in schema}
        item["payload"] = {"B": b"\x00\x01binary"}
        dynamodb.put_item(TableName=name, Item=item)


def stream_pump(container, bindings, **kw) -> pumps.StreamPump:
    pump = pumps.StreamPump(
        bindings.streams[0],
        container.aws.client("dynamodb"),
        container.aws.client("dynamodbstreams"),
        **kw,
    )
    pump.start()
    return pump


def test_stream_pump_delivers_new_records_as_a_lambda_stream_event(container, bindings, recorder):
    put_notification_rows(container, "before-start")
    pump = stream_pump(container, bindings)
    put_notification_rows(container, "n-1", "n-2")

    step = pump.run_once()

    assert step.delivered == 2
    records = recorder.stream_batches[0]
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT"]
    first = records[0]
    assert first["eventSource"] == "aws:dynamodb"
    assert "/stream/" in first["eventSourceARN"]
    assert first["dynamodb"]["NewImage"]["payload"] == {"B": "AAFiaW5hcnk="}  # base64, as Lambda
    assert set(first["dynamodb"]["Keys"]) <= set(first["dynamodb"]["NewImage"])
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], int)
    # Started at LATEST: the row written before the pump started is not replayed.
    assert all("before-start" not in json.dumps(r) for r in records)
    assert pump.run_once().delivered == 0


def test_a_stream_pump_resumes_after_the_last_record_it_delivered(
    container, bindings, recorder, tmp_path
):
    """A new pump (the runner started again) on the kept positions delivers what was written
    after the last delivered record, including what was written while no pump ran, once."""
    kept = tmp_path / "stream-positions.json"
    first = stream_pump(container, bindings, positions=pumps.StreamPositions(kept))
    put_notification_rows(container, "n-1", "n-2")
    assert first.run_once().delivered == 2

    put_notification_rows(container, "while-stopped-1", "while-stopped-2")
    again = stream_pump(container, bindings, positions=pumps.StreamPositions(kept))
    put_notification_rows(container, "after-start")
    assert again.run_once().delivered == 3

    delivered = [json.dumps(r) for batch in recorder.stream_batches for r in batch]
    for key in ("n-1", "n-2", "while-stopped-1", "while-stopped-2", "after-start"):
        assert sum(key in record for record in delivered) == 1, key
    assert again.run_once().delivered == 0


def test_a_stream_pump_without_kept_positions_starts_at_latest(container, bindings, tmp_path):
    put_notification_rows(container, "before-start")
    pump = stream_pump(
        container, bindings, positions=pumps.StreamPositions(tmp_path / "none-yet.json")
    )
    assert pump.run_once().delivered == 0


def test_stream_pump_hands_a_ttl_deletion_on_with_the_service_identity_as_lambda_does(
    container, bindings, recorder
):
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    from local import moto_ttl

    put_notification_rows(container, "expired", "deleted")
    pump = stream_pump(container, bindings)
    name = topology.table_name("notifications")
    (table,) = [
        backend.tables[name]
        for account in dynamodb_backends.values()
        for backend in account.values()
        if name in backend.tables
    ]
    assert moto_ttl._delete(table, DynamoType({"S": "expired"}), None)  # as the TTL sweep does
    key = {k: {"S": "deleted"} for k in (table.hash_key_attr,)}
    container.aws.client("dynamodb").delete_item(TableName=name, Key=key)

    assert pump.run_once().delivered == 2
    expired, deleted = recorder.stream_batches[0]
    assert [expired["eventName"], deleted["eventName"]] == ["REMOVE", "REMOVE"]
    assert expired["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert "userIdentity" not in deleted


def test_stream_pump_retries_from_the_failed_record_then_skips_it(container, bindings, recorder):
    pump = stream_pump(container, bindings, max_retries=2)
    put_notification_rows(container, "p", "q", "r")
    recorder.fail_keys = {"q"}

    steps = [pump.run_once() for _ in range(4)]

    batches = [[key_of(r) for r in batch] for batch in recorder.stream_batches]
    # p succeeds once; the batch restarts at q (the failed record) until its retries run out,
    # then q is skipped and r is delivered.
    assert batches == [["p", "q", "r"], ["q", "r"], ["q", "r"], ["r"]]
    assert [s.skipped for s in steps] == [0, 0, 1, 0]
    assert [s.delivered for s in steps] == [1, 0, 0, 1]
    assert pump.run_once().pending == 0


def key_of(record: dict[str, Any]) -> str:
    (value,) = record["dynamodb"]["Keys"].values()
    return value["S"]


def test_stream_pump_treats_a_raising_handler_as_a_failed_batch(container, bindings):
    calls: list[int] = []

    def broken(event, context):
        calls.append(len(event["Records"]))
        raise RuntimeError("boom")

    binding = pumps.StreamBinding("broken", broken, bindings.streams[0].table_name, 10)
    pump = pumps.StreamPump(
        binding,
        container.aws.client("dynamodb"),
        container.aws.client("dynamodbstreams"),
        max_retries=1,
    )
    pump.start()
    put_notification_rows(container, "only")

    assert pump.run_once().failed == 1
    assert pump.run_once().skipped == 1
    assert calls == [1, 1]
    assert pump.run_once().pending == 0


def test_stream_pump_skips_reads_while_the_write_generation_is_unchanged(
    container, bindings, recorder
):
    generation = {"value": 1}
    pump = stream_pump(container, bindings, generation=lambda: generation["value"])
    streams = container.aws.client("dynamodbstreams")
    reads: list[str] = []
    streams.meta.events.register(
        "before-call.dynamodbstreams.GetRecords", lambda **_: reads.append("r")
    )

    pump.run_once()
    pump.run_once()
    assert len(reads) == 1  # the second step knew nothing was written

    put_notification_rows(container, "new")
    generation["value"] = 2
    assert pump.run_once().delivered == 1


# --- the real notification pipeline ----------------------------------------------------------


def test_real_handlers_carry_a_notification_from_the_outbox_to_the_department(container):
    from app import app
    from chalicelib.domain.notifications import NotificationRequest, RecipientKind
    from local.seed import WEBHOOK_SECRETS, seed
    from local.webhook_receiver import WebhookReceiver

    found = pumps.discover(app, container.settings)
    sqs_pumps, stream_pumps, _ = pumps.build_pumps(
        found, container.aws, container.clock, container.settings
    )
    with WebhookReceiver("127.0.0.1", port=0, secrets=WEBHOOK_SECRETS) as receiver:
        seed(container.directory, webhook_base_url=receiver.base_url)
        for pump in stream_pumps:
            pump.start()
        container.notifier.notify(
            NotificationRequest(
                "runner-test:1",
                RecipientKind.DEPARTMENT,
                "dept-scjgj",
                "test.runner",
                "本地联调",
                "通知经由流与队列送达",
            )
        )
        for pump in stream_pumps:
            pumps.drain(pump)
        for pump in sqs_pumps:
            pumps.drain(pump)

        (call,) = receiver.received_for("dept-scjgj")
    assert call["signature_valid"]
    assert call["body"]["title"] == "本地联调"


# --- schedules -------------------------------------------------------------------------------


def test_schedule_pump_fires_when_the_clock_passes_the_rate_and_not_before(
    clock, bindings, recorder
):
    pump = pumps.SchedulePump(bindings.schedules, clock)
    start = clock.now()

    assert pump.run_once() == []
    clock.advance(timedelta(minutes=7) - timedelta(seconds=1))
    assert pump.run_once() == []
    assert recorder.schedule_events == []

    clock.advance(timedelta(seconds=1))
    assert pump.run_once() == ["every_seven_minutes"]
    assert pump.run_once() == []
    (event,) = recorder.schedule_events
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"][0].endswith(":rule/every_seven_minutes")
    assert event["time"] == (start + timedelta(minutes=7)).astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    # A jump over many periods fires once, and the next firing stays on the 7-minute grid.
    clock.advance(timedelta(hours=1))
    assert pump.run_once() == ["every_seven_minutes"]
    assert pump.next_due("every_seven_minutes") == start + timedelta(minutes=70)
    assert len(recorder.schedule_events) == 2


class CountingPump:
    name = "counting"

    def __init__(self) -> None:
        self.steps = 0
        self.stepped = threading.Event()

    def run_once(self) -> list[str]:
        self.steps += 1
        self.stepped.set()
        return []  # found nothing: the thread goes idle


def test_a_woken_pump_thread_steps_again_at_once_and_a_stop_ends_its_idle_wait():
    stop = threading.Event()
    pump = CountingPump()
    # Idle waits far longer than the bounded waits below: only a wake ends them in time.
    thread = pumps.PumpThread(pump, stop, idle_seconds=300, max_idle_seconds=300)
    thread.start()
    assert pump.stepped.wait(30)
    pump.stepped.clear()

    thread.wake()
    assert pump.stepped.wait(30)
    assert pump.steps == 2

    stop.set()
    thread.wake()
    thread.join(30)
    assert not thread.is_alive()
    assert pump.steps == 2


# --- snapshot --------------------------------------------------------------------------------


def test_snapshot_restores_records_messages_and_clock_into_a_fresh_embedded_aws(tmp_path):
    from chalicelib.adapters.clock import ManualClock
    from chalicelib.bootstrap import Container
    from chalicelib.domain.directory import UserProfile
    from chalicelib.domain.identity import Role
    from local.provision import provision

    settings = get_settings()
    clock = ManualClock(follow_system=True)
    clock.advance(timedelta(hours=2))

    with mock_aws():
        provision(settings)
        c = Container(settings, clock=clock)
        c.directory.put_user(
            UserProfile("u-kept", Role.CITIZEN, "留存", tags=frozenset({"elderly", "x"}))
        )
        put_notification_rows(c, "kept-row")
        sqs = c.aws.client("sqs")
        sqs.send_message(
            QueueUrl=c.aws.queue_url(f"{QUEUE}-dlq"),
            MessageBody="parked",
            MessageAttributes={"blob": {"DataType": "Binary", "BinaryValue": b"\xff\x00"}},
        )
        snapshotter = Snapshotter(settings, tmp_path, c.aws.client("dynamodb"), sqs, clock=clock)
        snapshotter.save(include_queues=True)

    assert not list(tmp_path.glob("*.tmp"))  # written atomically: no leftovers

    with mock_aws():
        provision(settings)
        fresh = Container(settings, clock=ManualClock(follow_system=True))
        assert fresh.directory.get_user("u-kept") is None
        restored = Snapshotter(
            settings, tmp_path, fresh.aws.client("dynamodb"), fresh.aws.client("sqs")
        ).restore()

        user = fresh.directory.get_user("u-kept")
        assert user is not None and user.tags == frozenset({"elderly", "x"})
        rows = fresh.aws.client("dynamodb").scan(TableName=topology.table_name("notifications"))
        assert rows["Items"][0]["payload"] == {"B": b"\x00\x01binary"}
        (message,) = fresh.aws.client("sqs").receive_message(
            QueueUrl=fresh.aws.queue_url(f"{QUEUE}-dlq"), MessageAttributeNames=["All"]
        )["Messages"]
        assert message["Body"] == "parked"
        assert message["MessageAttributes"]["blob"]["BinaryValue"] == b"\xff\x00"
    assert restored.tables["users"] == 1 and restored.messages == 1
    assert abs(restored.clock_offset_seconds - 7200) <= 2


def test_embedded_server_counts_dynamodb_writes_only():
    from local.moto_server import GENERATION_PATH, LocalAws

    def inner(environ, start_response):
        start_response("200 OK", [])
        return [b""]

    counter = LocalAws(inner)
    for target in (
        "DynamoDB_20120810.PutItem",
        "DynamoDB_20120810.GetItem",
        "DynamoDB_20120810.TransactWriteItems",
        "DynamoDB_20120810.Query",
        "DynamoDBStreams_20120810.GetRecords",
        "AmazonSQS.SendMessage",
    ):
        counter({"HTTP_X_AMZ_TARGET": target, "PATH_INFO": "/"}, lambda *a: None)
    assert counter.generation == 2
    body = counter({"PATH_INFO": GENERATION_PATH}, lambda *a: None)
    assert json.loads(b"".join(body)) == {"generation": 2}


# --- the embedded AWS's journal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("DynamoDB_20120810.PutItem", "request"),
        ("DynamoDB_20120810.TransactWriteItems", "request"),
        ("DynamoDB_20120810.Query", None),
        ("DynamoDBStreams_20120810.GetRecords", None),
        ("AmazonSQS.SendMessageBatch", "sqs_send"),
        ("AmazonSQS.DeleteMessage", "sqs_delete"),
        ("AmazonSQS.ReceiveMessage", None),
        ("AmazonSQS.ChangeMessageVisibility", None),
        ("AmazonSQS.PurgeQueue", "request"),
        ("secretsmanager.PutSecretValue", "request"),
        ("secretsmanager.GetSecretValue", None),
    ],
)
def test_the_journal_keeps_every_mutating_request_and_no_read(target, kind):
    from local.moto_server import journal_kind

    assert journal_kind({"HTTP_X_AMZ_TARGET": target, "REQUEST_METHOD": "POST"}, b"{}") == kind


def test_the_journal_replays_what_was_acknowledged_and_ignores_a_torn_tail(tmp_path):
    from local.moto_server import Journal

    journal = Journal(tmp_path)
    journal.recover(lambda entry: None)
    journal.append(("request", {"n": "1"}, b"one"))
    journal.append(("request", {"n": "2"}, b"two"))
    journal.close()
    (path,) = tmp_path.glob("journal-*.log")
    with path.open("ab") as out:  # a write cut short by a crash: never acknowledged
        out.write(b"\x00\x00\x01\x00partial")

    replayed: list[bytes] = []
    again = Journal(tmp_path)
    assert again.recover(lambda entry: replayed.append(entry[2])) == {
        "checkpoint": 0,
        "replayed": 2,
    }
    assert replayed == [b"one", b"two"]
    again.append(("request", {}, b"three"))  # a new file: nothing after the torn record
    again.close()
    assert len(list(tmp_path.glob("journal-*.log"))) == 2


# --- the real runner, end to end -------------------------------------------------------------
#
# One data directory for the module; the tests below run in order, each starting where the
# previous one left the runner: a clean stop and restart, a SIGKILL of the runner, a SIGKILL of
# the embedded AWS. Waits are on the runner's own output (its banner, its exit), not sleeps.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


READY_LINE = "按 Ctrl-C 停止"


class RunningRunner:
    """`python -m local.runner` as `make run` starts it, on free ports."""

    def __init__(self, data_dir: Path):
        self.port, self.aws_port = free_port(), free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QPHB_", "AWS_", "POWERTOOLS_"))
        }
        env.update(PORT=str(self.port), AWS_PORT=str(self.aws_port), DATA_DIR=str(data_dir))
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.runner"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.ready_after: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if READY_LINE in line and not self.ready.is_set():
                self.ready_after = time.monotonic() - self.started_at
                self.ready.set()
        self.ready.set()  # exited: whoever waits sees it at once

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_healthy(self, timeout: float = 240) -> None:
        import requests

        assert self.ready.wait(timeout), f"no banner after {timeout} s:\n{self.output}"
        assert self.process.poll() is None, self.output
        health = requests.get(self.url("/health"), timeout=10)
        assert health.status_code == 200, health.text

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def moto_pid(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        (pid,) = [int(p) for p in children.read_text().split()]
        return pid

    def aws(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.aws_port}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def token(self, user_id: str = "u-citizen-zhang") -> str:
        import requests

        issued = requests.post(self.url("/dev/tokens"), json={"user_id": user_id}, timeout=10)
        assert issued.status_code == 201, issued.text
        return issued.json()["token"]

    def file_ticket(self, session: Any, token: str, key: str) -> Any:
        return session.post(
            self.url("/tickets"),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            json={
                "kind": "other",
                "channel": "mini_program",
                # "医保" routes it at once (a rule): two clocks and a department notification.
                "description": f"重启前提交的医保报销办不成事反映，重启后必须仍在（{key}）",
                "contact": {"method": "phone"},
            },
            timeout=30,
        )

    def missing_tickets(self, ticket_ids: list[str]) -> list[str]:
        import requests

        headers = {"Authorization": f"Bearer {self.token()}"}
        with requests.Session() as session:
            return [
                t
                for t in ticket_ids
                if session.get(self.url(f"/tickets/{t}"), headers=headers, timeout=10).status_code
                != 200
            ]


class Filing:
    """Clients filing tickets until stopped; keeps the ids answered 201."""

    def __init__(self, runner: RunningRunner, prefix: str, clients: int = 4):
        self.runner = runner
        self.acknowledged: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        token = runner.token()
        self.threads = [
            threading.Thread(target=self._file, args=(token, f"{prefix}-{n}"), daemon=True)
            for n in range(clients)
        ]
        for thread in self.threads:
            thread.start()

    def _file(self, token: str, prefix: str) -> None:
        import requests

        with requests.Session() as session:
            number = 0
            while not self.stop.is_set():
                number += 1
                try:
                    answer = self.runner.file_ticket(session, token, f"{prefix}-{number:04d}")
                except requests.RequestException:
                    return  # the runner is gone
                if answer.status_code == 201:
                    with self._lock:
                        self.acknowledged.append(answer.json()["ticket_id"])

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            self.threads[0].join(0.05)  # a bounded wait on the clients themselves
        assert len(self.acknowledged) >= count, f"only {len(self.acknowledged)} tickets filed"

    def finish(self) -> list[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)
        return list(self.acknowledged)


def seeded_data(tmp_path_factory, name: str) -> Path:
    """A data directory holding the demo data, copied from one that a runner seeded and then
    stopped cleanly, once per test session: seeding costs most of a first start, and what these
    tests start on is a restart of seeded data. The xdist workers of a session share the one
    seeded directory (the first to need it makes it, under a lock)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, above each worker's own
    seeded = root / "runner-seeded"
    with (root / "runner-seeded.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (seeded / "complete").exists():
            shutil.rmtree(seeded, ignore_errors=True)
            first = RunningRunner(seeded / "data")
            try:
                first.wait_healthy()
                assert first.interrupt() == 0, first.output
            finally:
                first.kill()
            (seeded / "complete").touch()
    copy = tmp_path_factory.mktemp(name) / "data"
    shutil.copytree(seeded / "data", copy)
    return copy


@pytest.fixture(scope="module")
def runner_data(tmp_path_factory):
    # The directory is made on the first start: the module's other tests need no seeded data.
    return {"factory": tmp_path_factory, "dir": None, "runner": None, "tickets": []}


@pytest.fixture(scope="module", autouse=True)
def no_runner_outlives_the_module(runner_data):
    yield
    if runner_data["runner"] is not None:
        runner_data["runner"].kill()


def restart(runner_data) -> RunningRunner:
    if runner_data["dir"] is None:
        runner_data["dir"] = seeded_data(runner_data["factory"], "runner")
    runner = RunningRunner(runner_data["dir"])
    runner_data["runner"] = runner
    runner.wait_healthy()
    return runner


def running(runner_data) -> RunningRunner:
    """The module's runner, started on the module's data if no test before left one running:
    each test runs alone or in any order, and in file order they share the starts."""
    runner = runner_data["runner"]
    if runner is None or runner.process.poll() is not None:
        runner = restart(runner_data)
    return runner


@pytest.mark.integration
def test_runner_serves_the_app_and_lists_its_pumps_in_health(runner_data):
    import requests

    first = running(runner_data)
    assert "u-citizen-zhang" in first.output and "TOKEN=$(curl" in first.output
    me = requests.get(first.url("/me"), headers={"Authorization": f"Bearer {first.token()}"})
    assert me.status_code == 200 and me.json()["user_id"] == "u-citizen-zhang"
    unknown = requests.get(first.url("/no-such-route"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    pumps_shown = requests.get(first.url("/health")).json()["pumps"]
    assert {p["kind"] for p in pumps_shown} == {"stream", "queue"}
    assert not any(p["stalled"] for p in pumps_shown)


@pytest.mark.integration
def test_runner_stops_on_sigint_and_keeps_its_data(runner_data):
    import requests

    first = running(runner_data)
    with requests.Session() as session:
        filed = first.file_ticket(session, first.token(), "e2e-restart-0001")
    assert filed.status_code == 201, filed.text
    ticket_id = filed.json()["ticket_id"]
    # Records created during the first run: a user and a message parked in a DLQ.
    first.aws("dynamodb").put_item(
        TableName="qphb-local-users",
        Item={
            "user_id": {"S": "u-e2e-kept"},
            "role": {"S": "citizen"},
            "display_name": {"S": "重启后仍在"},
        },
    )
    sqs = first.aws("sqs")
    dlq = sqs.get_queue_url(QueueName="qphb-local-calendar-recompute-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="parked-before-stop")

    assert first.interrupt() == 0, first.output
    assert not port_is_open(first.aws_port), "the embedded AWS outlived the runner"
    assert not port_is_open(first.port)
    assert list((runner_data["dir"] / "aws").glob("checkpoint-*.pickle"))

    second = restart(runner_data)
    me = requests.get(
        second.url("/me"), headers={"Authorization": f"Bearer {second.token('u-e2e-kept')}"}
    )
    assert me.json()["display_name"] == "重启后仍在"
    sqs = second.aws("sqs")
    dlq = sqs.get_queue_url(QueueName="qphb-local-calendar-recompute-dlq")["QueueUrl"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=dlq).get("Messages", [])]
    assert bodies == ["parked-before-stop"]
    assert second.missing_tickets([ticket_id]) == []


# One repair period of the `effects-repair` schedule, on the runner's (injected) clock.
REPAIR_MINUTES = next(s for s in topology.SCHEDULES if s.name == "effects-repair").rate_minutes


def effects_missing(runner: RunningRunner, ticket_ids: list[str]) -> dict[str, list[str]]:
    from local.effects_check import effects_missing as missing_in

    return missing_in(runner.aws("dynamodb"), ticket_ids)


def effects_applied_after_one_repair_period(runner: RunningRunner, ticket_ids: list[str]):
    """Move the runner's clock one repair period on (the schedules fire), then wait for the
    pumps to carry the effects through; what is still missing after a bounded wait."""
    import requests

    moved = requests.post(
        runner.url("/dev/clock"), json={"advance_minutes": REPAIR_MINUTES + 1}, timeout=30
    )
    assert moved.status_code == 200, moved.text
    deadline = time.monotonic() + 90
    missing = effects_missing(runner, ticket_ids)
    while any(missing.values()) and time.monotonic() < deadline:
        try:  # a bounded wait on the runner itself: over at once should it exit
            runner.process.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            missing = effects_missing(runner, ticket_ids)
    return missing


@pytest.mark.integration
@pytest.mark.parametrize("trial", [1, 2])
def test_every_acknowledged_ticket_and_its_effects_survive_a_sigkill_of_the_runner(
    runner_data, trial
):
    runner = running(runner_data)
    filing = Filing(runner, f"e2e-kill-runner-{trial}")
    filing.wait_for(12)
    runner.kill()  # SIGKILL while the clients are filing
    acknowledged = filing.finish()
    assert not port_is_open(runner.port)

    again = restart(runner_data)
    assert again.ready_after is not None and again.ready_after < 30
    assert again.missing_tickets(acknowledged) == []
    missing = effects_applied_after_one_repair_period(again, acknowledged)
    assert missing == {"clocks": [], "due_items": [], "notifications": []}
    runner_data["tickets"] += acknowledged


@pytest.mark.integration
def test_every_acknowledged_ticket_survives_a_sigkill_of_the_embedded_aws(runner_data):
    runner = running(runner_data)
    filing = Filing(runner, "e2e-kill-moto")
    filing.wait_for(12)
    os.kill(runner.moto_pid(), signal.SIGKILL)
    acknowledged = filing.finish()
    runner.process.wait(timeout=60)  # the runner stops when its embedded AWS is gone
    runner.kill()

    again = restart(runner_data)
    assert again.missing_tickets([*runner_data["tickets"], *acknowledged]) == []
    missing = effects_applied_after_one_repair_period(again, acknowledged)
    assert missing == {"clocks": [], "due_items": [], "notifications": []}
    assert again.interrupt() == 0, again.output
    runner_data["runner"] = None


# --- the demo clock route --------------------------------------------------------------------


def call_dev_clock(method: str, body: bytes | None = None):
    from types import SimpleNamespace

    from chalicelib.entrypoints.http import dev_clock
    from chalicelib.entrypoints.http.routing import ROUTES, handle_request

    spec = next(r for r in ROUTES if r.path == "/dev/clock" and r.method == method)
    view = dev_clock.advance_clock if method == "POST" else dev_clock.read_clock
    request = SimpleNamespace(
        headers={"content-type": "application/json"},
        raw_body=body or b"",
        query_params=None,
        context={"requestId": "req-clock"},
    )
    response = handle_request(spec, view, request, {})
    return response.status_code, json.loads(response.body)


def test_dev_clock_moves_the_shared_clock_forward_and_audits_it(container, clock):
    before = clock.now()

    status, body = call_dev_clock("POST", b'{"advance_minutes": 90}')

    assert status == 200, body
    assert clock.now() == before + timedelta(minutes=90)
    assert body["now"] == clock.now().isoformat()
    assert body["previous"] == before.isoformat()
    from tests.integration.audit_helpers import audit_records

    (record,) = audit_records(container, "demo_clock")
    assert record.action == "demo_clock.advanced"
    assert record.after == {"now": clock.now().isoformat()}
    assert call_dev_clock("GET") == (200, {"now": clock.now().isoformat()})


@pytest.mark.parametrize("minutes", [0, -5, "soon"])
def test_dev_clock_refuses_anything_but_a_positive_number_of_minutes(container, clock, minutes):
    before = clock.now()
    status, body = call_dev_clock("POST", json.dumps({"advance_minutes": minutes}).encode())
    assert status == 400 and body["code"] == "validation_failed"
    assert clock.now() == before


def test_dev_clock_cannot_move_a_system_clock(container):
    from chalicelib.adapters.clock import SystemClock

    container.clock = SystemClock()
    status, body = call_dev_clock("POST", b'{"advance_minutes": 5}')
    assert status == 422 and body["code"] == "clock_not_adjustable"


# --- the HTTP server: a real backlog, keep-alive, a clean stop ---------------------------------


def test_api_server_finishes_the_request_in_flight_then_closes_keep_alive_connections():
    import http.client

    from local.runner import make_api_server

    app = Chalice("server-test")
    entered, release = threading.Event(), threading.Event()

    @app.route("/slow")
    def slow():
        entered.set()
        release.wait(30)
        return {"answered": True}

    @app.route("/fast")
    def fast():
        return {"fast": True}

    port = free_port()
    server = make_api_server(app, get_settings(), port)
    assert server.server.request_queue_size >= 128
    threading.Thread(target=server.server.serve_forever, daemon=True).start()

    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for connection in (busy, idle):  # HTTP/1.1 keep-alive: one connection, several requests
        for _ in range(2):
            connection.request("GET", "/fast")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.getheader("Connection") != "close"
            answer.read()
    busy.request("GET", "/slow")
    assert entered.wait(30)

    stopping = threading.Thread(target=lambda: server.server.stop_answering(30))
    stopping.start()
    server.server.closing.wait(30)
    assert not port_is_open(port)  # the listener is closed while /slow still runs
    idle.request("GET", "/fast")  # the idle keep-alive connection was closed
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        idle.getresponse()

    release.set()
    answer = busy.getresponse()  # the request in flight is answered, then the connection closes
    assert answer.status == 200 and json.loads(answer.read()) == {"answered": True}
    stopping.join(30)
    assert not stopping.is_alive()
    busy.request("GET", "/fast")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        busy.getresponse()
