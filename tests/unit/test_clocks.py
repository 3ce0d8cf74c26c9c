"""Clocks: due times, pauses, extensions, hour limits, the ladder's step times and states."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from chalicelib.domain import clocks as c
from chalicelib.domain.calendar import CHINA_TZ, DayEnd, WorkingCalendar
from chalicelib.domain.clocks import ClockState, LimitUnit, Outcome
from chalicelib.domain.errors import InvalidInput, RuleViolation

CAL = WorkingCalendar()


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


def make(
    limit: int = 5,
    start: datetime | None = None,
    unit: LimitUnit = LimitUnit.WORKING_DAYS,
    kind: str = "reply",
    day_end: DayEnd | None = None,
    **kw,
) -> c.Clock:
    clock = c.new_clock(
        clock_id="c1",
        subject_type="ticket",
        subject_id="T-1",
        kind=kind,
        limit=limit,
        unit=unit,
        started_at=start or t(2026, 9, 28, 10, 0),
        policy=c.policy_for(kind),
        day_end=day_end,
        department_id=kw.pop("department_id", "dept-scjgj"),
        **kw,
    )
    return c.refresh(clock, CAL, clock.started_at)


def test_due_is_end_of_the_last_working_day():
    clock = make()
    assert clock.due_date == date(2026, 10, 10)
    assert clock.due_at == t(2026, 10, 10, 23, 59, 59)
    assert not clock.provisional
    assert clock.state is ClockState.RUNNING


def test_close_of_service_deadline_per_clock():
    clock = make(day_end=DayEnd.CLOSE_OF_SERVICE)
    assert clock.due_at == t(2026, 10, 10, 17, 0)


def test_deadline_in_an_estimated_year_is_provisional():
    clock = make(limit=15, start=t(2026, 12, 28, 9, 0))
    assert clock.due_date.year == 2027
    assert clock.provisional


def test_default_ladder_step_times():
    clock = make()  # 5 working days from Mon 2026-09-28: due Sat 10-10 (make-up day)
    plan = c.schedule_for(clock, CAL)
    # 80% of 5 days = 4 days used: the end of the 4th working day (10-09).
    assert plan.step_times["warning"] == t(2026, 10, 9, 23, 59, 59)
    assert plan.step_times["urge"] == plan.due_at
    # Overdue by 1 working day: the end of Mon 10-12; by 5: the end of Fri 10-16.
    assert plan.step_times["supervise"] == t(2026, 10, 12, 23, 59, 59)
    assert plan.step_times["report"] == t(2026, 10, 16, 23, 59, 59)


def test_warning_for_a_one_day_limit_falls_within_the_day():
    clock = make(limit=1, start=t(2026, 11, 26, 10, 0))  # Thursday
    plan = c.schedule_for(clock, CAL)
    # 0.8 of Friday's day.
    assert plan.step_times["warning"].date() == date(2026, 11, 27)
    assert plan.step_times["warning"] < plan.due_at


def test_next_attention_is_the_earliest_pending_step():
    clock = make()
    assert clock.next_attention_at == t(2026, 10, 9, 23, 59, 59)
    after_warning = c.mark_steps_done(clock, {"warning"}, CAL, t(2026, 10, 10, 0, 0))
    assert after_warning.next_attention_at == after_warning.due_at


def test_steps_due_and_breach_after_the_deadline():
    clock = make()
    now = t(2026, 10, 13, 9, 0)  # past due and past "overdue by 1 working day"
    assert [s.name for s in c.steps_due(clock, CAL, now)] == ["warning", "urge", "supervise"]
    done = c.mark_steps_done(clock, {"warning", "urge", "supervise"}, CAL, now)
    assert done.state is ClockState.BREACHED
    assert done.is_open
    assert done.next_attention_at == t(2026, 10, 16, 23, 59, 59)
    assert c.overdue_working_days(done, CAL, now) == 1


def test_after_the_last_step_the_clock_needs_no_attention():
    clock = make()
    now = t(2026, 10, 20, 9, 0)
    names = {s.name for s in c.steps_due(clock, CAL, now)}
    done = c.mark_steps_done(clock, names, CAL, now)
    assert names == {"warning", "urge", "supervise", "report"}
    assert done.next_attention_at is None
    assert not done.in_due_index


def test_pause_leaves_the_index_and_resume_moves_the_deadline():
    clock = make(start=t(2026, 11, 2, 10, 0))  # Monday; due Monday 11-09
    assert clock.due_date == date(2026, 11, 9)
    paused = c.pause(clock, t(2026, 11, 3, 15, 0), "等待群众补正", CAL)
    assert paused.state is ClockState.PAUSED
    assert not paused.in_due_index and paused.next_attention_at is None
    resumed = c.resume(paused, t(2026, 11, 5, 9, 0), CAL)
    # Paused Tue, resumed Thu: Wed and Thu do not count, so two more working days.
    assert resumed.due_date == date(2026, 11, 11)
    assert resumed.state is ClockState.RUNNING and resumed.in_due_index


def test_pause_and_resume_on_the_same_day_does_not_move_the_deadline():
    clock = make(start=t(2026, 11, 2, 10, 0))
    paused = c.pause(clock, t(2026, 11, 3, 9, 0), "补正", CAL)
    resumed = c.resume(paused, t(2026, 11, 3, 16, 0), CAL)
    assert resumed.due_date == clock.due_date


def test_pausing_twice_and_resuming_a_running_clock_are_refused():
    clock = make()
    paused = c.pause(clock, t(2026, 9, 29, 9, 0), "补正", CAL)
    with pytest.raises(RuleViolation):
        c.pause(paused, t(2026, 9, 29, 10, 0), "again", CAL)
    with pytest.raises(RuleViolation):
        c.resume(clock, t(2026, 9, 29, 10, 0), CAL)


def test_extension_once_and_only_before_the_deadline():
    clock = make(limit=15, start=t(2026, 11, 2, 10, 0))
    extended = c.extend(clock, 15, "情况复杂，经批准延期", "u-supervisor-zhao", t(2026, 11, 5), CAL)
    assert CAL.working_days_between(date(2026, 11, 2), extended.due_date) == 30
    with pytest.raises(RuleViolation) as again:
        c.extend(extended, 1, "再延", "u-admin", t(2026, 11, 6), CAL)
    assert again.value.code == "already_extended"
    with pytest.raises(RuleViolation) as late:
        c.extend(clock, 5, "超期后延期", "u-admin", t(2026, 12, 31), CAL)
    assert late.value.code == "deadline_passed"


def test_an_extension_needs_a_reason():
    with pytest.raises(InvalidInput):
        c.extend(make(), 2, "  ", "u-admin", t(2026, 9, 29), CAL)


def test_stop_on_time_is_met_and_late_is_breached():
    clock = make()
    met, late = c.stop(clock, Outcome.MET, t(2026, 10, 9, 10, 0), CAL)
    assert met.state is ClockState.MET and not late and not met.is_open
    assert not met.in_due_index
    breached, late = c.stop(clock, Outcome.MET, t(2026, 10, 12, 10, 0), CAL)
    assert breached.state is ClockState.BREACHED and late and not breached.is_open
    cancelled, late = c.stop(clock, Outcome.CANCELLED, t(2026, 10, 12, 10, 0), CAL)
    assert cancelled.state is ClockState.CANCELLED and not late


def test_stopping_a_closed_clock_is_refused():
    met, _ = c.stop(make(), Outcome.MET, t(2026, 10, 9), CAL)
    with pytest.raises(RuleViolation):
        c.stop(met, Outcome.MET, t(2026, 10, 9), CAL)


def test_stopping_a_paused_clock_closes_its_pause():
    paused = c.pause(make(), t(2026, 9, 29, 9, 0), "补正", CAL)
    closed, _ = c.stop(paused, Outcome.MET, t(2026, 9, 30, 9, 0), CAL)
    assert closed.pauses[-1].resumed_at == t(2026, 9, 30, 9, 0)


def test_hour_clock_counts_service_hours_of_working_days():
    clock = make(limit=2, unit=LimitUnit.HOURS, start=t(2026, 11, 27, 17, 55))  # Friday
    assert clock.due_at == t(2026, 11, 30, 11, 0)
    paused = c.pause(clock, t(2026, 11, 30, 9, 30), "等待材料", CAL)
    resumed = c.resume(paused, t(2026, 11, 30, 10, 30), CAL)
    assert resumed.due_at == t(2026, 11, 30, 12, 0)


def test_supplement_clocks_are_reminded_not_supervised():
    clock = make(kind="supplement", department_id=None, owner_id="u-citizen-zhang")
    assert [s.name for s in clock.ladder.steps] == ["warning", "urge"]


def test_a_clock_needs_a_department_or_an_owner():
    with pytest.raises(InvalidInput):
        make(department_id=None)


def test_ladder_as_data_round_trips_and_is_validated():
    assert c.Ladder.from_dict(c.DEFAULT_LADDER.to_dict()) == c.DEFAULT_LADDER
    bad = c.DEFAULT_LADDER.to_dict()
    bad["steps"][0]["value"] = 1.5
    with pytest.raises(InvalidInput):
        c.Ladder.from_dict(bad)


def test_an_official_calendar_can_move_a_breached_clock_back_to_running():
    clock = make()
    breached = c.refresh(clock, CAL, t(2026, 10, 11, 9, 0))
    assert breached.state is ClockState.BREACHED
    extended_calendar = WorkingCalendar(
        {
            2026: replace(  # a hypothetical official 2026 without the 10-10 make-up day
                CAL.schedule(2026),
                makeup_workdays=CAL.schedule(2026).makeup_workdays - {date(2026, 10, 10)},
            )
        }
    )
    moved = c.refresh(breached, extended_calendar, t(2026, 10, 11, 9, 0))
    assert moved.due_date == date(2026, 10, 12)
    assert moved.state is ClockState.RUNNING


def test_notification_text_is_rendered_in_chinese():
    clock = make()
    step = c.DEFAULT_LADDER.steps[2]
    assert c.render(step.title, clock, overdue="2") == "督办：办不成事工单答复超期2个工作日"


def test_due_time_is_stable_across_repeated_refresh():
    clock = make()
    again = c.refresh(clock, CAL, clock.started_at + timedelta(hours=1))
    assert again == clock
