"""Repair of side effects: a change stored with effects still to apply carries a sparse
"effects pending" mark (effects_index of its table), cleared by the write that finishes them.
Should the process die in between, or an effect fail, this scheduled job finds the changes
pending for longer than a grace period (one Query per table, never a Scan) and applies their
effects again; each effect is idempotent on its own business key.

Tickets keep their own record of applied effects (`effects_through`) and are not repaired here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

# Longer than any request or consumer takes to finish a change's effects, so the job never
# races a change still being applied.
GRACE = timedelta(minutes=5)
BUDGET = 100  # changes per capability and run; the rest wait for the next run


def repair_effects(c: Any) -> dict[str, list[str]]:
    """One run over every capability that records pending effects; what each one repaired."""
    from chalicelib.service_layer import policies
    from chalicelib.service_layer.applications import decisions as applications
    from chalicelib.service_layer.applications.common import ApplicationDeps
    from chalicelib.service_layer.bookings import queue as bookings
    from chalicelib.service_layer.bookings.common import BookingDeps

    before = c.clock.now() - GRACE
    return {
        "applications": applications.repair_effects(
            ApplicationDeps.from_container(c), before, BUDGET
        ),
        "policies": policies.repair_effects(policies.PolicyDeps.from_container(c), before, BUDGET),
        "bookings": bookings.repair_effects(BookingDeps.from_container(c), before, BUDGET),
    }
