"""The working-day calendar: the 2026 official schedule, provisional years, and property tests
against a day-by-day reference."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.calendar import (
    CHINA_TZ,
    DayEnd,
    ScheduleSource,
    ServiceHours,
    WorkingCalendar,
    YearSchedule,
    deadline_at,
    package_schedule,
    validate_year_schedule,
)
from chalicelib.domain.errors import InvalidInput

D = date


# ---- a day-by-day reference ---------------------------------------------------------------


def ref_is_working(calendar: WorkingCalendar, day: date) -> bool:
    schedule = calendar.schedule(day.year)
    if day in schedule.makeup_workdays:
        return True
    return day.weekday() < 5 and day not in schedule.holidays


def ref_add(calendar: WorkingCalendar, start: date, n: int) -> date:
    day = start
    if n == 0:
        while not ref_is_working(calendar, day):
            day += timedelta(days=1)
        return day
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        counted += ref_is_working(calendar, day)
    return day


def ref_between(calendar: WorkingCalendar, start: date, end: date) -> int:
    sign = 1
    if end < start:
        start, end, sign = end, start, -1
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += ref_is_working(calendar, day)
    return sign * count


# ---- the 2026 official schedule (State Council notice of 2025-11-04) ----------------------

MAKEUP_2026 = {D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20)}
MAKEUP_2026 |= {D(2026, 10, 10)}


def test_2026_make_up_days_are_the_official_ones():
    schedule = WorkingCalendar().schedule(2026)
    assert schedule.makeup_workdays == MAKEUP_2026
    assert schedule.official and schedule.source is ScheduleSource.PACKAGE


@pytest.mark.parametrize(
    "start,days,due",
    [
        (D(2026, 9, 28), 5, D(2026, 10, 10)),  # the make-up Saturday (DOMAIN.md example)
        (D(2026, 2, 14), 1, D(2026, 2, 24)),  # over the Spring Festival
        (D(2026, 9, 30), 1, D(2026, 10, 8)),  # over National Day
        (D(2026, 10, 9), 1, D(2026, 10, 10)),
        (D(2026, 4, 30), 1, D(2026, 5, 6)),  # Labour Day, with 5/9 a working Saturday
        (D(2026, 5, 8), 1, D(2026, 5, 9)),
    ],
)
def test_2026_due_dates(start, days, due):
    assert WorkingCalendar().add_working_days(start, days) == (due, False)


def test_start_day_is_not_counted():
    calendar = WorkingCalendar()
    # Monday + 1 working day is Tuesday, not Monday.
    assert calendar.add_working_days(D(2026, 3, 2), 1)[0] == D(2026, 3, 3)


def test_zero_days_is_the_start_day_or_the_next_working_day():
    calendar = WorkingCalendar()
    assert calendar.add_working_days(D(2026, 3, 2), 0)[0] == D(2026, 3, 2)
    assert calendar.add_working_days(D(2026, 10, 1), 0)[0] == D(2026, 10, 8)


def test_make_up_saturday_and_holiday_weekday():
    calendar = WorkingCalendar()
    assert calendar.is_working_day(D(2026, 10, 10))  # Saturday, make-up
    assert not calendar.is_working_day(D(2026, 10, 7))  # Wednesday, holiday
    assert not calendar.is_working_day(D(2026, 10, 11))  # ordinary Sunday


def test_working_days_between_counts_after_start_through_end():
    calendar = WorkingCalendar()
    assert calendar.working_days_between(D(2026, 9, 28), D(2026, 10, 10)) == 5
    assert calendar.working_days_between(D(2026, 10, 10), D(2026, 9, 28)) == -5
    assert calendar.working_days_between(D(2026, 3, 2), D(2026, 3, 2)) == 0


# ---- provisional years ----------------------------------------------------------------------


def test_2027_is_provisional_until_its_official_schedule_is_loaded():
    assert WorkingCalendar().add_working_days(D(2027, 3, 1), 5)[1] is True
    official = YearSchedule(2027, frozenset({D(2027, 1, 1)}), frozenset(), ScheduleSource.OFFICIAL)
    assert WorkingCalendar({2027: official}).add_working_days(D(2027, 3, 1), 5)[1] is False


def test_a_deadline_reaching_into_an_estimated_year_is_provisional():
    due, provisional = WorkingCalendar().add_working_days(D(2026, 12, 28), 5)
    assert due.year == 2027 and provisional


def test_official_schedule_overrides_the_package():
    # A hypothetical 2027 notice making Monday 2027-03-01 a day off.
    official = YearSchedule(
        2027, frozenset({D(2027, 3, 1)}), frozenset({D(2027, 3, 6)}), ScheduleSource.OFFICIAL
    )
    calendar = WorkingCalendar({2027: official})
    assert not calendar.is_working_day(D(2027, 3, 1))
    assert calendar.is_working_day(D(2027, 3, 6))
    # The package's estimate is not used at all for an official year.
    assert calendar.is_working_day(D(2027, 2, 8))


@pytest.mark.parametrize("year", [2031, 2100, 2199, 1951])
def test_years_without_data_never_crash(year):
    calendar = WorkingCalendar()
    due, provisional = calendar.add_working_days(D(year, 6, 1), 20)
    assert due > D(year, 6, 1)
    assert calendar.working_days_between(D(year, 1, 1), D(year, 12, 31)) > 200
    if year > 2026:
        assert provisional


def test_a_year_the_package_cannot_build_is_weekends_only():
    schedule = package_schedule(2200)
    assert schedule.source is ScheduleSource.ESTIMATE
    assert not schedule.holidays and not schedule.makeup_workdays


def test_dates_beyond_the_representable_range_are_invalid_input():
    with pytest.raises(InvalidInput) as error:
        WorkingCalendar().add_working_days(D(9999, 12, 30), 5)
    assert error.value.code == "date_out_of_range"


def test_negative_working_days_are_refused():
    with pytest.raises(InvalidInput):
        WorkingCalendar().add_working_days(D(2026, 1, 5), -1)


# ---- validation of an official schedule -----------------------------------------------------


def test_validation_refuses_dates_outside_the_year_overlap_and_weekday_make_up_days():
    with pytest.raises(InvalidInput) as error:
        validate_year_schedule(
            2027,
            [D(2027, 1, 1), D(2026, 12, 31), D(2027, 2, 6)],
            [D(2027, 2, 6), D(2027, 2, 8)],
        )
    types = sorted(f["type"] for f in error.value.fields)
    assert types == ["not_weekend", "overlap", "year"]
    assert error.value.code == "invalid_calendar"


def test_validation_accepts_a_plausible_schedule():
    off, on = validate_year_schedule(2027, [D(2027, 1, 1), D(2027, 1, 1)], [D(2027, 2, 20)])
    assert off == {D(2027, 1, 1)} and on == {D(2027, 2, 20)}


# ---- deadline instants and service hours ----------------------------------------------------


def test_deadline_is_the_end_of_the_day_or_the_close_of_service():
    hours = ServiceHours(time(9), time(17))
    assert deadline_at(D(2026, 10, 10), DayEnd.END_OF_DAY, hours) == datetime(
        2026, 10, 10, 23, 59, 59, tzinfo=CHINA_TZ
    )
    assert deadline_at(D(2026, 10, 10), DayEnd.CLOSE_OF_SERVICE, hours) == datetime(
        2026, 10, 10, 17, 0, tzinfo=CHINA_TZ
    )


def test_a_ticket_filed_at_1755_on_friday_starts_on_the_next_working_day():
    calendar = WorkingCalendar()
    filed = datetime(2026, 11, 27, 17, 55, tzinfo=CHINA_TZ)  # Friday
    due, provisional = calendar.add_service_time(filed, timedelta(hours=2), ServiceHours())
    assert due == datetime(2026, 11, 30, 11, 0, tzinfo=CHINA_TZ)
    assert not provisional


def test_service_time_skips_holidays():
    calendar = WorkingCalendar()
    start = datetime(2026, 9, 30, 16, 0, tzinfo=CHINA_TZ)
    due, _ = calendar.add_service_time(start, timedelta(hours=3), ServiceHours())
    assert due == datetime(2026, 10, 8, 11, 0, tzinfo=CHINA_TZ)
    assert calendar.service_time_between(start, due, ServiceHours()) == timedelta(hours=3)


# ---- properties: the fast calendar equals the day-by-day reference --------------------------

days_in_range = st.dates(min_value=D(2024, 1, 1), max_value=D(2029, 12, 31))


@st.composite
def schedules(draw) -> dict[int, YearSchedule]:
    """Random official schedules for some years; other years fall back to the package."""
    loaded = {}
    for year in draw(st.sets(st.integers(2025, 2029), max_size=3)):
        year_days = st.dates(min_value=D(year, 1, 1), max_value=D(year, 12, 31))
        off = draw(st.frozensets(year_days, max_size=25))
        on = draw(st.frozensets(year_days.filter(lambda d: d.weekday() >= 5), max_size=8))
        loaded[year] = YearSchedule(year, off, on - off, ScheduleSource.OFFICIAL)
    return loaded


@settings(max_examples=200, deadline=None)
@given(loaded=schedules(), start=days_in_range, n=st.integers(0, 120))
def test_add_working_days_matches_reference(loaded, start, n):
    calendar = WorkingCalendar(loaded)
    due, _ = calendar.add_working_days(start, n)
    assert due == ref_add(calendar, start, n)
    assert calendar.is_working_day(due)
    if n:
        assert calendar.working_days_between(start, due) == n


@settings(max_examples=200, deadline=None)
@given(loaded=schedules(), start=days_in_range, end=days_in_range)
def test_working_days_between_matches_reference(loaded, start, end):
    calendar = WorkingCalendar(loaded)
    assert calendar.working_days_between(start, end) == ref_between(calendar, start, end)


@settings(max_examples=200, deadline=None)
@given(loaded=schedules(), day=days_in_range)
def test_is_working_day_matches_reference(loaded, day):
    calendar = WorkingCalendar(loaded)
    assert calendar.is_working_day(day) == ref_is_working(calendar, day)


@settings(max_examples=100, deadline=None)
@given(start=days_in_range, n=st.integers(1, 60))
def test_provisional_exactly_when_an_estimated_year_is_crossed(start, n):
    calendar = WorkingCalendar()
    due, provisional = calendar.add_working_days(start, n)
    first = start + timedelta(days=1)
    assert provisional == any(
        not calendar.schedule(y).official for y in range(first.year, due.year + 1)
    )


@settings(max_examples=100, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)),
    minutes=st.integers(0, 60 * 40),
)
def test_service_time_round_trips(start, minutes):
    calendar = WorkingCalendar()
    begin = start.replace(tzinfo=CHINA_TZ)
    due, _ = calendar.add_service_time(begin, timedelta(minutes=minutes), ServiceHours())
    assert calendar.service_time_between(begin, due, ServiceHours()) == timedelta(minutes=minutes)
