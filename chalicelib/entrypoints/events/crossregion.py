"""跨省通办 outbound queue consumer: each message forwards one case to the region that decides
it, or calls back one step of an inbound case to the region it came from.

A region that does not take the message (down, 5xx, timeout) fails the record: the queue
delivers it again, with the same message id (the region de-duplicates), and after its last
receive it lands in the DLQ. A message naming no application is parked, not retried.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

QUEUE = "cross-region-outbound"
_APPLICATION_ID = re.compile(r"^[0-9a-f]{32}$")
_KINDS = ("case", "callback")


@bp.on_sqs_message(
    queue=topology.queue_name(QUEUE),
    batch_size=topology.queue(QUEUE).batch_size,
    name="deliver_cross_region",
)
def deliver_cross_region(event: Any) -> dict[str, Any]:
    return process_batch(event, _deliver_record, consumer="deliver_cross_region")


def parse_message(body: str) -> dict[str, Any]:
    message = json.loads(body)
    if not isinstance(message, dict) or message.get("kind") not in _KINDS:
        raise ValueError("cross-region message without a valid kind")
    if not _APPLICATION_ID.match(str(message.get("application_id", ""))):
        raise ValueError("cross-region message without a valid application_id")
    if message["kind"] == "callback" and not isinstance(message.get("event"), str):
        raise ValueError("cross-region callback without an event")
    return message


def _deliver_record(record: Any) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.crossregion import CrossRegionDeps, deliver

    message = parse_message(record.body)
    correlation_id = message.get("correlation_id")
    set_correlation_id(correlation_id if isinstance(correlation_id, str) else None)
    outcome = deliver(CrossRegionDeps.from_container(container()), message)
    logger.info(
        "cross-region message delivered",
        extra={
            "application_id": message["application_id"],
            "kind": message["kind"],
            "outcome": outcome,
        },
    )
