"""Streams of the embedded AWS never stall: a cancelled transaction leaves every streamed table
and its stream in place (unpatched moto swaps the table for a copy and readers of the old
stream see nothing more), read records are trimmed, and a pump that falls behind is reported."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import topology
from chalicelib.settings import get_settings
from local import pumps

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STREAMED = sorted({spec.table for spec in topology.STREAMS})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def embedded_aws(tmp_path_factory):
    """`python -m local.moto_server` as the runner starts it, with a journal."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("aws")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.moto_server",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        cwd=PROJECT_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/_local/generation", timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, "the embedded AWS exited"
            import time

            time.sleep(0.1)  # readiness poll of a separate process, bounded
    yield url
    process.terminate()
    process.wait(timeout=30)


def client(url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def create_streamed_table(dynamodb: Any, logical: str, suffix: str = "") -> tuple[str, list[str]]:
    """The table as the topology declares it (keys, indexes, stream view); returns its
    physical name and key attributes."""
    spec = next(t for t in topology.TABLES if t.name == logical)
    model = spec.load_model()
    schema = model._get_schema()
    name = f"streams-test-{logical}{suffix}"
    arguments: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": schema["key_schema"],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {
            "StreamEnabled": True,
            "StreamViewType": model.Meta.stream_view_type,
        },
    }
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": index["key_schema"],
            "Projection": index["projection"],
        }
        for index in schema.get("global_secondary_indexes", [])
    ]
    if indexes:
        arguments["GlobalSecondaryIndexes"] = indexes
    dynamodb.create_table(**arguments)
    return name, [k["AttributeName"] for k in schema["key_schema"]]


def item(keys: list[str], value: str) -> dict[str, Any]:
    return {k: {"S": f"{value}#{k}"} for k in keys}


def key_value(record: dict[str, Any]) -> str:
    return sorted(v["S"] for v in record["dynamodb"]["Keys"].values())[0].split("#")[0]


def cancel_a_transaction(dynamodb: Any, table: str, keys: list[str]) -> None:
    """A transaction that writes `t-new` and is cancelled by its condition on `a`."""
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item(keys, "t-new")}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": item(keys, "a"),
                        "UpdateExpression": "SET flag = :v",
                        "ConditionExpression": f"attribute_not_exists({keys[0]})",
                        "ExpressionAttributeValues": {":v": {"S": "changed"}},
                    }
                },
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"


@pytest.mark.parametrize("logical", STREAMED)
def test_a_cancelled_transaction_does_not_stall_the_tables_stream(embedded_aws, logical):
    dynamodb = client(embedded_aws, "dynamodb")
    table, keys = create_streamed_table(dynamodb, logical)
    delivered: list[dict[str, Any]] = []

    def handler(event, context):
        delivered.extend(event["Records"])

    pump = pumps.StreamPump(
        pumps.StreamBinding("recorder", handler, table, 100),
        dynamodb,
        client(embedded_aws, "dynamodbstreams"),
    )
    pump.start()
    dynamodb.put_item(TableName=table, Item=item(keys, "a"))
    assert pump.run_once().delivered == 1

    cancel_a_transaction(dynamodb, table, keys)
    dynamodb.put_item(TableName=table, Item=item(keys, "b"))

    step = pump.run_once()
    assert step.delivered == 1, f"the record after the cancelled transaction of {logical}"
    assert [key_value(r) for r in delivered] == ["a", "b"]
    # Rolled back item by item: the cancelled put is not there and `a` is unchanged.
    assert "Item" not in dynamodb.get_item(TableName=table, Key=item(keys, "t-new"))
    kept = dynamodb.get_item(TableName=table, Key=item(keys, "a"))["Item"]
    assert "flag" not in kept


def test_stream_records_every_reader_has_passed_are_trimmed(embedded_aws):
    dynamodb = client(embedded_aws, "dynamodb")
    streams = client(embedded_aws, "dynamodbstreams")
    table, keys = create_streamed_table(dynamodb, "notifications", "-trim")
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]

    def first_kept() -> int:
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        return int(shard["SequenceNumberRange"]["StartingSequenceNumber"])

    def housekeeping() -> None:
        request = urllib.request.Request(embedded_aws + "/_local/housekeeping", method="POST")
        urllib.request.urlopen(request).close()

    pump = pumps.StreamPump(
        pumps.StreamBinding("recorder", lambda e, c: None, table, 100), dynamodb, streams
    )
    pump.start()
    start = first_kept()
    for n in range(5):
        dynamodb.put_item(TableName=table, Item=item(keys, f"r{n}"))
    housekeeping()
    assert first_kept() == start  # not read yet: kept

    assert pump.run_once().delivered == 5
    dynamodb.put_item(TableName=table, Item=item(keys, "unread"))
    housekeeping()
    assert first_kept() == start + 5  # the five read are gone, the unread one is kept

    step = pump.run_once()
    assert step.delivered == 1 and step.pending == 0


@pytest.fixture(autouse=True)
def streams_on_the_regional_endpoint(monkeypatch):
    """botocore sends DynamoDB Streams calls that carry an ARN to an account-id endpoint,
    which in-process moto does not serve."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")


# --- lag and stalls ---------------------------------------------------------------------------


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_pump_that_does_not_move_while_behind_is_reported_stalled(container):
    ticking = Ticking()
    head = {"value": 0}

    def failing(event, context):
        raise RuntimeError("down")

    binding = pumps.StreamBinding("failing", failing, topology.table_name("notifications"), 10)
    pump = pumps.StreamPump(
        binding,
        container.aws.client("dynamodb"),
        container.aws.client("dynamodbstreams"),
        head=lambda table: head["value"],
        monotonic=ticking,
    )
    pump._shards = []  # positioned, no shard read: only the head moves
    pump._shards.append(pumps._Shard("s", None, position=0))

    assert pump.status().stalled is False
    head["value"] = 7
    ticking.now += pumps.STALL_SECONDS - 1
    status = pump.status()
    assert (status.lag, status.stalled) == (7, False)
    ticking.now += 2
    status = pump.status()
    assert (status.lag, status.stalled) == (7, True)
    assert status.name.endswith("→ failing")


def test_a_queue_pump_is_stalled_when_messages_wait_and_it_takes_none(container):
    ticking = Ticking()
    sqs = container.aws.client("sqs")
    queue = "calendar-recompute"
    binding = pumps.SqsBinding("take", lambda e, c: None, topology.queue_name(queue), 10, 10)
    pump = pumps.SqsPump(binding, sqs, monotonic=ticking)
    sqs.send_message(QueueUrl=container.aws.queue_url(queue), MessageBody="waiting")

    ticking.now += pumps.STALL_SECONDS + 1
    status = pump.status()
    assert (status.kind, status.lag, status.stalled) == ("queue", 1, True)

    pump.run_once()
    status = pump.status()
    assert (status.lag, status.stalled) == (0, False)


def test_health_lists_the_pumps_and_is_degraded_when_one_is_stalled(api):
    from chalicelib.service_layer.health import register_local_status

    statuses = [
        pumps.PumpStatus("stream:t → h", "stream", lag=0, idle_seconds=0.1, stalled=False),
        pumps.PumpStatus("sqs:q", "queue", lag=3, idle_seconds=45.0, stalled=True),
    ]
    register_local_status(lambda: statuses)
    try:
        result = api.get("/health")
    finally:
        register_local_status(None)

    body = result.json
    assert result.status == 503 and body["status"] == "degraded"
    assert [(p["name"], p["lag"], p["stalled"]) for p in body["pumps"]] == [
        ("stream:t → h", 0, False),
        ("sqs:q", 3, True),
    ]
    assert get_settings().stage == "local"
