"""Reading applications: one, its deadlines, a person's own, a department's."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.applications import Application
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.applications.common import (
    ApplicationDeps,
    _load,
    _require_acting_item,
    _resource,
)
from chalicelib.service_layer.applications.supplements import enforce_supplement_deadline
from chalicelib.service_layer.authorization import Action, Resource, require


def read(deps: ApplicationDeps, principal: Principal, application_id: str) -> Application:
    require(principal, Action.READ_APPLICATION)
    app, version = _load(deps, application_id)
    require(principal, Action.READ_APPLICATION, _resource(app))
    _require_acting_item(principal, app)
    return enforce_supplement_deadline(deps, app, version)


def deadlines_of(deps: ApplicationDeps, app: Application) -> list[Any]:
    result = []
    for clock_id in app.clocks.values():
        clock = deps.deadlines.clocks.get(clock_id)
        if clock is not None:
            result.append(clock)
    return result


def list_mine(deps: ApplicationDeps, principal: Principal, limit: int, start_key: Any) -> Any:
    require(principal, Action.APPLY)
    page = deps.store.by_owner(principal.user_id, limit, start_key)
    acting = principal.authorisation_id is not None
    # Filed for someone else: listed only while acting for them, within the authorised items.
    kept = [
        a
        for a in page.items
        if (a.authorisation_id is None and not acting)
        or (
            acting
            and a.subject_id == principal.subject_id
            and (principal.authorised_items is None or a.item_code in principal.authorised_items)
        )
    ]
    return type(page)(kept, page.last_key)


def list_department(
    deps: ApplicationDeps, principal: Principal, department_id: str, limit: int, start_key: Any
) -> Any:
    require(principal, Action.LIST_DEPARTMENT_APPLICATIONS, Resource(department_id=department_id))
    return deps.store.by_department(department_id, limit, start_key)
