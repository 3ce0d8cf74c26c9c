"""The ticket limits are one stored rule set: every rule takes them from the version in force."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Role
from chalicelib.domain.tickets.intake import file
from chalicelib.domain.tickets.limits import (
    DEFAULT_TICKET_LIMITS,
    TicketLimits,
    TicketLimitsVersion,
    limits_in_force,
    next_limits_version,
)
from chalicelib.domain.tickets.ticket import Complexity, Ticket, TicketState
from chalicelib.domain.tickets.transitions import (
    call_back,
    reply,
    request_extension,
    set_complexity,
    transfer,
)
from tests.unit.test_tickets_domain import ACTORS, NOW, RULES, in_state, intake

STRICT = TicketLimits(
    contact_days=2,
    resolve_simple_days=4,
    resolve_complex_days=12,
    call_back_days=1,
    reopen_window_days=10,
    max_extension_days=5,
)


def _starts(ticket: Ticket) -> dict[str, int]:
    return {op.kind: op.limit for op in ticket.timeline[-1].effects.clocks if op.op == "start"}


def test_intake_routing_starts_clocks_with_the_limits_given():
    ticket = file(intake(), ACTORS[Role.CITIZEN], NOW, rules=RULES, limits=STRICT)
    assert ticket.state is TicketState.DISPATCHED
    assert _starts(ticket) == {"contact": 2, "resolve": 4}


def test_transfer_reply_complexity_and_call_back_read_the_limits():
    accepted = in_state(TicketState.ACCEPTED)
    dispatcher = ACTORS[Role.DISPATCHER]
    moved = transfer(
        accepted,
        dispatcher,
        NOW,
        department_id="dept-b",
        department_name="B",
        reason="非本部门事项",
        limits=STRICT,
    )
    assert _starts(moved) == {"contact": 2, "resolve": 4}
    complex_ = set_complexity(
        accepted, dispatcher, NOW, complexity=Complexity.COMPLEX, reason="跨部门", limits=STRICT
    )
    assert _starts(complex_) == {"resolve": 12}
    replied = reply(
        accepted,
        ACTORS[Role.DEPARTMENT_STAFF],
        NOW,
        answer="已办结",
        evidence=("e/1.pdf",),
        limits=STRICT,
    )
    assert _starts(replied) == {"call_back": 1}
    unsatisfied = call_back(
        in_state(TicketState.REPLIED),
        ACTORS[Role.SUPERVISOR],
        NOW,
        satisfied=False,
        note="仍未解决",
        limits=STRICT,
    )
    assert _starts(unsatisfied) == {"contact": 2, "resolve": 4}


def test_the_longest_extension_comes_from_the_limits():
    complex_ticket = replace(in_state(TicketState.ACCEPTED), complexity=Complexity.COMPLEX)
    staff = ACTORS[Role.DEPARTMENT_STAFF]
    with pytest.raises(InvalidInput) as refused:
        request_extension(complex_ticket, staff, NOW, days=6, reason="需现场核查", limits=STRICT)
    assert "1到5个工作日" in refused.value.message
    assert request_extension(complex_ticket, staff, NOW, days=6, reason="需现场核查")


def _version(n: int, day: date | None, limits: TicketLimits = STRICT) -> TicketLimitsVersion:
    return TicketLimitsVersion(version=n, limits=limits, effective_from=day)


def test_the_version_in_force_is_the_newest_already_effective():
    v1 = _version(1, date.min, DEFAULT_TICKET_LIMITS)
    v2 = _version(2, date(2026, 12, 1))
    v3 = _version(3, date(2027, 1, 1), replace(STRICT, contact_days=3))
    versions = [v3, v2, v1]
    assert limits_in_force(versions, date(2026, 11, 30)) == v1
    assert limits_in_force(versions, date(2026, 12, 1)) == v2
    assert limits_in_force(versions, date(2027, 1, 1)).limits.contact_days == 3
    assert limits_in_force([], date(2026, 12, 1)).limits == DEFAULT_TICKET_LIMITS


def test_a_new_version_cannot_take_effect_in_the_past_or_before_the_last_one():
    now = datetime(2026, 12, 4, 10, 0, tzinfo=CHINA_TZ)
    latest = _version(4, date(2026, 12, 20))
    new = next_limits_version(latest, STRICT, effective_from=date(2026, 12, 21), by="u", now=now)
    assert (new.version, new.effective_from, new.updated_by) == (5, date(2026, 12, 21), "u")
    for day in (date(2026, 12, 3), date(2026, 12, 19)):
        with pytest.raises(InvalidInput) as refused:
            next_limits_version(latest, STRICT, effective_from=day, by="u", now=now)
        assert refused.value.code == "invalid_effective_from"
