"""Items decided in another region: the application forwarded there once it is complete."""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.applications import Application, ServiceItem
from chalicelib.service_layer.applications.common import ApplicationDeps, _change, _load, _notify


def _decided_elsewhere(item: ServiceItem) -> bool:
    from chalicelib.domain.crossregion import LOCAL_REGION

    return item.handled_in is not None and item.handled_in != LOCAL_REGION


def _forward(
    deps: ApplicationDeps, app: Application, item: ServiceItem, now: datetime
) -> Application:
    """跨省通办: accepted and pre-reviewed here, the case goes to the region that decides it.
    The leg is stored as forwarding first (the repair job sends it again while it is), then
    handed to the outbound queue; the promised clock runs on for the other region's leg."""
    from chalicelib.domain import crossregion

    region = item.handled_in or ""

    def mark(a: Application) -> Application | None:
        if a.remote is not None:
            return None
        a.remote = crossregion.new_leg(crossregion.OUTBOUND, region, now.isoformat())
        a.effects_since = now.isoformat()
        a.add_event(now, "forwarding", region=region)
        return a

    updated = _change(deps, app.application_id, mark) or _load(deps, app.application_id)[0]
    if deps.forward is not None and (updated.remote or {}).get("state") == "forwarding":
        deps.forward({"kind": "case", "application_id": app.application_id})
    _notify(
        deps,
        updated,
        "accepted",
        f"已受理：{updated.item_name}",
        f"您的申请已在青浦受理并通过预审，已转交{crossregion.REGIONS.get(region, region)}办理，"
        f"承诺{item.promised_days}个工作日内办结。",
    )
    return updated
