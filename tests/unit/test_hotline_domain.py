"""The 12345 and operations-report rules as pure functions: orders, transfers and their answer
rate, help resolution per team, a figure's target met, help outcomes and handling targets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chalicelib.domain import hotline as h
from chalicelib.domain import operations as o
from chalicelib.domain.bookings.centres import Complexity
from chalicelib.domain.bookings.live_help import HelpOutcome, HelpRequest, HelpStatus, end_help
from chalicelib.domain.bookings.queue import WaitSample, average_handling_minutes
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, RuleViolation

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)


def _transfer(n: int, department: str, answered: bool) -> h.Transfer:
    return h.Transfer(
        f"tr-{n:04d}",
        department,
        NOW,
        h.TransferOutcome.ANSWERED if answered else h.TransferOutcome.MISSED,
        NOW + timedelta(seconds=10) if answered else None,
    )


def test_answer_rates_per_department_and_overall():
    transfers = [_transfer(n, "d1", n < 9) for n in range(10)] + [_transfer(10, "d2", False)]
    total, rows = h.answer_rates(transfers)
    assert [(r.department_id, r.offered, r.answered, r.missed) for r in rows] == [
        ("d1", 10, 9, 1),
        ("d2", 1, 0, 1),
    ]
    assert rows[0].rate == 0.9 and rows[0].met is True
    assert rows[1].met is False
    assert (total.offered, total.answered, total.rate) == (11, 9, round(9 / 11, 4))
    assert h.answer_rates([])[0].met is None


def test_an_answered_transfer_needs_its_answer_time_after_the_offer():
    with pytest.raises(InvalidInput):
        h.Transfer("tr-0001", "d1", NOW, h.TransferOutcome.ANSWERED)
    with pytest.raises(InvalidInput):
        h.Transfer("tr-0001", "d1", NOW, h.TransferOutcome.ANSWERED, NOW - timedelta(seconds=1))
    transfer = _transfer(1, "d1", True)
    assert h.Transfer.from_dict(transfer.to_dict()) == transfer


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"order_no": "x"}, "invalid_order_no"),
        ({"contact_days": 0}, "invalid_order_deadline"),
        ({"contact_days": 6, "resolve_days": 5}, "invalid_order_deadline"),
    ],
)
def test_a_work_order_is_checked(changes, code):
    base = {
        "order_no": "12345-0001",
        "received_at": NOW,
        "description": "来电反映",
        "caller_name": "周",
        "caller_mobile": "13611112222",
    }
    with pytest.raises(InvalidInput) as error:
        h.WorkOrder(**(base | changes))
    assert error.value.code == code
    assert h.WorkOrder(**base).subject_id == "12345-12345-0001"


def test_help_resolution_leaves_abandoned_requests_out():
    facts = [
        {"team": "t1", "outcome": "resolved"},
        {"team": "t1", "outcome": "not_resolved"},
        {"team": "t1", "outcome": "abandoned"},
        {"team": "t2", "outcome": None},
    ]
    assert o.help_resolution(facts) == {"t1": (1, 2)}


def test_a_rate_is_met_at_or_above_its_target_and_a_duration_at_or_below():
    assert o.Figure("r", "率", 0.9, 0.9, o.RATIO).met is True
    assert o.Figure("r", "率", 0.89, 0.9, o.RATIO).met is False
    assert o.Figure("m", "时长", 20.0, 20, o.MINUTES).met is True
    assert o.Figure("m", "时长", 20.1, 20, o.MINUTES).met is False
    assert o.Figure("m", "时长", None, 20, o.MINUTES).met is None


def _request(status: HelpStatus) -> HelpRequest:
    return HelpRequest("h1", "u1", "社保怎么办", None, status, NOW)


def test_help_outcomes():
    waiting, picked = _request(HelpStatus.WAITING), _request(HelpStatus.PICKED_UP)
    with pytest.raises(RuleViolation):
        end_help(waiting, HelpOutcome.RESOLVED, NOW, "agent")
    with pytest.raises(InvalidInput):
        end_help(picked, HelpOutcome.NOT_RESOLVED, NOW, "agent", "  ")
    ended = end_help(picked, HelpOutcome.NOT_RESOLVED, NOW, "agent", " 需原件 ")
    assert (ended.status, ended.outcome_reason) == (HelpStatus.NOT_RESOLVED, "需原件")
    assert end_help(waiting, HelpOutcome.ABANDONED, NOW, "u1").status is HelpStatus.ABANDONED
    with pytest.raises(RuleViolation):
        end_help(ended, HelpOutcome.ABANDONED, NOW, "u1")


def test_handling_targets_per_item_and_the_rolling_average():
    rules = BookingRules().changed({"handling_item_targets": {"QP-1": 30}})
    assert (rules.handling_target("QP-1"), rules.handling_target("QP-2")) == (30, 20)
    assert BookingRules.from_dict(rules.to_dict()) == rules
    with pytest.raises(InvalidInput):
        BookingRules().changed({"handling_item_targets": {"QP-1": 0}})
    samples = [
        WaitSample("b1", Complexity.SIMPLE, NOW - timedelta(minutes=90), 0, "s", 3000, "QP-1"),
        WaitSample("b2", Complexity.SIMPLE, NOW - timedelta(minutes=30), 0, "s", 1800, "QP-1"),
        WaitSample("b3", Complexity.SIMPLE, NOW - timedelta(minutes=20), 0, "s", 600, "QP-2"),
    ]
    assert average_handling_minutes(samples, "QP-1", NOW, rules) == 30.0
