"""Review events: the reviews table's stream (a new bad review opens its rectification task and
may trip the department's good-rate alert) and the job schedule (reminders to rate, the monthly
report on the first working day)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

_JOBS = next(s for s in topology.SCHEDULES if s.consumer == "run_review_jobs")
_STREAM = next(s for s in topology.STREAMS if s.consumer == "process_review_changes")


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.reviews import ReviewDeps

    return ReviewDeps.from_container(container())


@bp.on_dynamodb_record(
    stream_arn=topology.stream_arn(_STREAM.table),
    name=_STREAM.consumer,
    batch_size=_STREAM.batch_size,
    # A bad review written before the trigger was enabled still needs its task.
    starting_position="TRIM_HORIZON",
)
def process_review_changes(event: Any) -> dict[str, Any]:
    return process_batch(event, _review_record, stream=True, consumer="process_review_changes")


def _review_record(record: Any) -> None:
    from chalicelib.observability import logger
    from chalicelib.service_layer.reviews import on_review_created

    if record.event_name is None or record.event_name.name != "INSERT":
        return  # task, appeal and report changes are the use cases' own effects
    image = record.dynamodb.new_image or {}
    if image.get("item_type") != "review":
        return
    pk = str(image.get("pk", ""))
    review_id = pk.removeprefix("review#")
    task = on_review_created(_deps(), review_id)
    logger.info(
        "review processed",
        extra={"review_id": review_id, "task": task.state.value if task else None},
    )


@bp.schedule(_JOBS.expression, name=_JOBS.consumer, description=_JOBS.description)
def run_review_jobs(event: Any) -> dict[str, Any]:
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.reviews import run_jobs

    set_correlation_id(getattr(event, "event_id", None))
    report = run_jobs(_deps())
    summary = report.summary()
    (logger.error if report.failures else logger.info)("review jobs finished", extra=summary)
    return summary
