"""Create every table, index, stream, queue and DLQ of the topology on an AWS endpoint (moto),
and, in the local stage, the secrets the code reads (adapters/secrets.py).

Used by the local runner (moto server) and by the integration tests (in-process mock_aws).
Idempotent: an existing resource is left as it is, except that an index the model declares and
an existing table lacks (a data directory from before the index) is added to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chalicelib import topology
from chalicelib.adapters.aws import AwsClients
from chalicelib.settings import Settings


@dataclass
class Provisioned:
    tables: dict[str, str] = field(default_factory=dict)  # logical -> physical name
    stream_arns: dict[str, str] = field(default_factory=dict)  # logical table -> stream ARN
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical queue -> URL
    dlq_urls: dict[str, str] = field(default_factory=dict)


def _client(service: str, settings: Settings):
    # The app's clients: they and each table's PynamoDB connection, opened here before any
    # container exists, read botocore's models through the process's one loader.
    return AwsClients(settings).client(service)


def provision(settings: Settings, dev_token_secret: str | None = None) -> Provisioned:
    result = Provisioned()
    dynamodb = _client("dynamodb", settings)
    existing = set(dynamodb.list_tables().get("TableNames", []))
    for spec in topology.TABLES:
        model = spec.load_model()
        name = model.Meta.table_name
        if name not in existing:
            model.create_table(wait=True)
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
        description = dynamodb.describe_table(TableName=name)["Table"]
        if _add_missing_indexes(dynamodb, model, description):
            description = dynamodb.describe_table(TableName=name)["Table"]
        result.tables[spec.name] = name
        if description.get("LatestStreamArn"):
            result.stream_arns[spec.name] = description["LatestStreamArn"]

    sqs = _client("sqs", settings)
    for spec in topology.QUEUES:
        dlq_url = sqs.create_queue(
            QueueName=settings.resource_name(spec.dlq_name),
            Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        url = sqs.create_queue(
            QueueName=settings.resource_name(spec.name),
            Attributes={
                "VisibilityTimeout": str(spec.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
                ),
            },
        )["QueueUrl"]
        result.queue_urls[spec.name] = url
        result.dlq_urls[spec.name] = dlq_url
    if settings.is_local:
        provision_secrets(settings, dev_token_secret)
    return result


def _add_missing_indexes(dynamodb, model, description: dict) -> list[str]:
    """UpdateTable for each global index of the model the table does not have (one per call,
    as DynamoDB requires); the table's existing items are indexed by the service."""
    have = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
    added = []
    for index in model._get_schema()["global_secondary_indexes"]:
        if index["index_name"] in have:
            continue
        key_schema = sorted(index["key_schema"], key=lambda k: k["KeyType"] != "HASH")
        dynamodb.update_table(
            TableName=description["TableName"],
            AttributeDefinitions=index["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index["index_name"],
                        "KeySchema": key_schema,
                        "Projection": index["projection"],
                    }
                }
            ],
        )
        added.append(index["index_name"])
    return added


# Local key values carry "local-only": any other stage refuses them at start.
LOCAL_SIGNING_KEYS = {"current": "local-1", "local-1": "local-only-signing-key-of-the-local-stage"}
LOCAL_DEV_TOKEN_SECRET = "local-only-dev-token-key-for-hs256-signing"


def provision_secrets(settings: Settings, dev_token_secret: str | None = None) -> None:
    """The same secret names the functions read in AWS, with local values: one code path."""
    from chalicelib.adapters.secrets import DEV_HS256, REGIONS, SIGNING_KEYS, WEBHOOKS
    from local.seed import REGION_SECRETS, WEBHOOK_SECRETS

    if not settings.is_local:
        raise RuntimeError("local secrets are only for the local stage")
    client = _client("secretsmanager", settings)
    values = {
        SIGNING_KEYS: json.dumps(LOCAL_SIGNING_KEYS),
        DEV_HS256: dev_token_secret or LOCAL_DEV_TOKEN_SECRET,
        **{WEBHOOKS + dept: secret for dept, secret in WEBHOOK_SECRETS.items()},
        **{REGIONS + region: secret for region, secret in REGION_SECRETS.items()},
    }
    wanted = {f"{settings.resource_prefix}/{name}": value for name, value in values.items()}
    # A restart finds them all in place: one read instead of a failed create and a new version
    # of each per start.
    current = _secret_values(client, list(wanted))
    for name, value in wanted.items():
        if name not in current:
            put_secret(client, name, value)
        elif current[name] != value:
            client.put_secret_value(SecretId=name, SecretString=value)


def _secret_values(client, names: list[str]) -> dict[str, str]:
    """The current values of those of `names` that exist."""
    found: dict[str, str] = {}
    for start in range(0, len(names), 20):  # BatchGetSecretValue takes 20 ids per call
        answer = client.batch_get_secret_value(SecretIdList=names[start : start + 20])
        found |= {s["Name"]: s.get("SecretString", "") for s in answer.get("SecretValues", [])}
    return found


def put_secret(client, name: str, value: str) -> None:
    try:
        client.create_secret(Name=name, SecretString=value)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=value)
