"""Readiness: every table and queue of the topology answers; on the local stage, every event
pump keeps up."""

from __future__ import annotations

from collections.abc import Callable
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


# --- the local runner's pumps ------------------------------------------------------------------

# On the local stage the runner registers a provider of its pumps' status (lag per stream and
# queue, stalled or not); in AWS nothing is registered and the event source mappings' own
# metrics (IteratorAge, ApproximateAgeOfOldestMessage) tell the same.
_local_status: Callable[[], list[Any]] | None = None


def register_local_status(provider: Callable[[], list[Any]] | None) -> None:
    global _local_status
    _local_status = provider


def local_pump_status() -> list[Any] | None:
    """The registered provider's answer (objects with name, kind, lag, idle_seconds,
    stalled), or None when nothing is registered."""
    return _local_status() if _local_status is not None else None
