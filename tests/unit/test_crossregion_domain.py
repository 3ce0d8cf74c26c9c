"""跨省通办 legs: each callback event kept once, a late step never moves a decided leg back."""

from __future__ import annotations

import pytest

from chalicelib.domain.crossregion import OUTBOUND, new_leg, record_event, require_region
from chalicelib.domain.errors import InvalidInput


def test_each_event_is_kept_once_and_a_decided_leg_stays_decided():
    leg = new_leg(OUTBOUND, "wujiang", "2026-12-04T10:00:00+08:00")
    assert leg["state"] == "forwarding"
    assert record_event(leg, "received", "t1")
    assert not record_event(leg, "received", "t2")
    assert record_event(leg, "approved", "t3") and leg["state"] == "approved"
    assert record_event(leg, "accepted", "t4"), "a late step is kept"
    assert leg["state"] == "approved", "but does not move the leg back"
    assert [e["event"] for e in leg["events"]] == ["received", "approved", "accepted"]


def test_only_partner_regions_are_known():
    assert require_region("jiashan") == "jiashan"
    for region in ("qingpu", "nowhere"):
        with pytest.raises(InvalidInput):
            require_region(region)
