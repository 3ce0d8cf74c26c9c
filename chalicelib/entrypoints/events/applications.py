"""Application events: the pre-review consumer and the 容缺 termination schedule.

The consumer: each message names an application and its submission round.

Idempotent per application and round: a redelivered message finds the round already reviewed
and does nothing. A transient failure is reported as a batch item failure and retried; after the
queue's last receive it lands in the DLQ. A message that cannot be processed for a data reason
is not retried: its application moves to needs_manual_review and its department is told.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

QUEUE = "application-prereview"
_SWEEP = next(s for s in topology.SCHEDULES if s.consumer == "terminate_overdue_supplements")
_APPLICATION_ID = re.compile(r"^[0-9a-f]{32}$")


@bp.on_sqs_message(
    queue=topology.queue_name(QUEUE),
    batch_size=topology.queue(QUEUE).batch_size,
    name="prereview_applications",
)
def prereview_applications(event: Any) -> dict[str, Any]:
    return process_batch(
        event, _review_record, consumer="prereview_applications", on_data_error=_hold
    )


def _hold(record: Any, error: BaseException) -> None:
    """Pre-review cannot process this application: it waits for a person, visibly."""
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.applications.common import ApplicationDeps
    from chalicelib.service_layer.applications.prereview import hold_for_manual_review

    try:
        application_id, _, _ = parse_message(record.body)
    except ValueError:
        return  # no application named: the office's alert is all there is to do
    reason = getattr(error, "message", None) or "预审时读取办件数据出错"
    hold_for_manual_review(ApplicationDeps.from_container(container()), application_id, reason)


def parse_message(body: str) -> tuple[str, int, str | None]:
    """A malformed message cannot succeed: it is parked, not retried (see batch.py)."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("pre-review message is not an object")
    application_id, round_ = message.get("application_id"), message.get("round", 0)
    if not isinstance(application_id, str) or not _APPLICATION_ID.match(application_id):
        raise ValueError("pre-review message without a valid application_id")
    if not isinstance(round_, int) or round_ < 0:
        raise ValueError("pre-review message with an invalid round")
    correlation_id = message.get("correlation_id")
    return application_id, round_, correlation_id if isinstance(correlation_id, str) else None


def _review_record(record: Any) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.applications.common import ApplicationDeps
    from chalicelib.service_layer.applications.prereview import prereview

    application_id, round_, correlation_id = parse_message(record.body)
    set_correlation_id(correlation_id)
    result = prereview(ApplicationDeps.from_container(container()), application_id, round_)
    logger.info(
        "application pre-reviewed",
        extra={
            "application_id": application_id,
            "round": round_,
            "state": result.state.value if result else "already_reviewed",
        },
    )


@bp.schedule(_SWEEP.expression, name=_SWEEP.consumer, description=_SWEEP.description)
def terminate_overdue_supplements(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.applications.common import ApplicationDeps
    from chalicelib.service_layer.applications.supplements import terminate_overdue

    set_correlation_id(getattr(event, "event_id", None))
    terminated = terminate_overdue(ApplicationDeps.from_container(container()))
    logger.info("overdue tolerated applications terminated", extra={"count": len(terminated)})
    return {"terminated": terminated}
