"""The ticket limits as one stored, versioned rule set the district office reads and changes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.integration.test_tickets import ADMIN, CITIZEN, DISPATCHER, MARKET, SUPERVISOR, filed

DEFAULTS = {
    "contact_days": 1,
    "resolve_simple_days": 5,
    "resolve_complex_days": 15,
    "call_back_days": 3,
    "reopen_window_days": 15,
    "max_extension_days": 15,
}


@pytest.fixture(autouse=True)
def seeded(container):
    from local.seed_tickets import seed_routing_rules, seed_ticket_limits

    seed_routing_rules(container)
    seed_ticket_limits(container)


def _due_day(ticket: dict, kind: str) -> date:
    found = next(d for d in ticket["deadlines"] if d["kind"] == kind)
    return date.fromisoformat(found["due_at"][:10])


def test_the_seeded_defaults_are_version_1_and_staff_read_them(api):
    read = api.get("/admin/ticket-limits", user=MARKET)
    assert read.status == 200, read
    assert read.json["in_force"]["version"] == 1
    assert read.json["in_force"]["limits"] == DEFAULTS
    assert read.json["scheduled"] == []
    assert api.get("/admin/ticket-limits", user=CITIZEN).status == 403


def test_the_district_office_changes_the_limits_and_new_clocks_use_them(api, container):
    before = filed(api)  # Thursday 2026-11-26: contact due the next working day
    assert _due_day(before, "contact") == date(2026, 11, 27)
    change = {"expected_version": 1, "limits": {**DEFAULTS, "contact_days": 2}, "note": "试行"}
    for user in (DISPATCHER, MARKET):
        assert api.put("/admin/ticket-limits", change, user=user).status == 403
    published = api.put("/admin/ticket-limits", change, user=SUPERVISOR)
    assert published.status == 200, published
    assert published.json["version"] == 2
    assert published.json["effective_from"] == "2026-11-26"
    assert published.json["updated_by"] == SUPERVISOR

    after = filed(api, description="企业设立登记被退回了两次")
    assert _due_day(after, "contact") == date(2026, 11, 30)  # two working days: Monday
    unchanged = api.get(f"/tickets/{before['ticket_id']}", user=CITIZEN).json
    assert _due_day(unchanged, "contact") == date(2026, 11, 27)

    stale = api.put("/admin/ticket-limits", change, user=ADMIN)
    assert stale.status == 409 and stale.json["code"] == "limits_changed"

    from tests.integration.audit_helpers import audit_records

    record = next(
        r for r in audit_records(container, "ticket_limits") if r.action == "ticket_limits.updated"
    )
    assert record.actor_id == SUPERVISOR
    assert record.before["limits"]["contact_days"] == 1
    assert record.after["limits"]["contact_days"] == 2


def test_a_version_scheduled_ahead_governs_only_from_its_date(api, clock):
    change = {
        "expected_version": 1,
        "limits": {**DEFAULTS, "contact_days": 3},
        "effective_from": "2026-12-01",
    }
    assert api.put("/admin/ticket-limits", change, user=ADMIN).status == 200
    read = api.get("/admin/ticket-limits", user=SUPERVISOR).json
    assert read["in_force"]["version"] == 1
    assert [v["version"] for v in read["scheduled"]] == [2]
    assert _due_day(filed(api), "contact") == date(2026, 11, 27)

    clock.advance(timedelta(days=5))  # Tuesday 2026-12-01
    assert api.get("/admin/ticket-limits", user=SUPERVISOR).json["in_force"]["version"] == 2
    later = filed(api, description="企业设立登记被退回了三次")
    assert _due_day(later, "contact") == date(2026, 12, 4)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"expected_version": 1, "limits": {**DEFAULTS, "contact_days": 0}}, "validation_failed"),
        ({"expected_version": 1, "limits": {"contact_days": 1}}, "validation_failed"),
        (
            {"expected_version": 1, "limits": DEFAULTS, "effective_from": "2026-11-01"},
            "invalid_effective_from",
        ),
    ],
)
def test_invalid_limits_are_refused_and_nothing_is_stored(api, change, code):
    result = api.put("/admin/ticket-limits", change, user=ADMIN)
    assert result.status == 400 and result.json["code"] == code, result
    assert api.get("/admin/ticket-limits", user=ADMIN).json["in_force"]["version"] == 1
