"""The embedded AWS's query indexes (local/moto_indexes.py) answer exactly as moto does.

The same writes go to `python -m local.moto_server` (indexed) and to plain in-process moto;
then the same queries, page by page, must give the same items in the same order, the same
counts and the same LastEvaluatedKey: on the table and on indexes, both directions, with Limit,
begins_with, between and a filter. The writes cover puts, updates that move an
item between index buckets or out of an index, deletes, batch writes, a transaction, a
cancelled transaction (rolled back item by item by the server) and a failed conditional put;
then a checkpoint, more journaled writes and a restart from the checkpoint and the journal."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TABLE = "index-test"
FLAT = "index-test-flat"  # hash key only
GROUPS = ("a", "b", "c")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.moto_server",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=PROJECT_ROOT,
        )
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/_local/generation", timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, "the embedded AWS exited"
                time.sleep(0.1)  # readiness poll of a separate process, bounded
        raise AssertionError("the embedded AWS did not answer")

    def checkpoint(self) -> None:
        request = urllib.request.Request(self.url + "/_local/checkpoint", method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    def crash(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    running = Server(tmp_path / "aws")
    running.start()
    yield running
    running.stop()


def _client(url: str | None) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _create(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "g", "gs")
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_group",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "gs", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "group_only",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=FLAT,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "flat_group",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _item(rng: random.Random, n: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"p{n % 7}"},
        "sk": {"S": f"s{n:03d}"},
        "n": {"N": str(rng.randint(0, 9))},
    }
    if n % 11:  # some items carry no index key at all
        item["g"] = {"S": rng.choice(GROUPS)}
    if n % 5:  # index range values repeat across items
        item["gs"] = {"S": f"x{rng.randint(0, 40):03d}"}
    return item


def _key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"p{n % 7}"}, "sk": {"S": f"s{n:03d}"}}


def _writes(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """(operation, arguments), the same for both sides."""
    ops: list[tuple[str, dict[str, Any]]] = []
    for first in range(0, 70, 25):
        batch = [{"PutRequest": {"Item": _item(rng, n)}} for n in range(first, min(first + 25, 70))]
        ops.append(("batch_write_item", {"RequestItems": {TABLE: batch}}))
    flat_items = []
    for n in range(20):
        flat = {"pk": {"S": f"f{n:02d}"}, "n": {"N": str(n)}}
        if n % 4:
            flat["g"] = {"S": rng.choice(GROUPS)}
        flat_items.append({"PutRequest": {"Item": flat}})
    ops.append(("batch_write_item", {"RequestItems": {FLAT: flat_items}}))
    for n, group in ((3, "a"), (140, "a"), (141, "c")):  # one put over an item, two new ones
        item = {**_item(rng, n), "g": {"S": group}, "gs": {"S": f"x{n % 40:03d}"}}
        ops.append(("put_item", {"TableName": TABLE, "Item": item}))
    for n in range(0, 70, 6):  # move between buckets, and into an index
        ops.append(
            (
                "update_item",
                {
                    "TableName": TABLE,
                    "Key": _key(n),
                    "UpdateExpression": "SET g = :g, n = n + :one",
                    "ExpressionAttributeValues": {
                        ":g": {"S": rng.choice(GROUPS)},
                        ":one": {"N": "1"},
                    },
                },
            )
        )
    for n in range(1, 70, 12):  # out of the range-keyed index, kept in the hash-only one
        ops.append(
            ("update_item", {"TableName": TABLE, "Key": _key(n), "UpdateExpression": "REMOVE gs"})
        )
    ops.append(  # an update that creates its item
        (
            "update_item",
            {
                "TableName": TABLE,
                "Key": _key(90),
                "UpdateExpression": "SET g = :g, gs = :gs",
                "ExpressionAttributeValues": {":g": {"S": "a"}, ":gs": {"S": "x005"}},
            },
        )
    )
    for n in range(2, 70, 15):
        ops.append(("delete_item", {"TableName": TABLE, "Key": _key(n)}))
    ops.append(("delete_item", {"TableName": FLAT, "Key": {"pk": {"S": "f05"}}}))
    ops.append(
        (
            "batch_write_item",
            {
                "RequestItems": {
                    TABLE: [{"PutRequest": {"Item": _item(rng, n)}} for n in range(100, 110)]
                    + [{"DeleteRequest": {"Key": _key(n)}} for n in (4, 13, 22)]
                }
            },
        )
    )
    ops.append(
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": _item(rng, 120)}},
                    {"Delete": {"TableName": TABLE, "Key": _key(6)}},
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": _key(7),
                            "UpdateExpression": "SET g = :g",
                            "ExpressionAttributeValues": {":g": {"S": "c"}},
                        }
                    },
                ]
            },
        )
    )
    # Cancelled by its last condition: every step before it is undone.
    ops.append(
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": {**_item(rng, 130), "g": {"S": "a"}}}},
                    {"Delete": {"TableName": TABLE, "Key": _key(140)}},
                    {
                        "Update": {
                            "TableName": TABLE,
                            "Key": _key(141),
                            "UpdateExpression": "SET g = :g, gs = :gs",
                            "ExpressionAttributeValues": {":g": {"S": "zz"}, ":gs": {"S": "x001"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": FLAT,
                            "Item": {"pk": {"S": "f01"}, "g": {"S": "zz"}},
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": TABLE,
                            "Key": _key(10),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            },
        )
    )
    ops.append(
        (
            "put_item",
            {
                "TableName": TABLE,
                "Item": {**_item(rng, 12), "g": {"S": "b"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            },
        )
    )
    return ops


def _apply(dynamodb: Any, ops: list[tuple[str, dict[str, Any]]]) -> list[str]:
    outcomes = []
    for operation, arguments in ops:
        try:
            getattr(dynamodb, operation)(**arguments)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    return outcomes


def _queries() -> Iterator[dict[str, Any]]:
    conditions: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        (" AND begins_with(gs, :p)", {":p": {"S": "x01"}}),
        (" AND gs BETWEEN :lo AND :hi", {":lo": {"S": "x010"}, ":hi": {"S": "x030"}}),
    ]
    for group in ("a", "c", "zz"):
        for forward in (True, False):
            for limit in (None, 5):
                page = {} if limit is None else {"Limit": limit}
                for suffix, values in conditions:
                    yield {
                        "TableName": TABLE,
                        "IndexName": "by_group",
                        "KeyConditionExpression": "g = :g" + suffix,
                        "ExpressionAttributeValues": {":g": {"S": group}, **values},
                        "ScanIndexForward": forward,
                        **page,
                    }
                yield {  # a filter after the key condition, with Limit counted before it
                    "TableName": TABLE,
                    "IndexName": "by_group",
                    "KeyConditionExpression": "g = :g",
                    "FilterExpression": "n > :n",
                    "ExpressionAttributeValues": {":g": {"S": group}, ":n": {"N": "4"}},
                    "ScanIndexForward": forward,
                    **page,
                }
                yield {
                    "TableName": TABLE,
                    "IndexName": "group_only",
                    "KeyConditionExpression": "g = :g",
                    "ExpressionAttributeValues": {":g": {"S": group}},
                    "ScanIndexForward": forward,
                    **page,
                }
                yield {
                    "TableName": FLAT,
                    "IndexName": "flat_group",
                    "KeyConditionExpression": "g = :g",
                    "ExpressionAttributeValues": {":g": {"S": group}},
                    "ScanIndexForward": forward,
                    **page,
                }
    for pk in ("p0", "p3", "p9"):
        yield {
            "TableName": TABLE,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": pk},
                ":lo": {"S": "s010"},
                ":hi": {"S": "s100"},
            },
            "ScanIndexForward": False,
            "Limit": 3,
        }
    for pk in ("f01", "f05", "f07"):
        yield {
            "TableName": FLAT,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }


def _answers(dynamodb: Any) -> list[list[dict[str, Any]]]:
    """Every query, page by page: items, counts and where the next page starts."""
    answers = []
    for query in _queries():
        pages: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            arguments = {**query, **({"ExclusiveStartKey": start} if start else {})}
            page = dynamodb.query(**arguments)
            pages.append({k: page.get(k) for k in ("Items", "Count", "ScannedCount")})
            pages[-1]["LastEvaluatedKey"] = start = page.get("LastEvaluatedKey")
            if start is None or len(pages) > 50:
                break
        answers.append(pages)
    return answers


def _later(seed: int) -> list[tuple[str, dict[str, Any]]]:
    """More writes over the same keys (updates, deletes, transactions, puts over items)."""
    return [(op, args) for op, args in _writes(random.Random(seed)) if op != "batch_write_item"]


def test_indexed_queries_answer_as_moto_does_after_every_kind_of_write(server):
    ops, later, last = _writes(random.Random(16)), _later(17), _later(18)
    indexed = _client(server.url)
    _create(indexed)
    _answers(indexed)  # the indexes exist before the writes: every write must keep them
    outcomes = _apply(indexed, ops)
    indexed_answers = _answers(indexed)
    server.checkpoint()
    later_outcomes = _apply(indexed, later)  # in the journal only
    server.crash()
    server.start()
    indexed = _client(server.url)
    restarted_answers = _answers(indexed)  # indexes built from the restored tables
    last_outcomes = _apply(indexed, last)
    last_answers = _answers(indexed)

    with mock_aws():
        plain = _client(None)
        _create(plain)
        assert _apply(plain, ops) == outcomes
        assert outcomes.count("TransactionCanceledException") == 1
        assert outcomes[-1] == "ConditionalCheckFailedException"
        plain_answers = _answers(plain)
        assert _apply(plain, later) == later_outcomes
        plain_later = _answers(plain)
        assert _apply(plain, last) == last_outcomes
        plain_last = _answers(plain)

    found = sum(len(page["Items"]) for pages in plain_answers for page in pages)
    assert found > 300  # the queries do find items
    assert indexed_answers == plain_answers
    assert restarted_answers == plain_later
    assert last_answers == plain_last
