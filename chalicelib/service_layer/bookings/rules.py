"""Reading and changing the booking rules."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.bookings.common import BookingDeps, _audit


def read_rules(deps: BookingDeps) -> tuple[BookingRules, int | None]:
    return deps.store.get_rules()


def update_rules(deps: BookingDeps, principal: Principal, changes: dict[str, Any]) -> BookingRules:
    require(principal, Action.MANAGE_BOOKING_RULES)
    rules, version = deps.store.get_rules(fresh=True)
    updated = rules.changed(changes)
    deps.store.put_rules(updated, principal.user_id, deps.clock.now(), version)
    _audit(
        deps,
        principal,
        "booking.rules_changed",
        "booking_rules",
        "booking-rules",
        rules.to_dict(),
        updated.to_dict(),
    )
    return updated
