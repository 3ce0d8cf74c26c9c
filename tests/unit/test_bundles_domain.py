"""一件事 as data: order, cycles, members blocked by an unapproved need, the slowest chain."""

from __future__ import annotations

import pytest

from chalicelib.domain.applications import ItemKind, ServiceItem, State
from chalicelib.domain.bundles import (
    Bundle,
    BundleMember,
    blocked,
    finished,
    order,
    promised_days,
    startable,
    validate_bundle,
)
from chalicelib.domain.errors import InvalidInput


def item(code: str, days: int, kind: str = "person") -> ServiceItem:
    return ServiceItem(code, code, "dept", ItemKind.PROMISED, days * 2, days, kind)


ITEMS = {"A": item("A", 3), "B": item("B", 5), "C": item("C", 10), "D": item("D", 1)}
BUNDLE = Bundle(
    "b",
    "b",
    "",
    "person",
    (
        BundleMember("C", ("B",)),
        BundleMember("A"),
        BundleMember("B", ("A",)),
        BundleMember("D", ("A",)),
    ),
)


def test_order_puts_every_member_after_what_it_needs():
    placed = order(BUNDLE)
    assert placed.index("A") < placed.index("B") < placed.index("C")
    assert placed.index("A") < placed.index("D")


def test_a_cycle_or_an_unknown_need_is_refused():
    cycle = Bundle("x", "x", "", "person", (BundleMember("A", ("B",)), BundleMember("B", ("A",))))
    with pytest.raises(InvalidInput):
        validate_bundle(cycle, ITEMS)
    unknown = Bundle("x", "x", "", "person", (BundleMember("A", ("Z",)), BundleMember("B")))
    with pytest.raises(InvalidInput):
        validate_bundle(unknown, ITEMS)
    mixed = Bundle("x", "x", "", "person", (BundleMember("A"), BundleMember("E")))
    with pytest.raises(InvalidInput):
        validate_bundle(mixed, {**ITEMS, "E": item("E", 1, "enterprise")})
    assert validate_bundle(BUNDLE, ITEMS) is BUNDLE


def test_the_promised_time_of_the_whole_is_the_slowest_chain():
    assert promised_days(BUNDLE, ITEMS) == 3 + 5 + 10


def test_members_start_when_their_needs_are_approved():
    assert startable(BUNDLE, set(), {}) == ["A"]
    assert startable(BUNDLE, {"A"}, {"A": State.ACCEPTED}) == []
    assert sorted(startable(BUNDLE, {"A"}, {"A": State.APPROVED})) == ["B", "D"]


def test_a_rejected_need_blocks_its_dependants_and_the_whole_can_finish():
    states = {"A": State.APPROVED, "B": State.REJECTED, "D": State.APPROVED}
    assert blocked(BUNDLE, states) == {"C"}
    assert finished(BUNDLE, states)
    assert not finished(BUNDLE, {"A": State.APPROVED, "B": State.ACCEPTED, "D": State.APPROVED})
