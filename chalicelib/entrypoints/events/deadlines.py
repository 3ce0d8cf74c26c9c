"""Deadline events: the one due-item sweep (every minute, on the injected clock: every
capability's due items by kind, clocks' ladder steps among them) and the calendar-recompute job
consumer (SQS, partial batch failures reported)."""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

_DUE_SWEEP = next(s for s in topology.SCHEDULES if s.consumer == "sweep_due_items")
_RECOMPUTE = topology.queue("calendar-recompute")


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.deadlines import DeadlineDeps

    return DeadlineDeps.from_container(container())


@bp.schedule(_DUE_SWEEP.expression, name=_DUE_SWEEP.consumer, description=_DUE_SWEEP.description)
def sweep_due_items(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.due import sweep

    set_correlation_id(getattr(event, "event_id", None))
    c = container()
    report = sweep(c.due_store, c.clock, c)
    summary = report.summary()
    (logger.error if report.failures else logger.info)("due sweep finished", extra=summary)
    return summary


@bp.on_sqs_message(
    queue=topology.queue_name(_RECOMPUTE.name),
    batch_size=_RECOMPUTE.batch_size,
    name=_RECOMPUTE.consumer,
)
def recompute_deadlines(event: Any) -> dict[str, Any]:
    return process_batch(event, _recompute_record, consumer="recompute_deadlines")


def _recompute_record(record: Any) -> dict[str, Any]:
    from chalicelib.domain.errors import InvalidInput
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.deadlines import recompute_year

    try:
        job = json.loads(record.body)
        int(job["year"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput("重算作业消息格式无效", code="invalid_job") from error
    set_correlation_id(job.get("job_id"))
    report = recompute_year(_deps(), job)
    logger.info(
        "calendar recompute part finished",
        extra={
            "year": report.year,
            "examined": report.examined,
            "changed": report.changed,
            "notified": report.notified,
            "continued": report.continuation is not None,
        },
    )
    return {"year": report.year, "changed": report.changed}
