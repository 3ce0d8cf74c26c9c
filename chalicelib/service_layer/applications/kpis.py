"""Monthly KPIs: the facts each application leaves, and the report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import Application, KpiFacts, State
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.applications.common import ApplicationDeps
from chalicelib.service_layer.authorization import Action, require


def _record_facts(deps: ApplicationDeps, app: Application) -> None:
    created = datetime.fromisoformat(app.created_at)
    completed = app.state in (State.APPROVED, State.REJECTED, State.TERMINATED)
    days = None
    if completed:
        calendar = deps.deadlines.calendar()
        start = datetime.fromisoformat(app.accepted_at or app.created_at).astimezone(CHINA_TZ)
        days = calendar.working_days_between(
            start.date(), deps.clock.now().astimezone(CHINA_TZ).date()
        )
    facts = KpiFacts(
        application_id=app.application_id,
        item_code=app.item_code,
        prefilled_fields=app.prefilled_fields,
        total_fields=app.total_fields,
        machine_reviewed=app.reviews > 0,
        supplement_rounds=app.supplement_rounds,
        online=app.channel == "online",
        channel=app.channel,
        completed=completed,
        accepted=app.accepted_at is not None,
        working_days=days,
    )
    deps.store.put_facts(created.astimezone(CHINA_TZ).strftime("%Y-%m"), facts)


def report(deps: ApplicationDeps, principal: Principal, month: str) -> dict[str, Any]:
    require(principal, Action.READ_APPLICATION_REPORTS)
    facts = deps.store.facts(month)
    by_item: dict[str, list[KpiFacts]] = {}
    for f in facts:
        by_item.setdefault(f.item_code, []).append(f)
    return {
        "month": month,
        "targets": domain.TARGETS,
        "overall": domain.kpis(facts),
        "online_completion": domain.online_completion(facts),
        "items": [
            {**_item_columns(deps, code), **domain.kpis(rows)}
            for code, rows in sorted(by_item.items())
        ],
    }


def _item_columns(deps: ApplicationDeps, code: str) -> dict[str, Any]:
    """The columns naming an item and its department, as every report names them."""
    item = deps.store.latest_item(code)
    department_id = item.department_id if item else None
    department = (
        deps.directory.get_department(department_id)
        if department_id and deps.directory is not None
        else None
    )
    return {
        "item_code": code,
        "item_name": item.name if item else None,
        "department_id": department_id,
        "department_name": department.name if department else None,
    }
