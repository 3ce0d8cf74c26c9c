"""Domain rules that once let wrong data through or crashed on a real date."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from chalicelib.domain import applications as d
from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.personal_data import (
    id_number_check_char,
    is_future_birth_date,
    is_valid_id_number,
)
from chalicelib.domain.policies import publish
from chalicelib.domain.tickets.limits import DEFAULT_TICKET_LIMITS, TicketLimits
from chalicelib.domain.tickets.ticket import Complexity, TicketState
from chalicelib.domain.tickets.transitions import reopen
from tests.unit.test_policies_domain import version as policy_version
from tests.unit.test_tickets_domain import ACTORS, in_state

CALENDAR = WorkingCalendar()


def _id_number(birth: str) -> str:
    first17 = f"310118{birth}123"
    return first17 + id_number_check_char(first17)


def test_an_id_number_born_in_the_future_is_refused_as_of_today():
    future = _id_number("20900101")
    assert is_valid_id_number(future)  # shape and check digit alone cannot tell
    assert not is_valid_id_number(future, as_of=date(2026, 12, 4))
    assert is_future_birth_date(future, date(2026, 12, 4))
    assert is_valid_id_number(_id_number("19800101"), as_of=date(2026, 12, 4))


def test_an_elicence_that_takes_effect_later_is_not_valid_today():
    licence = d.ELicence("business_licence", "n", "h", "H", valid_from="2027-01-01")
    assert not licence.is_valid_on(date(2026, 12, 4))
    assert licence.is_valid_on(date(2027, 1, 1))


def test_best_licence_prefers_the_one_in_force_over_one_not_yet_in_force():
    later = d.ELicence("t", "later", "h", "H", "2027-01-01", "2032-01-01")
    now = d.ELicence("t", "now", "h", "H", "2020-01-01", "2026-12-31")
    assert d.best_licence([later, now], "t", date(2026, 12, 4)).number == "now"


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (date(2024, 2, 29), date(2029, 2, 28)),  # no 29 Feb in 2029: last day of the month
        (date(2024, 2, 28), date(2029, 2, 28)),
        (date(2023, 2, 28), date(2028, 2, 28)),
        (date(2026, 12, 4), date(2031, 12, 4)),
    ],
)
def test_a_licence_expiry_is_the_same_day_or_the_month_end(issued, expires):
    assert d.licence_expiry(issued, 5) == expires


def test_a_licence_issued_on_29_february_four_years_on_keeps_its_day():
    assert d.licence_expiry(date(2024, 2, 29), 4) == date(2028, 2, 29)


@pytest.mark.parametrize("legal_ref", ["", "   "])
def test_a_policy_does_not_publish_without_a_legal_reference(legal_ref):
    draft = policy_version(legal_ref=legal_ref)
    with pytest.raises(InvalidInput) as raised:
        publish(draft, by="u-supervisor-zhao", at=datetime(2026, 12, 4, tzinfo=CHINA_TZ))
    assert {"field": "legal_ref", "message": "请填写政策依据（文号）"} in raised.value.fields


def test_a_reopen_window_ending_on_a_friday_is_closed_on_the_saturday_after():
    replied_at = datetime(2026, 11, 27, 16, 0, tzinfo=CHINA_TZ)  # Friday
    last_day = CALENDAR.add_working_days(replied_at.date(), 15)[0]
    assert last_day == date(2026, 12, 18) and last_day.weekday() == 4
    closed = in_state(TicketState.CLOSED, last_replied_at=replied_at)
    citizen: Principal = ACTORS[Role.CITIZEN]
    friday = datetime(2026, 12, 18, 17, 0, tzinfo=CHINA_TZ)
    saturday = datetime(2026, 12, 19, 10, 0, tzinfo=CHINA_TZ)
    assert reopen(closed, citizen, friday, reason="没解决", calendar=CALENDAR).state is (
        TicketState.REOPENED
    )
    with pytest.raises(RuleViolation) as raised:
        reopen(closed, citizen, saturday, reason="没解决", calendar=CALENDAR)
    assert raised.value.code == "reopen_window_passed"


def test_window_open_on_counts_to_the_end_of_the_last_working_day():
    start = date(2026, 11, 27)
    assert CALENDAR.window_open_on(start, 15, date(2026, 12, 18))
    assert not CALENDAR.window_open_on(start, 15, date(2026, 12, 19))
    assert not CALENDAR.window_open_on(start, 15, date(2026, 12, 21))


def test_ticket_limits_are_data_with_the_1_5_15_defaults():
    limits = DEFAULT_TICKET_LIMITS
    assert (limits.contact_days, limits.resolve_simple_days, limits.resolve_complex_days) == (
        1,
        5,
        15,
    )
    assert TicketLimits.from_dict(limits.to_dict()) == limits
    stricter = TicketLimits.from_dict({**limits.to_dict(), "reopen_window_days": 5})
    assert stricter.resolve_days(Complexity.COMPLEX) == 15
    with pytest.raises(InvalidInput):
        TicketLimits.from_dict({"contact_days": 0})
    with pytest.raises(InvalidInput):
        TicketLimits.from_dict({"unknown_days": 3})


def test_a_shorter_reopen_window_from_data_is_applied():
    replied_at = datetime(2026, 11, 27, 16, 0, tzinfo=CHINA_TZ)
    closed = in_state(TicketState.CLOSED, last_replied_at=replied_at)
    five = replace(DEFAULT_TICKET_LIMITS, reopen_window_days=5)
    later = datetime(2026, 12, 7, 10, 0, tzinfo=CHINA_TZ)  # the 6th working day
    with pytest.raises(RuleViolation):
        reopen(closed, ACTORS[Role.CITIZEN], later, reason="没解决", calendar=CALENDAR, limits=five)
    assert reopen(closed, ACTORS[Role.CITIZEN], later, reason="没解决", calendar=CALENDAR)
