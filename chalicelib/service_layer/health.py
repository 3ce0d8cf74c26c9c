"""Readiness: every table and queue of the topology answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib import topology
from chalicelib.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool


def check_dependencies(aws: Any, settings: Settings) -> list[Check]:
    checks: list[Check] = []
    dynamodb = aws.client("dynamodb")
    for spec in topology.TABLES:
        name = topology.table_name(spec.name, settings)
        try:
            status = dynamodb.describe_table(TableName=name)["Table"]["TableStatus"]
            checks.append(Check(f"table:{spec.name}", status == "ACTIVE"))
        except Exception:
            checks.append(Check(f"table:{spec.name}", False))
    sqs = aws.client("sqs")
    for queue in topology.QUEUES:
        for name in (queue.name, queue.dlq_name):
            try:
                sqs.get_queue_url(QueueName=settings.resource_name(name))
                checks.append(Check(f"queue:{name}", True))
            except Exception:
                checks.append(Check(f"queue:{name}", False))
    return checks
