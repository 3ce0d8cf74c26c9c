"""Booking rules as pure functions: slots and breaks, the booking window on the working-day
calendar, held-back seats, cancellation, reminders, no-show suspension, home visits, waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from chalicelib.domain.bookings.booking import (
    Booking,
    BookingStatus,
    VideoRoom,
    cancel,
    cancel_link_claims,
    check_cancellable,
    check_not_suspended,
    move,
    person_key,
)
from chalicelib.domain.bookings.centres import (
    Center,
    CenterKind,
    Channel,
    Complexity,
    Service,
    Session,
    Slot,
    find_slot,
    slots_of,
)
from chalicelib.domain.bookings.jobs import (
    JobKind,
    ReminderKind,
    mark_no_show,
    no_show_due,
    reminder_key,
    reminder_times,
    suspension_until,
)
from chalicelib.domain.bookings.live_help import HelpRequest, HelpStatus, help_overdue, pick_up
from chalicelib.domain.bookings.queue import (
    WaitSample,
    average_wait_minutes,
    call,
    check_in,
    check_in_claims,
    estimate_queue,
    serve,
)
from chalicelib.domain.bookings.rules import (
    BookingRules,
    bookable_days,
    check_booking_day,
    check_home_visit,
    is_priority,
    seat_order,
    staff_for_seat,
)
from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.errors import InvalidInput, RuleViolation

RULES = BookingRules()
CAL = WorkingCalendar()


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


def center(**kw) -> Center:
    values = dict(
        center_id="qp-cc-xiayang",
        name="夏阳街道社区事务受理服务中心",
        kind=CenterKind.COMMUNITY,
        address="青浦区青松路 100 号",
        phone="021-59702101",
        sessions=(Session(time(13, 30), time(16, 30)), Session(time(8, 30), time(11, 30))),
        area=("夏阳街道",),
        manager_id="u-manager-cc-xiayang",
    )
    values.update(kw)
    return Center(**values)


def service(**kw) -> Service:
    values = dict(
        center_id="qp-cc-xiayang",
        item_id="item-social-insurance",
        item_name="社会保险参保登记",
        channel=Channel.COUNTER,
        slot_minutes=20,
        seats=3,
        complexity=Complexity.SIMPLE,
        priority_seats=1,
    )
    values.update(kw)
    return Service(**values)


def booking(**kw) -> Booking:
    values = dict(
        booking_id="bk1",
        user_id="u-citizen-zhang",
        person_key=person_key("u-citizen-zhang", "310118198503121233"),
        center_id="qp-cc-xiayang",
        center_name="夏阳街道社区事务受理服务中心",
        item_id="item-social-insurance",
        item_name="社会保险参保登记",
        channel=Channel.COUNTER,
        complexity=Complexity.SIMPLE,
        day=date(2026, 11, 27),
        start=time(9, 0),
        end=time(9, 20),
        seat=0,
        status=BookingStatus.BOOKED,
        created_at=t(2026, 11, 26, 10, 0),
    )
    values.update(kw)
    return Booking(**values)


# ---- centres, services, slots ---------------------------------------------------------------


def test_slots_fill_each_session_and_skip_the_break():
    slots = slots_of(center(), service(), date(2026, 11, 27))
    starts = [s.label for s in slots]
    assert starts[:2] == ["08:30", "08:50"]
    assert "11:10" in starts and "11:30" not in starts  # 11:10-11:30 is the last morning slot
    assert "13:30" in starts and starts[-1] == "16:10"
    assert not [s for s in slots if time(11, 30) <= s.start < time(13, 30)]
    assert len(slots) == 9 + 9


def test_a_slot_that_would_run_into_the_break_is_not_offered():
    long = service(slot_minutes=40)
    starts = [s.label for s in slots_of(center(), long, date(2026, 11, 27))]
    # 11:10-11:50 would run into the lunch break: the morning ends with 10:30-11:10.
    assert starts[:5] == ["08:30", "09:10", "09:50", "10:30", "13:30"]
    assert "11:10" not in starts


def test_centre_sessions_are_ordered_and_their_gaps_are_breaks():
    c = center()
    assert [s.opens for s in c.sessions] == [time(8, 30), time(13, 30)]
    assert c.breaks == (Session(time(11, 30), time(13, 30)),)


def test_overlapping_sessions_are_refused():
    with pytest.raises(InvalidInput):
        center(sessions=(Session(time(9, 0), time(12, 0)), Session(time(11, 0), time(17, 0))))


def test_find_slot_refuses_a_start_that_is_not_a_slot():
    with pytest.raises(InvalidInput) as error:
        find_slot(center(), service(), date(2026, 11, 27), "08:35")
    assert error.value.code == "unknown_slot"
    assert find_slot(center(), service(), date(2026, 11, 27), "08:50").end == time(9, 10)


@pytest.mark.parametrize(
    "changes",
    [
        {"priority_seats": 3},  # held-back seats must leave at least one general seat
        {"seats": 0},
        {"slot_minutes": 2},
        {"channel": Channel.HOME_VISIT, "staff": ("u-staff-1",)},  # one staff member per seat
    ],
)
def test_invalid_services_are_refused(changes):
    with pytest.raises(InvalidInput):
        service(**changes)


# ---- the booking window ---------------------------------------------------------------------

NOW = t(2026, 11, 26, 10, 0)  # Thursday


@pytest.mark.parametrize(
    "day",
    [date(2026, 11, 27), date(2026, 11, 30), date(2026, 12, 3)],  # 1, 2 and 5 working days
)
def test_one_to_five_working_days_ahead_is_bookable(day):
    check_booking_day(RULES, CAL, NOW, day)


@pytest.mark.parametrize(
    "day,code",
    [
        (date(2026, 11, 26), "outside_booking_window"),  # today
        (date(2026, 12, 4), "outside_booking_window"),  # 6 working days
        (date(2026, 11, 28), "centre_closed"),  # Saturday
        (date(2026, 10, 1), "centre_closed"),  # National Day
    ],
)
def test_days_outside_the_window_or_closed_are_refused(day, code):
    with pytest.raises(RuleViolation) as error:
        check_booking_day(RULES, CAL, NOW, day)
    assert error.value.code == code


def test_a_make_up_saturday_is_an_opening_day():
    # 2026-10-10 is a 调休 working Saturday (State Council notice of 2025-11-04).
    check_booking_day(RULES, CAL, t(2026, 10, 9, 10, 0), date(2026, 10, 10))


def test_bookable_days_lists_the_window():
    assert bookable_days(RULES, CAL, NOW) == [
        date(2026, 11, 27),
        date(2026, 11, 30),
        date(2026, 12, 1),
        date(2026, 12, 2),
        date(2026, 12, 3),
    ]


def test_the_window_is_configurable():
    rules = RULES.changed({"max_working_days_ahead": 6})
    check_booking_day(rules, CAL, NOW, date(2026, 12, 4))


# ---- seats held back for elderly and disabled people ----------------------------------------

SLOT = Slot(date(2026, 11, 30), time(9, 0), time(9, 20))


def test_general_seats_only_for_others_before_the_release():
    order = seat_order(service(), SLOT, "k1", False, NOW, RULES)
    assert sorted(order) == [0, 1]


def test_priority_people_try_the_held_back_seats_first():
    order = seat_order(service(), SLOT, "k1", True, NOW, RULES)
    assert order[0] == 2 and sorted(order) == [0, 1, 2]


def test_held_back_seats_open_to_everyone_a_day_before():
    later = SLOT.starts_at - timedelta(hours=23)
    assert sorted(seat_order(service(), SLOT, "k1", False, later, RULES)) == [0, 1, 2]


def test_seat_order_is_fixed_per_key_and_spread_across_keys():
    big = service(seats=10, priority_seats=0)
    assert seat_order(big, SLOT, "k1", False, NOW, RULES) == seat_order(
        big, SLOT, "k1", False, NOW, RULES
    )
    firsts = {seat_order(big, SLOT, f"key-{n}", False, NOW, RULES)[0] for n in range(50)}
    assert len(firsts) > 3


def test_priority_is_by_directory_tag():
    assert is_priority({"elderly"}, RULES)
    assert is_priority({"disabled", "x"}, RULES)
    assert not is_priority(set(), RULES)


# ---- cancel, reschedule, reminders ----------------------------------------------------------


def test_cancel_until_two_hours_before():
    bk = booking()
    check_cancellable(bk, t(2026, 11, 27, 7, 0), RULES)
    with pytest.raises(RuleViolation) as error:
        check_cancellable(bk, t(2026, 11, 27, 7, 1), RULES)
    assert error.value.code == "cancel_window_closed"


def test_only_a_booked_booking_can_be_cancelled():
    with pytest.raises(RuleViolation) as error:
        cancel(booking(status=BookingStatus.CHECKED_IN), NOW)
    assert error.value.code == "booking_not_cancellable"


def test_move_bumps_the_revision_and_keeps_history():
    moved = move(booking(), SLOT, 1, None, NOW)
    assert (moved.day, moved.start, moved.seat, moved.revision) == (SLOT.day, SLOT.start, 1, 1)
    assert moved.history == (
        {"day": "2026-11-27", "start": "09:00", "seat": 0, "moved_at": NOW.isoformat()},
    )


def test_reminders_the_day_before_and_two_hours_before():
    times = reminder_times(replace(booking(), start=time(14, 0), end=time(14, 20)), NOW, RULES)
    assert times == {
        JobKind.REMIND_DAY_BEFORE: t(2026, 11, 26, 14, 0),
        JobKind.REMIND_TWO_HOURS: t(2026, 11, 27, 12, 0),
    }


def test_a_reminder_time_already_past_is_skipped():
    times = reminder_times(booking(), NOW, RULES)  # 09:00 tomorrow: the day-before is past
    assert list(times) == [JobKind.REMIND_TWO_HOURS]


def test_a_rescheduled_booking_is_reminded_under_a_new_name():
    assert reminder_key(ReminderKind.DAY_BEFORE, 0) == "day_before"
    assert reminder_key(ReminderKind.TWO_HOURS, 2) == "two_hours-r2"


# ---- no-shows -------------------------------------------------------------------------------


def test_two_no_shows_within_30_days_suspend_online_booking_for_90_days():
    now = t(2026, 12, 10, 9, 15)
    until = suspension_until([t(2026, 11, 20, 9, 0), t(2026, 12, 10, 9, 0)], now, RULES)
    assert until == now + timedelta(days=90)


def test_no_shows_further_apart_than_30_days_do_not_suspend():
    now = t(2026, 12, 31, 9, 15)
    assert suspension_until([t(2026, 11, 20, 9, 0), t(2026, 12, 31, 9, 0)], now, RULES) is None


def test_a_suspended_person_cannot_book():
    with pytest.raises(RuleViolation) as error:
        check_not_suspended(t(2027, 3, 1), NOW)
    assert error.value.code == "booking_suspended"
    check_not_suspended(t(2026, 11, 1), NOW)


def test_no_show_is_due_after_the_grace_period():
    assert no_show_due(booking(), RULES) == t(2026, 11, 27, 9, 15)
    assert mark_no_show(booking(), NOW).status is BookingStatus.NO_SHOW


# ---- home visits ----------------------------------------------------------------------------

HOME = service(
    channel=Channel.HOME_VISIT,
    item_id="item-elderly-allowance",
    seats=2,
    priority_seats=0,
    staff=("u-staff-xiayang-1", "u-staff-xiayang-2"),
)


def test_home_visit_for_an_elderly_person_in_the_area():
    check_home_visit(center(), HOME, "夏阳街道", {"elderly"}, RULES)
    assert staff_for_seat(HOME, 1) == "u-staff-xiayang-2"


@pytest.mark.parametrize(
    "town,tags,kind,code",
    [
        ("夏阳街道", set(), CenterKind.COMMUNITY, "home_visit_not_eligible"),
        ("徐泾镇", {"disabled"}, CenterKind.COMMUNITY, "outside_service_area"),
        ("夏阳街道", {"elderly"}, CenterKind.DISTRICT, "home_visit_not_offered"),
    ],
)
def test_home_visit_refusals(town, tags, kind, code):
    with pytest.raises(RuleViolation) as error:
        check_home_visit(center(kind=kind), HOME, town, tags, RULES)
    assert error.value.code == code


# ---- at the centre --------------------------------------------------------------------------


def test_check_in_window_and_early_arrivals_wait_from_the_booked_time():
    with pytest.raises(RuleViolation):
        check_in(booking(), t(2026, 11, 27, 8, 29), RULES)
    checked = check_in(booking(), t(2026, 11, 27, 8, 40), RULES)
    called = call(checked, t(2026, 11, 27, 9, 7), "u-window-wang")
    assert called.wait_seconds == 7 * 60  # from 09:00, not from 08:40
    served = serve(called, t(2026, 11, 27, 9, 19))
    assert served.handling_seconds == 12 * 60


def test_check_in_after_the_grace_period_is_refused():
    with pytest.raises(RuleViolation) as error:
        check_in(booking(), t(2026, 11, 27, 9, 16), RULES)
    assert error.value.code == "check_in_closed"


def test_only_counter_bookings_check_in():
    with pytest.raises(RuleViolation) as error:
        check_in(booking(channel=Channel.VIDEO), t(2026, 11, 27, 8, 50), RULES)
    assert error.value.code == "not_a_counter_booking"


def sample(minutes_ago: int, wait_minutes: int, complexity=Complexity.SIMPLE, staff="s1"):
    return WaitSample(
        f"bk-{minutes_ago}",
        complexity,
        t(2026, 11, 27, 11, 0) - timedelta(minutes=minutes_ago),
        wait_minutes * 60,
        staff,
        handling_seconds=10 * 60,
    )


def test_rolling_average_wait_counts_the_window_only():
    now = t(2026, 11, 27, 11, 0)
    samples = [sample(5, 14), sample(20, 12), sample(90, 0), sample(5, 40, Complexity.COMPLEX)]
    assert average_wait_minutes(samples, Complexity.SIMPLE, now, RULES) == 13.0
    assert average_wait_minutes(samples, Complexity.COMPLEX, now, RULES) == 40.0


def test_queue_estimate_shares_the_waiting_among_recent_counters():
    now = t(2026, 11, 27, 11, 0)
    samples = [sample(5, 14, staff="s1"), sample(20, 12, staff="s2")]
    estimate = estimate_queue(5, 1, samples, now, RULES, default_handling_minutes=15)
    assert estimate.counters == 2
    assert estimate.average_handling_minutes == 10.0
    assert estimate.estimated_wait_minutes == 30  # ceil(5 / 2) people ahead x 10 minutes
    assert estimate.over_target == {Complexity.SIMPLE: True, Complexity.COMPLEX: False}


# ---- live help ------------------------------------------------------------------------------

ROOM = VideoRoom("vr-1", "https://video.qingpu.example/rooms/vr-1?t=x")


def test_help_picked_up_within_a_minute_meets_the_target():
    request = HelpRequest("h1", "u1", "社保怎么办", None, HelpStatus.WAITING, NOW)
    picked = pick_up(request, "agent", NOW + timedelta(seconds=45), RULES, ROOM)
    assert (picked.pickup_seconds, picked.target_met) == (45, True)
    late = pick_up(request, "agent", NOW + timedelta(seconds=61), RULES, ROOM)
    assert late.target_met is False
    assert help_overdue(request, NOW + timedelta(seconds=61), RULES)
    at_target = pick_up(request, "agent", NOW + timedelta(seconds=60), RULES, ROOM)
    assert at_target.target_met and not help_overdue(request, NOW + timedelta(seconds=60), RULES)
    with pytest.raises(RuleViolation):
        pick_up(picked, "agent2", NOW + timedelta(seconds=70), RULES, ROOM)


# ---- rules and tokens -----------------------------------------------------------------------


def test_rules_round_trip_through_data():
    rules = RULES.changed({"suspension_days": 60, "priority_tags": ["elderly"]})
    assert BookingRules.from_dict(rules.to_dict()) == rules
    assert rules.priority_tags == ("elderly",)


@pytest.mark.parametrize(
    "changes",
    [{"min_working_days_ahead": 6}, {"no_show_limit": 0}, {"remind_before_minutes": 2000}],
)
def test_inconsistent_rules_are_refused(changes):
    with pytest.raises(InvalidInput) as error:
        RULES.changed(changes)
    assert error.value.code == "invalid_rules"


def test_a_cancel_link_names_one_revision_and_ends_when_the_booking_starts():
    first = booking()
    parts, expires_at = cancel_link_claims(first)
    assert parts == ["bk1", "0"] and expires_at == first.starts_at
    assert cancel_link_claims(replace(first, revision=1))[0] == ["bk1", "1"]


def test_a_check_in_code_names_the_centre_and_day_and_ends_at_midnight():
    parts, expires_at = check_in_claims("c1", date(2026, 11, 27))
    assert parts == ["c1", "2026-11-27"]
    assert expires_at == datetime(2026, 11, 28, 0, 0, tzinfo=CHINA_TZ)


def test_person_key_hides_the_id_number():
    key = person_key("u-citizen-zhang", "310118198503121233")
    assert "310118" not in key and len(key) == 32
    assert key != person_key("u-citizen-zhang", None)


def test_the_http_layer_literals_match_the_domain_enumerations():
    from typing import get_args

    from chalicelib.entrypoints.http import bookings as http

    pairs = [
        (http.ChannelName, Channel),
        (http.ComplexityName, Complexity),
        (http.CenterKindName, CenterKind),
        (http.BookingStatusName, BookingStatus),
        (http.HelpStatusName, HelpStatus),
    ]
    for literal, enum in pairs:
        assert set(get_args(literal)) == {member.value for member in enum}
