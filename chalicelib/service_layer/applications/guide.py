"""The service guide: listing, reading and publishing items."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import ServiceItem
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.applications.common import _SAVE_ATTEMPTS, ApplicationDeps, _audit
from chalicelib.service_layer.authorization import Action, require


def list_items(deps: ApplicationDeps, limit: int, start_key: dict[str, Any] | None) -> Any:
    return deps.store.list_items(limit, start_key)


def get_item(deps: ApplicationDeps, code: str) -> ServiceItem:
    item = deps.store.latest_item(code)
    if item is None:
        raise NotFound("办事事项不存在", code="item_not_found")
    return item


def publish_item(deps: ApplicationDeps, principal: Principal, item: ServiceItem) -> ServiceItem:
    """A new version of the item; applications keep the version they were filed under."""
    require(principal, Action.MANAGE_ITEMS)
    for _ in range(_SAVE_ATTEMPTS):
        current = deps.store.latest_item(item.code)
        versioned = domain.validate_item(
            replace(item, version=(current.version + 1) if current else 1)
        )
        if deps.store.put_item_version(versioned):
            _audit(
                deps,
                principal,
                "application_item.published",
                "service_item",
                item.code,
                {"version": current.version} if current else None,
                {"version": versioned.version, "name": versioned.name},
            )
            return versioned
    raise Conflict("事项版本冲突，请重试", code="item_version_conflict")
