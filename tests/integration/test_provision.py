"""Provisioning an existing data directory: a table created before one of its model's indexes
existed gets that index, and the items it already holds are found through it."""

from __future__ import annotations

from moto import mock_aws

from chalicelib.settings import get_settings


def test_an_index_missing_from_an_existing_table_is_added_and_covers_its_items():
    import boto3

    from chalicelib.adapters.dynamodb.policies import PolicyRecord
    from local.provision import provision

    settings = get_settings()
    with mock_aws():
        schema = PolicyRecord._get_schema()
        older = [
            i for i in schema["global_secondary_indexes"] if i["index_name"] != "effects_index"
        ]
        dynamodb = boto3.client("dynamodb", region_name=settings.aws_region)
        dynamodb.create_table(
            TableName=PolicyRecord.Meta.table_name,
            AttributeDefinitions=[
                a
                for a in schema["attribute_definitions"]
                if not a["AttributeName"].startswith("effects_")
            ],
            KeySchema=schema["key_schema"],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": i["index_name"],
                    "KeySchema": sorted(i["key_schema"], key=lambda k: k["KeyType"] != "HASH"),
                    "Projection": i["projection"],
                }
                for i in older
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(
            TableName=PolicyRecord.Meta.table_name,
            Item={
                "pk": {"S": "policy#p1"},
                "sk": {"S": "v#000001"},
                "data": {"S": "{}"},
                "effects_key": {"S": "pending"},
                "effects_since": {"S": "2026-11-26T10:00:00.000000+08:00"},
            },
        )

        provision(settings)
        provision(settings)  # a second start finds nothing to add

        table = dynamodb.describe_table(TableName=PolicyRecord.Meta.table_name)["Table"]
        names = sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"])
        assert names == sorted(i["index_name"] for i in schema["global_secondary_indexes"])
        found = list(PolicyRecord.effects_index.query("pending"))
        assert [(r.pk, r.sk) for r in found] == [("policy#p1", "v#000001")]


def test_notifications_from_before_the_work_index_get_their_work_key_once(container, tmp_path):
    from chalicelib.adapters.dynamodb.notifications import NotificationModel, dead_key, due_key
    from chalicelib.domain.notifications import NotificationRequest, RecipientKind
    from local.migrations import migrate

    def old_item(key: str, status: str) -> str:
        request = NotificationRequest(
            business_key=key,
            recipient_kind=RecipientKind.DEPARTMENT,
            recipient_id="dept-rsj",
            category="test",
            title="t",
            body="b",
        )
        item = container.notifier.prepare(request)
        item.status = status
        item.work_key = item.work_at = None
        item.save()
        return item.notification_id

    retrying = old_item("old:retrying", "retrying")
    failed = old_item("old:failed", "failed")
    delivered = old_item("old:delivered", "delivered")

    assert migrate(tmp_path, container) == {"notification_work_key": 2, "clock_due_items": 0}
    assert NotificationModel.get(retrying).work_key == due_key(retrying)
    assert NotificationModel.get(failed).work_key == dead_key("department", "dept-rsj")
    assert NotificationModel.get(delivered).work_key is None
    assert migrate(tmp_path, container) == {}  # once per data directory


def test_provisioning_again_leaves_unchanged_secrets_alone_and_restores_a_changed_one():
    import boto3

    from chalicelib.adapters.secrets import DEV_HS256, SIGNING_KEYS
    from local.provision import provision

    settings = get_settings()
    assert settings.is_local
    dev, keys = (f"{settings.resource_prefix}/{n}" for n in (DEV_HS256, SIGNING_KEYS))
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=settings.aws_region)

        def versions(name: str) -> int:
            return len(client.list_secret_version_ids(SecretId=name)["Versions"])

        provision(settings, dev_token_secret="dev-secret-of-this-directory")
        assert (versions(dev), versions(keys)) == (1, 1)
        client.put_secret_value(SecretId=keys, SecretString="changed by hand")

        provision(settings, dev_token_secret="dev-secret-of-this-directory")

        assert versions(dev) == 1  # a start does not pile up versions of what it finds
        assert client.get_secret_value(SecretId=dev)["SecretString"] == (
            "dev-secret-of-this-directory"
        )
        assert client.get_secret_value(SecretId=keys)["SecretString"] != "changed by hand"
