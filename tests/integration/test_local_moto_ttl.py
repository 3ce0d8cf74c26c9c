"""TTL expiry of the embedded AWS (`local/moto_ttl.py`), on an in-process moto of its own."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_ttl
from local.moto_server import Journal, read_entries

NOW = 1_800_000_000.0
TABLE = "ttl-test"


def client(service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def make_table() -> Any:
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    dynamodb.update_time_to_live(
        TableName=TABLE,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return dynamodb


def put(dynamodb: Any, sk: str, expires_at: Any | None) -> None:
    item: dict[str, Any] = {"pk": {"S": "p"}, "sk": {"S": sk}}
    if expires_at is not None:
        item["expires_at"] = expires_at
    dynamodb.put_item(TableName=TABLE, Item=item)


def kept(dynamodb: Any) -> set[str]:
    rows = dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )["Items"]
    return {row["sk"]["S"] for row in rows}


def removals(dynamodb: Any) -> list[dict[str, Any]]:
    streams = client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [r for r in records if r["eventName"] == "REMOVE"]


def fill(dynamodb: Any) -> None:
    put(dynamodb, "expired", {"N": str(int(NOW - 60))})
    put(dynamodb, "expires-now", {"N": str(int(NOW))})
    put(dynamodb, "later", {"N": str(int(NOW + 60))})
    put(dynamodb, "ancient", {"N": str(int(NOW - 6 * 365 * 24 * 3600))})  # not an expiry time
    put(dynamodb, "text", {"S": str(int(NOW - 60))})  # not a Number: never expires
    put(dynamodb, "none", None)


@pytest.mark.integration
def test_expired_items_go_with_a_remove_record_from_the_ttl_service():
    with mock_aws():
        dynamodb = make_table()
        fill(dynamodb)

        entries = moto_ttl.expire(NOW)

        assert kept(dynamodb) == {"later", "ancient", "text", "none"}
        gone = removals(dynamodb)
        assert sorted(r["dynamodb"]["Keys"]["sk"]["S"] for r in gone) == [
            "expired",
            "expires-now",
        ]
        assert all(r["userIdentity"] == moto_ttl.TTL_IDENTITY for r in gone)
        assert [(e[0], e[3], len(e[4])) for e in entries] == [(moto_ttl.KIND, TABLE, 2)]
        assert moto_ttl.expire(NOW) == []  # nothing left to expire


@pytest.mark.integration
def test_a_user_delete_carries_no_service_identity():
    with mock_aws():
        dynamodb = make_table()
        put(dynamodb, "mine", {"N": str(int(NOW + 60))})
        dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "mine"}})
        moto_ttl.expire(NOW)
        (gone,) = removals(dynamodb)
        assert "userIdentity" not in gone


@pytest.mark.integration
def test_the_budget_bounds_one_sweep_and_the_next_one_goes_on():
    with mock_aws():
        dynamodb = make_table()
        for n in range(5):
            put(dynamodb, f"old-{n}", {"N": str(int(NOW - n - 1))})
        assert sum(len(e[4]) for e in moto_ttl.expire(NOW, budget=3)) == 3
        assert len(kept(dynamodb)) == 2
        assert sum(len(e[4]) for e in moto_ttl.expire(NOW, budget=3)) == 2
        assert kept(dynamodb) == set()


@pytest.mark.integration
def test_a_sweep_is_journaled_and_replayed_after_a_crash(tmp_path):
    with mock_aws():
        dynamodb = make_table()
        fill(dynamodb)
        journal = Journal(tmp_path)
        journal.recover(lambda entry: None)
        ticks = iter([0.0, 10.0, 40.0])
        sweeper = moto_ttl.TtlSweeper(every=30, clock=lambda: NOW, monotonic=lambda: next(ticks))

        assert sweeper(journal) == 2
        put(dynamodb, "expired-too", {"N": str(int(NOW - 1))})
        assert sweeper(journal) == 0  # 10 s later: not due yet
        assert sweeper(journal) == 1
        journal.close()

        # The state before the sweeps (the last checkpoint), then the journal replayed.
        fill(dynamodb)
        put(dynamodb, "expired-too", {"N": str(int(NOW - 1))})
        (path,) = tmp_path.glob("journal-*.log")
        for entry in read_entries(path):
            moto_ttl.replay(entry)
        assert kept(dynamodb) == {"later", "ancient", "text", "none"}


@pytest.mark.integration
def test_replaying_a_sweep_for_a_table_gone_since_does_nothing():
    with mock_aws():
        moto_ttl.replay((moto_ttl.KIND, "123456789012", "us-east-1", "gone", [({"S": "x"}, None)]))


@pytest.mark.integration
def test_an_item_moto_no_longer_holds_is_freed():
    """moto's dashboard lists kept every item version ever made: an overwritten or expired
    item stayed in memory for good."""
    import gc
    import weakref

    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from local import moto_memory

    moto_memory.stop_instance_tracking()
    item = Item(DynamoType({"S": "p"}), DynamoType({"S": "gone"}), {"pk": {"S": "p"}})
    kept = weakref.ref(item)
    del item
    gc.collect()
    assert kept() is None
    assert moto_memory.tracked_instances() == 0
