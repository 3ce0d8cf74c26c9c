"""Window handling time (call → served) against its target per item, on moto behind HTTP: each
service is a fact of the month's operations report, and a rolling average over the item's
target alerts the centre's manager once an hour, as the wait alarms do."""

from __future__ import annotations

import pytest

from tests.integration.test_bookings import DISTRICT, Booker, t

ITEM = "QP-GA-601"


@pytest.fixture
def booker(api, container, clock) -> Booker:
    from local.seed_bookings import seed_bookings

    seed_bookings(container)
    return Booker(api, container, clock)


def _check_in_both(booker: Booker) -> tuple[str, str]:
    zhang = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    li = booker.book("u-citizen-li", "09:00").json["booking_id"]
    booker.clock.set(t(2026, 11, 27, 8, 50))
    for booking in (zhang, li):
        assert (
            booker.api.post(f"/bookings/{booking}/check-in", {}, user="u-window-wang").status == 200
        )
    return zhang, li


def test_handling_over_the_items_target_alerts_the_manager_once_an_hour(booker):
    rules = booker.api.put("/booking-rules", {"handling_item_targets": {ITEM: 30}}, user="u-admin")
    assert rules.status == 200 and rules.json["handling_item_targets"] == {ITEM: 30}
    assert rules.json["handling_target_minutes"] == 20
    zhang, li = _check_in_both(booker)
    prefix = f"center:{DISTRICT}:handling:{ITEM}:"

    booker.clock.set(t(2026, 11, 27, 9, 0))
    assert (
        booker.api.post(f"/centres/{DISTRICT}/queue/next", user="u-window-wang").json["booking_id"]
        == li
    )
    booker.clock.set(t(2026, 11, 27, 9, 25))  # 25 minutes: over 20, within the item's 30
    assert booker.api.post(f"/bookings/{li}/serve", user="u-window-wang").status == 200
    assert booker.notifier.keys(prefix) == []

    assert (
        booker.api.post(f"/centres/{DISTRICT}/queue/next", user="u-window-wang").json["booking_id"]
        == zhang
    )
    booker.clock.set(t(2026, 11, 27, 10, 5))  # 40 minutes; Li's call has left the hour window
    assert booker.api.post(f"/bookings/{zhang}/serve", user="u-window-wang").status == 200
    key = prefix + "2026-11-27T10"
    assert booker.notifier.keys(prefix) == [key]
    alert = booker.notifier.last(key)
    assert alert.recipient_id == "u-manager-district"
    assert alert.data["average_handling_minutes"] == 40.0 and alert.data["target_minutes"] == 30

    facts = {
        f["booking_id"]: f for f in booker.container.operations_store.facts("2026-11", "handling")
    }
    assert {b: (f["handling_seconds"], f["target_minutes"]) for b, f in facts.items()} == {
        li: (25 * 60, 30),
        zhang: (40 * 60, 30),
    }
    assert facts[li]["wait_seconds"] == 0 and facts[zhang]["wait_seconds"] == 25 * 60


def test_a_handling_target_out_of_range_is_refused(booker):
    result = booker.api.put("/booking-rules", {"handling_item_targets": {ITEM: 0}}, user="u-admin")
    assert result.status == 400 and result.json["code"] == "invalid_rules"
