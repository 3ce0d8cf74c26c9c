"""The repair schedule: applies the side effects of changes stored as still pending (see
service_layer/repair.py)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import topology

bp = Blueprint(__name__)

_SCHEDULE = next(s for s in topology.SCHEDULES if s.consumer == "repair_effects")


@bp.schedule(_SCHEDULE.expression, name=_SCHEDULE.consumer, description=_SCHEDULE.description)
def repair_effects(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.repair import repair_effects as run

    set_correlation_id(getattr(event, "event_id", None))
    repaired = run(container())
    logger.info(
        "pending effects repaired", extra={name: len(ids) for name, ids in repaired.items()}
    )
    return repaired
