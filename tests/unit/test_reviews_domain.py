"""好差评 without I/O: who may rate, the channel's dimensions, the task's transitions, appeals,
the monthly ranking with 约谈, the alert rule and the CSV cells."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from chalicelib.domain import reviews as r
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Forbidden, InvalidInput, RuleViolation
from chalicelib.domain.reviews import (
    DIMENSIONS,
    AlertPolicy,
    Channel,
    Handling,
    HandlingType,
    Rater,
    Rating,
    ReviewKind,
    TaskState,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
PERSON = Rater("u-zhang", "citizen", "310118198503121233", True)
CLERK = Rater("u-wang", "window_staff", None, False)


def handling(**changes) -> Handling:
    base = Handling(
        HandlingType.BOOKING,
        "bk-1",
        "u-zhang",
        "310118198503121233",
        "dept-scjgj",
        Channel.OFFLINE,
        True,
        frozenset({"u-wang"}),
        frozenset({"11010519491231002X"}),
        "qp-district",
    )
    return replace(base, **changes)


def rating(level: int = 5, channel: Channel = Channel.OFFLINE, **changes) -> Rating:
    base = Rating(
        level, dict.fromkeys(DIMENSIONS[channel], level), (), "太慢" if level <= 2 else ""
    )
    return replace(base, **changes)


def review(level: int = 1, **changes) -> r.Review:
    made = r.new_review(handling(), PERSON, rating(level), ReviewKind.INITIAL, NOW)
    return replace(made, **changes)


def test_the_review_id_is_the_same_for_the_same_handling_and_kind():
    first = r.review_id_for(handling(), ReviewKind.INITIAL)
    assert first == r.review_id_for(handling(), ReviewKind.INITIAL)
    assert first != r.review_id_for(handling(), ReviewKind.FOLLOW_UP)
    assert first != r.review_id_for(handling(handling_id="bk-2"), ReviewKind.INITIAL)
    assert 0 <= r.month_shard(first) < r.MONTH_SHARDS


def test_staff_never_rate_their_own_handling_also_through_a_personal_account():
    with pytest.raises(Forbidden) as raised:
        r.check_rater(handling(), CLERK)
    assert raised.value.code == "own_handling"
    personal = Rater("u-wang-private", "citizen", "11010519491231002X", True)
    with pytest.raises(Forbidden):
        r.check_rater(handling(), personal)
    r.check_rater(handling(), PERSON)


def test_the_person_or_organisation_served_is_recognised_by_account_or_subject():
    assert r.is_served(handling(), PERSON)
    colleague = Rater("u-other-account", "enterprise", "310118198503121233", True)
    assert r.is_served(handling(), colleague)
    assert not r.is_served(handling(), Rater("u-li", "citizen", "310118194801150026", True))
    staff_same_subject = Rater("u-x", "department_staff", "310118198503121233", False)
    assert not r.is_served(handling(), staff_same_subject)


@pytest.mark.parametrize("channel", list(Channel))
def test_each_channel_has_its_own_dimensions(channel):
    other = Channel.ONLINE if channel is Channel.OFFLINE else Channel.OFFLINE
    r.check_rating(channel, rating(4, channel))
    with pytest.raises(InvalidInput) as raised:
        r.check_rating(channel, rating(4, other))
    assert raised.value.code == "invalid_dimensions"


def test_levels_and_the_comment_of_a_bad_review_are_checked():
    with pytest.raises(InvalidInput):
        r.check_rating(
            Channel.OFFLINE, rating(4, dimensions={**rating(4).dimensions, "服务效率": 7})
        )
    with pytest.raises(InvalidInput) as raised:
        r.check_rating(Channel.OFFLINE, rating(2, comment="  "))
    assert raised.value.code == "comment_required"
    r.check_rating(Channel.OFFLINE, rating(3, comment=""))


def test_an_unfinished_handling_and_an_early_follow_up_are_refused():
    with pytest.raises(RuleViolation) as raised:
        r.new_review(handling(completed=False), PERSON, rating(), ReviewKind.INITIAL, NOW)
    assert raised.value.code == "handling_not_complete"
    with pytest.raises(RuleViolation) as raised:
        r.new_review(handling(), PERSON, rating(), ReviewKind.FOLLOW_UP, NOW)
    assert raised.value.code == "follow_up_not_open"
    follow_up = r.new_review(
        handling(), PERSON, rating(), ReviewKind.FOLLOW_UP, NOW, rectification_closed=True
    )
    assert not r.opens_task(follow_up)


def test_only_an_initial_bad_review_opens_a_task():
    assert r.opens_task(review(1)) and r.opens_task(review(2))
    assert not r.opens_task(review(3))


def test_the_task_runs_contact_rectify_call_back_accept():
    task = r.open_task(review(1), NOW)
    with pytest.raises(RuleViolation):
        r.record_rectification(task, "原因", "措施", ("e.pdf",), "u-dept", NOW)
    task = r.record_contact(task, "phone", "已致电", True, "u-dept", NOW)
    assert task.state is TaskState.CONTACTED and task.complex
    with pytest.raises(InvalidInput) as raised:
        r.record_rectification(task, "原因", "措施", (), "u-dept", NOW)
    assert raised.value.code == "evidence_required"
    task = r.record_rectification(task, "原因", "措施", ("e.pdf",), "u-dept", NOW)
    with pytest.raises(RuleViolation) as raised:
        r.accept(task, "", "u-zwb", NOW)
    assert raised.value.code == "call_back_required"
    task = r.record_call_back(task, True, True, "满意", "u-zwb", NOW)
    task = r.accept(task, "到位", "u-zwb", NOW)
    assert task.state is TaskState.CLOSED
    assert [h["event"] for h in task.history] == [
        "opened",
        "contacted",
        "rectified",
        "called_back",
        "accepted",
    ]


def test_send_back_starts_a_new_round_and_anonymous_tasks_need_no_call_back():
    task = r.open_task(review(2, anonymous=True), NOW)
    task = r.record_contact(task, "online", "已核实", False, "u-dept", NOW)
    task = r.record_rectification(task, "原因", "措施", ("e.pdf",), "u-dept", NOW)
    back = r.send_back(task, "材料不足", "u-zwb", NOW)
    assert (back.state, back.round, back.rectify_key) == (TaskState.CONTACTED, 2, "rectify#2")
    assert back.rectification is None
    again = r.record_rectification(back, "原因", "措施", ("e2.pdf",), "u-dept", NOW)
    assert r.accept(again, "", "u-zwb", NOW).state is TaskState.CLOSED


def test_an_appeal_needs_evidence_and_is_decided_once():
    with pytest.raises(RuleViolation):
        r.appeal(review(4), "mistaken", "", ("e.pdf",), "u-dept", NOW)
    with pytest.raises(InvalidInput):
        r.appeal(review(1), "mistaken", "", (), "u-dept", NOW)
    appealed = r.appeal(review(1), "malicious", "未到场", ("cctv.mp4",), "u-dept", NOW)
    with pytest.raises(RuleViolation):
        r.appeal(appealed, "malicious", "未到场", ("cctv.mp4",), "u-dept", NOW)
    upheld = r.decide_appeal(appealed, True, "属实", "u-zwb", NOW)
    assert upheld.excluded and upheld.rating == 1
    with pytest.raises(RuleViolation):
        r.decide_appeal(upheld, False, "再议", "u-zwb", NOW)
    assert not r.decide_appeal(appealed, False, "证据不足", "u-zwb", NOW).excluded


def _reviews(department: str, good: int, bad: int, start: int) -> list[r.Review]:
    made = []
    for n in range(good + bad):
        h = handling(handling_id=f"{department}-{start + n}", department_id=department)
        level = 5 if n < good else 1
        made.append(r.new_review(h, PERSON, rating(level), ReviewKind.INITIAL, NOW))
    return made


def test_ranking_puts_the_best_good_rate_first_and_flags_talk_for_repeat_bottom_two():
    reviews = (
        _reviews("d-a", 4, 0, 0)
        + _reviews("d-b", 3, 1, 10)
        + _reviews("d-c", 2, 2, 20)
        + _reviews("d-d", 1, 3, 30)
    )
    report = r.build_report("2026-11", reviews, {"d-a": "甲"}, {}, frozenset({"d-d", "d-a"}))
    assert [f.key for f in report.departments] == ["d-a", "d-b", "d-c", "d-d"]
    assert [f.rank for f in report.departments] == [1, 2, 3, 4]
    assert [f.key for f in report.departments if f.bottom_two] == ["d-c", "d-d"]
    assert [f.key for f in report.departments if f.talk] == ["d-d"]
    assert report.departments[0].name == "甲" and report.departments[1].name == "d-b"
    assert report.departments[3].good_rate == 0.25
    (centre,) = report.centres
    assert (centre.key, centre.reviews, centre.bad) == ("qp-district", 16, 6)


def test_excluded_and_follow_up_reviews_do_not_count_and_rectification_is_measured():
    bad = review(1, rectify_on_time=False, called_back=True)
    late = replace(review(2), review_id="rv-x", rectify_on_time=True)
    appealed = r.appeal(review(1), "mistaken", "", ("e",), "u", NOW)
    excluded = replace(r.decide_appeal(appealed, True, "属实", "u", NOW), review_id="rv-y")
    follow_up = replace(review(5), kind=ReviewKind.FOLLOW_UP, review_id="rv-z")
    report = r.build_report("2026-11", [bad, late, excluded, follow_up], {}, {}, frozenset())
    (row,) = report.departments
    row_dict = row.to_dict()
    assert (row.reviews, row.bad, row.excluded) == (2, 2, 1)
    assert row_dict["rectify_on_time_rate"] == 0.5 and row_dict["call_back_rate"] == 0.5
    assert row.rank == 1 and not row.bottom_two  # two or fewer ranked: nobody is bottom two


def test_months_and_csv_cells():
    assert r.previous_month("2026-01") == "2025-12" and r.previous_month("2026-11") == "2026-10"
    assert r.month_start("2026-02") == date(2026, 2, 1)
    assert [r.csv_cell(v) for v in (None, True, False, 0.25, 3)] == ["", "是", "否", "25.00%", "3"]


def test_the_alert_fires_below_the_threshold_with_enough_reviews_once_per_window():
    policy = AlertPolicy(good_rate_threshold=0.8, window_days=30, min_reviews=3)
    assert r.needs_alert(policy, 2, 1) == (False, None)  # too few reviews to judge
    assert r.needs_alert(policy, 3, 1) == (True, 0.6667)
    assert r.needs_alert(policy, 5, 1) == (False, 0.8)  # at the threshold: no alert
    today = date(2026, 11, 26)
    assert r.alert_window(policy, today).endswith("P30D")
    windows = {r.alert_window(policy, today + timedelta(days=n)) for n in range(30)}
    assert len(windows) == 2  # 30 consecutive days touch at most two windows
    assert r.alert_window(policy, today) != r.alert_window(policy, today + timedelta(days=30))
    with pytest.raises(InvalidInput):
        AlertPolicy(good_rate_threshold=1.5)
