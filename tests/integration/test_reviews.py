"""好差评 on moto through the HTTP routes and the use cases: who may rate what, invitations and
the reminder, the stream step (idempotent), rectification send-back and anonymous reviews,
appeals, the monthly report (ranking, 约谈, CSV), the good-rate alert and the demo seed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.reviews import (
    DIMENSIONS,
    Channel,
    Handling,
    HandlingType,
    Rater,
    Rating,
    ReviewKind,
    new_review,
)
from tests.integration.helpers import t

CITIZEN = "u-citizen-zhang"
LI = "u-citizen-li"
CLERK = "u-window-wang"
MARKET = "u-dept-scjgj"
HR = "u-dept-rsj"
SUPERVISOR = "u-supervisor-zhao"
ADMIN = "u-admin"
DISTRICT = "qp-district"
OFFLINE_OK = dict.fromkeys(DIMENSIONS[Channel.OFFLINE], 5)


class RecordingNotifier:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[Any] = []

    def notify(self, request: Any) -> tuple[str, bool]:
        self.calls.append(request)
        return self.inner.notify(request)

    def categories(self, recipient: str | None = None) -> list[str]:
        return [c.category for c in self.calls if recipient is None or c.recipient_id == recipient]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def notifier(container) -> RecordingNotifier:
    recording = RecordingNotifier(container.notifier)
    container.notifier = recording
    return recording


@pytest.fixture
def deps(container, notifier):
    from chalicelib.service_layer.reviews import ReviewDeps

    return ReviewDeps.from_container(container)


@pytest.fixture
def served(api, container, clock, notifier) -> dict[str, str]:
    """Zhang's and Li's counter bookings at the district centre, served on Friday morning."""
    from local.seed_bookings import seed_bookings

    seed_bookings(container)
    ids = {}
    for user, item in ((CITIZEN, "QP-SC-101"), (LI, "QP-GA-601")):
        result = api.post(
            "/bookings",
            {
                "centre_id": DISTRICT,
                "item_code": item,
                "channel": "counter",
                "date": "2026-11-27",
                "start": "09:00",
            },
            user=user,
        )
        assert result.status == 201, result
        ids[user] = result.json["booking_id"]
    clock.set(t(2026, 11, 27, 8, 50))
    for booking_id in ids.values():
        assert api.post(f"/bookings/{booking_id}/check-in", {}, user=CLERK).status == 200
    clock.set(t(2026, 11, 27, 9, 5))
    for booking_id in ids.values():
        assert api.post(f"/bookings/{booking_id}/call", {}, user=CLERK).status == 200
    clock.set(t(2026, 11, 27, 9, 30))
    assert api.post(f"/bookings/{ids[CITIZEN]}/serve", user=CLERK).status == 200
    return ids


def body(handling_id: str, rating: int = 5, **changes: Any) -> dict[str, Any]:
    result = {
        "handling_type": "booking",
        "handling_id": handling_id,
        "rating": rating,
        "dimensions": dict.fromkeys(DIMENSIONS[Channel.OFFLINE], rating),
        "comment": "办事人员态度差" if rating <= 2 else "",
    }
    result.update(changes)
    return result


def put_review(
    container,
    department: str,
    rating: int,
    at: datetime,
    n: int,
    *,
    centre: str | None = None,
    anonymous: bool = False,
):
    """A review of a demo handling, written straight to the store (the stream is not pumped)."""
    handling = Handling(
        HandlingType.BOOKING,
        f"demo-{department}-{n}",
        f"u-demo-{n}",
        None,
        department,
        Channel.OFFLINE,
        True,
        centre_id=centre,
    )
    review = new_review(
        handling,
        Rater(f"u-demo-{n}", "citizen", None, True),
        Rating(
            rating, OFFLINE_OK | {"整体满意度": rating}, (), "差" if rating <= 2 else "", anonymous
        ),
        ReviewKind.INITIAL,
        at,
    )
    assert container.review_store.create_review(review)
    return review


def test_only_the_person_served_rates_a_completed_handling_once(api, served):
    zhang, li = served[CITIZEN], served[LI]
    not_done = api.post("/reviews", body(li), user=LI)
    assert not_done.status == 422 and not_done.json["code"] == "handling_not_complete"
    someone_else = api.post("/reviews", body(zhang), user=LI)
    assert someone_else.status == 404 and someone_else.json["code"] == "handling_not_found"
    missing = api.post("/reviews", body("no-such-booking"), user=CITIZEN)
    assert missing.status == 404
    wrong_channel = api.post(
        "/reviews",
        body(zhang, dimensions=dict.fromkeys(DIMENSIONS[Channel.ONLINE], 5)),
        user=CITIZEN,
    )
    assert wrong_channel.status == 400 and wrong_channel.json["code"] == "invalid_dimensions"
    no_comment = api.post("/reviews", body(zhang, 2, comment=" "), user=CITIZEN)
    assert no_comment.status == 400 and no_comment.json["code"] == "comment_required"
    department = api.post("/reviews", body(zhang), user=MARKET)
    assert department.status == 404
    ok = api.post("/reviews", body(zhang, 4), user=CITIZEN)
    assert ok.status == 201 and ok.json["level"] == "满意"
    assert api.post("/reviews", body(zhang, 1), user=CITIZEN).status == 409
    # A good review opens no task; an early 追评 is refused.
    assert api.get(f"/reviews/{ok.json['review_id']}/rectification", user=CITIZEN).status == 404
    early = api.post("/reviews", body(zhang, 5, kind="follow_up"), user=CITIZEN)
    assert early.status == 422 and early.json["code"] == "follow_up_not_open"


def test_a_staff_members_personal_account_cannot_rate_what_they_handled(api, container, served):
    from chalicelib.domain.directory import UserProfile
    from chalicelib.domain.identity import Role

    clerk_id_number = "11010519491231002X"
    wang = container.directory.get_user(CLERK)
    container.directory.put_user(
        UserProfile(CLERK, Role.WINDOW_STAFF, wang.display_name, subject_id=clerk_id_number)
    )
    container.directory.put_user(
        UserProfile("u-citizen-wangfang", Role.CITIZEN, "王芳", subject_id=clerk_id_number)
    )
    refused = api.post("/reviews", body(served[CITIZEN]), user="u-citizen-wangfang")
    assert refused.status == 403 and refused.json["code"] == "own_handling"


def test_an_enterprise_rates_its_closed_ticket_through_any_of_its_accounts(
    api, container, notifier
):
    from chalicelib.domain.directory import UserProfile
    from chalicelib.domain.identity import Role
    from local.seed_tickets import seed_tickets

    seed_tickets(container)
    assert "review.invitation" in notifier.categories("u-enterprise-lvjing")
    lvjing = container.directory.get_user("u-enterprise-lvjing")
    container.directory.put_user(
        UserProfile(
            "u-enterprise-lvjing-2",
            Role.ENTERPRISE,
            lvjing.display_name,
            subject_id=lvjing.subject_id,
        )
    )
    ticket_id = next(
        c.data["handling_id"] for c in notifier.calls if c.category == "review.invitation"
    )
    online = dict.fromkeys(DIMENSIONS[Channel.ONLINE], 5)
    # The supervisor who called back and the department staff who replied handled it.
    staff = api.post(
        "/reviews",
        {"handling_type": "ticket", "handling_id": ticket_id, "rating": 5, "dimensions": online},
        user=SUPERVISOR,
    )
    assert staff.status == 403 and staff.json["code"] == "own_handling"
    result = api.post(
        "/reviews",
        {"handling_type": "ticket", "handling_id": ticket_id, "rating": 5, "dimensions": online},
        user="u-enterprise-lvjing-2",
    )
    assert result.status == 201, result
    assert result.json["department_id"] == "dept-rsj" and result.json["channel"] == "online"


def test_the_person_is_reminded_once_after_three_days_unless_they_rated(
    api, container, clock, served, deps, notifier
):
    from chalicelib.service_layer.due import sweep

    def reminders() -> dict[str, int]:
        # The same sweep runs the bookings' own due jobs (no-show checks): only reminders here.
        outcomes = sweep(container.due_store, clock, container).outcomes
        return {k: n for k, n in outcomes.items() if k in ("reminded", "already_rated")}

    clock.set(t(2026, 11, 27, 9, 40))
    assert api.post(f"/bookings/{served[LI]}/serve", user=CLERK).status == 200
    assert api.post("/reviews", body(served[LI]), user=LI).status == 201

    clock.set(t(2026, 11, 30, 9, 0))  # 2 days later
    assert reminders() == {}
    clock.set(t(2026, 11, 30, 9, 31))  # 3 days after Zhang's booking was served
    assert reminders() == {"reminded": 1}
    clock.set(t(2026, 11, 30, 9, 45))
    assert reminders() == {"already_rated": 1}  # Li rated: no reminder
    assert reminders() == {}
    assert notifier.categories(CITIZEN).count("review.reminder") == 1
    assert "review.reminder" not in notifier.categories(LI)


def test_the_stream_step_opens_one_task_however_often_it_runs(container, clock, deps, notifier):
    from chalicelib.service_layer.reviews import on_review_created

    review = put_review(container, "dept-scjgj", 1, clock.now(), 1)
    first = on_review_created(deps, review.review_id)
    again = on_review_created(deps, review.review_id)
    assert first.clocks == again.clocks and set(first.clocks) == {"contact", "rectify#1"}
    opened = [c for c in notifier.calls if c.category == "review.rectification_opened"]
    assert {c.business_key for c in opened} == {f"review:{review.review_id}:opened:dept-scjgj"}
    good = put_review(container, "dept-scjgj", 5, clock.now(), 2)
    assert on_review_created(deps, good.review_id) is None


def test_send_back_restarts_the_clock_and_an_anonymous_review_closes_without_call_back(
    api, container, clock, deps
):
    from chalicelib.service_layer.reviews import on_review_created

    review = put_review(container, "dept-scjgj", 2, clock.now(), 1, anonymous=True)
    on_review_created(deps, review.review_id)
    base = f"/reviews/{review.review_id}/rectification"
    assert (
        api.post(
            f"{base}/contact",
            {"method": "phone", "note": "无法联系匿名评价人，已查监控", "complex": True},
            user=MARKET,
        ).status
        == 200
    )
    task = api.get(base, user=MARKET).json
    rectify = next(d for d in task["deadlines"] if d["name"] == "rectify#1")
    assert rectify["due_at"] == "2026-12-17T23:59:59+08:00"  # 15 working days: complex
    assert (
        api.post(
            f"{base}/rectify",
            {"cause": "态度", "measures": "培训", "evidence": ["e/1.pdf"]},
            user=HR,
        ).status
        == 404
    )
    rectified = {"cause": "窗口服务态度", "measures": "约谈当事人并培训", "evidence": ["e/1.pdf"]}
    assert api.post(f"{base}/rectify", rectified, user=MARKET).status == 200
    assert api.post(f"{base}/accept", {}, user=MARKET).status == 403
    back = api.post(f"{base}/send-back", {"note": "佐证材料不足"}, user=SUPERVISOR)
    assert back.status == 200 and (back.json["state"], back.json["round"]) == ("contacted", 2)
    second = next(d for d in back.json["deadlines"] if d["name"] == "rectify#2")
    assert second["state"] == "running" and second["due_at"] == "2026-12-03T23:59:59+08:00"
    assert api.post(f"{base}/rectify", rectified, user=MARKET).status == 200
    closed = api.post(
        f"{base}/accept", {"note": "匿名评价，无法回访，核实整改到位"}, user=SUPERVISOR
    )
    assert closed.status == 200 and closed.json["state"] == "closed"


def test_an_upheld_appeal_keeps_the_review_but_out_of_the_ranking(api, container, clock, deps):
    from chalicelib.service_layer.reviews import on_review_created

    review = put_review(container, "dept-scjgj", 1, clock.now(), 1)
    good = put_review(container, "dept-scjgj", 5, clock.now(), 2)
    on_review_created(deps, review.review_id)
    on_review_created(deps, good.review_id)
    today = clock.now().date()
    assert container.review_store.window_counts("dept-scjgj", today, today) == (2, 1)
    path = f"/reviews/{review.review_id}/appeal"
    appeal = {"reason": "malicious", "statement": "评价人当日未到窗口", "evidence": ["cctv/1.mp4"]}
    assert api.post(path, appeal, user=HR).status == 404
    assert api.post(path, {**appeal, "evidence": []}, user=MARKET).status == 400
    assert api.post(path, appeal, user=MARKET).status == 200
    assert api.post(path, appeal, user=MARKET).status == 422
    decision = {"uphold": True, "note": "监控显示评价人未到场"}
    assert api.post(f"{path}/decision", decision, user=MARKET).status == 403
    upheld = api.post(f"{path}/decision", decision, user=SUPERVISOR)
    assert upheld.status == 200 and upheld.json["excluded_from_rankings"] is True
    # Out of the alert's window counts too, once, however often the decision is retried.
    assert container.review_store.window_counts("dept-scjgj", today, today) == (1, 0)
    on_review_created(deps, review.review_id)
    assert container.review_store.window_counts("dept-scjgj", today, today) == (1, 0)
    kept = api.get(f"/reviews/{review.review_id}", user=SUPERVISOR).json
    assert kept["appeal"]["state"] == "upheld" and kept["rating"] == 1
    report = api.get("/reports/reviews?month=2026-11", user=SUPERVISOR).json
    (market,) = report["departments"]
    assert (market["reviews"], market["bad"], market["excluded"], market["good_rate"]) == (
        1,
        0,
        1,
        1.0,
    )


def test_the_report_ranks_departments_and_flags_the_bottom_two_two_months_running(api, container):
    # good rates: zwb 1.0, scjgj 0.75, rsj 0.5, ybj 0.25 in October and November; in
    # November rsj improves to 1.0 (leaves the bottom two), so only ybj is flagged.
    months = {
        (2026, 10): {"dept-zwb": 4, "dept-scjgj": 3, "dept-rsj": 2, "dept-ybj": 1},
        (2026, 11): {"dept-zwb": 4, "dept-scjgj": 3, "dept-rsj": 4, "dept-ybj": 1},
    }
    n = 0
    for (year, month), good in months.items():
        for department, good_count in good.items():
            for i in range(4):
                n += 1
                rating = 5 if i < good_count else 1
                centre = DISTRICT if department == "dept-ybj" else None
                put_review(container, department, rating, t(year, month, 10, 10), n, centre=centre)
    report = api.get("/reports/reviews?month=2026-11", user=MARKET)
    assert report.status == 200 and report.json["final"] is False
    rows = {r["department_id"]: r for r in report.json["departments"]}
    ranks = sorted((r["rank"], r["department_id"]) for r in rows.values())
    assert [d for _, d in ranks] == ["dept-rsj", "dept-zwb", "dept-scjgj", "dept-ybj"]
    assert [d for d, r in rows.items() if r["bottom_two"]] == ["dept-scjgj", "dept-ybj"]
    assert [d for d, r in rows.items() if r["talk"]] == ["dept-ybj"]
    assert (
        rows["dept-ybj"]["good_rate"] == 0.25
        and rows["dept-ybj"]["department_name"] == "青浦区医疗保障局"
    )
    (centre,) = report.json["centres"]
    assert (centre["centre_id"], centre["reviews"], centre["bad"]) == (DISTRICT, 4, 3)

    csv = api.get("/reports/reviews?month=2026-11&format=csv", user=SUPERVISOR)
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].split(",")[:4] == ["范围", "编号", "名称", "排名"]
    assert any(line.startswith("部门,dept-ybj,青浦区医疗保障局,4,4,25.00%") for line in lines)
    assert lines[-1].startswith("中心,qp-district")
    accept = api.get(
        "/reports/reviews?month=2026-11", user=SUPERVISOR, headers={"Accept": "text/csv"}
    )
    assert accept.text == csv.text
    assert api.get("/reports/reviews?month=2026-13", user=SUPERVISOR).status == 400
    assert api.get("/reports/reviews?month=2026-11", user=CITIZEN).status == 403


def test_the_monthly_job_builds_the_report_exactly_once(container, clock, deps, notifier):
    from chalicelib.service_layer.reviews import build_monthly_report_if_due

    put_review(container, "dept-rsj", 2, t(2026, 11, 20, 10), 1)
    clock.set(t(2026, 11, 30, 12, 0))
    assert build_monthly_report_if_due(deps) == ("2026-10", True)
    clock.set(t(2026, 12, 1, 0, 5))  # Tuesday 1 December: the first working day
    assert build_monthly_report_if_due(deps) == ("2026-11", True)
    put_review(container, "dept-rsj", 5, t(2026, 11, 29, 10), 2)  # late: not in the report
    assert build_monthly_report_if_due(deps) == ("2026-11", False)
    stored = container.review_store.get_report("2026-11")
    assert [(r["id"], r["reviews"]) for r in stored["departments"]] == [("dept-rsj", 1)]
    built = [c for c in notifier.calls if c.category == "review.monthly_report"]
    assert [c.data["month"] for c in built] == ["2026-10", "2026-11"]
    assert {c.recipient_id for c in built} == {"dept-zwb"}


def test_a_low_good_rate_alerts_the_department_once_per_window(
    api, container, clock, deps, notifier
):
    from chalicelib.service_layer.reviews import on_review_created

    policy = {"good_rate_threshold": 0.8, "window_days": 30, "min_reviews": 3}
    assert api.put("/review-settings/alerts", policy, user=SUPERVISOR).status == 403
    assert api.put("/review-settings/alerts", policy, user=ADMIN).json == policy

    def rate(rating: int, n: int) -> None:
        review = put_review(container, "dept-ybj", rating, clock.now(), n)
        on_review_created(deps, review.review_id)

    rate(5, 1)
    rate(5, 2)
    rate(1, 3)  # 3 reviews, 66.7%: below 80%
    rate(1, 4)
    alerts = [c for c in notifier.calls if c.category == "review.good_rate_alert"]
    assert len(alerts) == 1 and alerts[0].recipient_id == "dept-ybj"
    assert alerts[0].data["good_rate"] == 0.6667
    clock.set(clock.now() + timedelta(days=30))  # the next window: last month's do not count
    rate(1, 5)
    rate(5, 6)
    assert len([c for c in notifier.calls if c.category == "review.good_rate_alert"]) == 1
    rate(1, 7)
    alerts = [c for c in notifier.calls if c.category == "review.good_rate_alert"]
    assert len(alerts) == 2 and alerts[1].data["window"] != alerts[0].data["window"]


def test_the_demo_seed_rates_the_closed_ticket_and_starts_its_rectification(container):
    from local.seed_reviews import seed_reviews
    from local.seed_tickets import seed_tickets

    seed_tickets(container)
    seed_reviews(container)
    seed_reviews(container)
    october = list(container.review_store.reviews_in_month("2026-10"))
    assert len(october) == 9 and sum(r.is_bad for r in october) == 2
    (november,) = container.review_store.reviews_in_month("2026-11")
    task = container.review_store.get_task(november.review_id)
    assert task.state.value == "contacted" and task.department_id == "dept-rsj"
