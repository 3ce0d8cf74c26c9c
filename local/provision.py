"""Create every table, index, stream, queue and DLQ of the topology on an AWS endpoint (moto).

Used by the local runner (moto server) and by the integration tests (in-process mock_aws).
Idempotent: an existing resource is left as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import boto3

from chalicelib import topology
from chalicelib.settings import Settings


@dataclass
class Provisioned:
    tables: dict[str, str] = field(default_factory=dict)  # logical -> physical name
    stream_arns: dict[str, str] = field(default_factory=dict)  # logical table -> stream ARN
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical queue -> URL
    dlq_urls: dict[str, str] = field(default_factory=dict)


def _client(service: str, settings: Settings):
    return boto3.client(
        service, region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url
    )


def provision(settings: Settings) -> Provisioned:
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
    return result
