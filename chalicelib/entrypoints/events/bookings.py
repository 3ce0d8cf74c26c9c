"""Booking events: the job runner (every minute, on the injected clock) that sends reminders,
marks no-shows after the grace period and alerts when live help is not picked up in time."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import topology

bp = Blueprint(__name__)

_JOBS = next(s for s in topology.SCHEDULES if s.consumer == "run_booking_jobs")


@bp.schedule(_JOBS.expression, name=_JOBS.consumer, description=_JOBS.description)
def run_booking_jobs(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.bookings import BookingDeps, run_due_jobs

    set_correlation_id(getattr(event, "event_id", None))
    report = run_due_jobs(BookingDeps.from_container(container()))
    summary = report.summary()
    if report.failures:
        logger.error("booking jobs finished with failures", extra=summary)
    else:
        logger.info("booking jobs finished", extra=summary)
    return summary
