"""The operations report's schedule: on the first working day of a month, last month's report
is built and kept."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import topology

bp = Blueprint(__name__)

_JOBS = next(s for s in topology.SCHEDULES if s.consumer == "build_operations_report")


@bp.schedule(_JOBS.expression, name=_JOBS.consumer, description=_JOBS.description)
def build_operations_report(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.operations import OperationsDeps, build_monthly_report_if_due

    set_correlation_id(getattr(event, "event_id", None))
    month, built = build_monthly_report_if_due(OperationsDeps.from_container(container()))
    logger.info("operations report checked", extra={"month": month, "built": built})
    return {"month": month, "built": built}
