"""The ticket limits are one stored rule set: every rule takes them from the version in force."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from chalicelib.domain import tickets as t
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Role
from tests.unit.test_tickets_domain import ACTORS, NOW, RULES, in_state, intake

STRICT = t.TicketLimits(
    contact_days=2,
    resolve_simple_days=4,
    resolve_complex_days=12,
    call_back_days=1,
    reopen_window_days=10,
    max_extension_days=5,
)


def _starts(ticket: t.Ticket) -> dict[str, int]:
    return {op.kind: op.limit for op in ticket.timeline[-1].effects.clocks if op.op == "start"}


def test_intake_routing_starts_clocks_with_the_limits_given():
    ticket = t.file(intake(), ACTORS[Role.CITIZEN], NOW, rules=RULES, limits=STRICT)
    assert ticket.state is t.TicketState.DISPATCHED
    assert _starts(ticket) == {"contact": 2, "resolve": 4}


def test_transfer_reply_complexity_and_call_back_read_the_limits():
    accepted = in_state(t.TicketState.ACCEPTED)
    dispatcher = ACTORS[Role.DISPATCHER]
    moved = t.transfer(
        accepted,
        dispatcher,
        NOW,
        department_id="dept-b",
        department_name="B",
        reason="非本部门事项",
        limits=STRICT,
    )
    assert _starts(moved) == {"contact": 2, "resolve": 4}
    complex_ = t.set_complexity(
        accepted, dispatcher, NOW, complexity=t.Complexity.COMPLEX, reason="跨部门", limits=STRICT
    )
    assert _starts(complex_) == {"resolve": 12}
    replied = t.reply(
        accepted,
        ACTORS[Role.DEPARTMENT_STAFF],
        NOW,
        answer="已办结",
        evidence=("e/1.pdf",),
        limits=STRICT,
    )
    assert _starts(replied) == {"call_back": 1}
    unsatisfied = t.call_back(
        in_state(t.TicketState.REPLIED),
        ACTORS[Role.SUPERVISOR],
        NOW,
        satisfied=False,
        note="仍未解决",
        limits=STRICT,
    )
    assert _starts(unsatisfied) == {"contact": 2, "resolve": 4}


def test_the_longest_extension_comes_from_the_limits():
    complex_ticket = replace(in_state(t.TicketState.ACCEPTED), complexity=t.Complexity.COMPLEX)
    staff = ACTORS[Role.DEPARTMENT_STAFF]
    with pytest.raises(InvalidInput) as refused:
        t.request_extension(complex_ticket, staff, NOW, days=6, reason="需现场核查", limits=STRICT)
    assert "1到5个工作日" in refused.value.message
    assert t.request_extension(complex_ticket, staff, NOW, days=6, reason="需现场核查")


def _version(n: int, day: date | None, limits: t.TicketLimits = STRICT) -> t.TicketLimitsVersion:
    return t.TicketLimitsVersion(version=n, limits=limits, effective_from=day)


def test_the_version_in_force_is_the_newest_already_effective():
    v1 = _version(1, date.min, t.DEFAULT_TICKET_LIMITS)
    v2 = _version(2, date(2026, 12, 1))
    v3 = _version(3, date(2027, 1, 1), replace(STRICT, contact_days=3))
    versions = [v3, v2, v1]
    assert t.limits_in_force(versions, date(2026, 11, 30)) == v1
    assert t.limits_in_force(versions, date(2026, 12, 1)) == v2
    assert t.limits_in_force(versions, date(2027, 1, 1)).limits.contact_days == 3
    assert t.limits_in_force([], date(2026, 12, 1)).limits == t.DEFAULT_TICKET_LIMITS


def test_a_new_version_cannot_take_effect_in_the_past_or_before_the_last_one():
    now = datetime(2026, 12, 4, 10, 0, tzinfo=CHINA_TZ)
    latest = _version(4, date(2026, 12, 20))
    new = t.next_limits_version(latest, STRICT, effective_from=date(2026, 12, 21), by="u", now=now)
    assert (new.version, new.effective_from, new.updated_by) == (5, date(2026, 12, 21), "u")
    for day in (date(2026, 12, 3), date(2026, 12, 19)):
        with pytest.raises(InvalidInput) as refused:
            t.next_limits_version(latest, STRICT, effective_from=day, by="u", now=now)
        assert refused.value.code == "invalid_effective_from"
