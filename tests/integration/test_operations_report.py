"""帮办 outcomes, window handling time and the monthly operations report, on moto behind HTTP.

Help requests seeded through the routes end resolved, not resolved (one tap files a 办不成事
ticket) or abandoned; the resolution rate per team and the pick-up time match a count by hand.
A window service over its item's handling target alerts the centre's manager. The report of a
seeded month matches figures computed here from the seeded values, and the schedule keeps it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.applications import KpiFacts
from chalicelib.domain.hotline import Transfer, TransferOutcome
from chalicelib.domain.reviews import Channel, HandlingType, Review, ReviewKind

AGENT = "u-window-wang"
SUPERVISOR = "u-supervisor-zhao"
MONTH = "2026-11"
EVENTS = Path(__file__).resolve().parents[2] / "events"


def _figures(api, month: str = MONTH, user: str = SUPERVISOR) -> dict[str, dict]:
    result = api.get(f"/reports/operations?month={month}", user=user)
    assert result.status == 200, result
    return {f["key"]: f for f in result.json["figures"]}


def _help(api, clock, user: str, item: str | None, pickup: int | None, outcome: str) -> dict:
    body = {"topic": "网上提交时不会上传材料"} | ({"item_code": item} if item else {})
    created = api.post("/help-requests", body, user=user)
    assert created.status == 201, created
    request_id = created.json["request_id"]
    if pickup is not None:
        clock.advance(timedelta(seconds=pickup))
        picked = api.post(f"/help-requests/{request_id}/pick-up", user=AGENT)
        assert picked.status == 200, picked
    payload = {"outcome": outcome}
    if outcome == "not_resolved":
        payload["reason"] = "需要线下核验原件，线上无法办理"
    ended = api.post(f"/help-requests/{request_id}/outcome", payload, user=AGENT)
    assert ended.status == 200, ended
    clock.advance(timedelta(minutes=3))
    return ended.json


SEEDED_HELP = [
    # (person, item, seconds to pick-up or None, outcome)
    ("u-citizen-zhang", "QP-SC-101", 30, "resolved"),
    ("u-citizen-li", "QP-SC-101", 45, "resolved"),
    ("u-enterprise-lvjing", "QP-SC-101", 90, "not_resolved"),
    ("u-citizen-zhang", "QP-RS-203", 20, "resolved"),
    ("u-citizen-li", "QP-RS-203", 70, "resolved"),
    ("u-citizen-zhang", None, 10, "resolved"),
    ("u-citizen-li", None, 50, "not_resolved"),
    ("u-enterprise-lvjing", None, None, "abandoned"),
]


def test_help_outcomes_give_resolution_per_team_and_pickup_time_as_counted_by_hand(
    api, container, clock
):
    ended = [_help(api, clock, *seeded) for seeded in SEEDED_HELP]

    assert [e["status"] for e in ended] == [s[3] for s in SEEDED_HELP]
    assert [e["team"] for e in ended] == ["dept-scjgj"] * 3 + ["dept-rsj"] * 2 + ["dept-zwb"] * 3
    # Not resolved: a 办不成事 ticket for the person, in the same tap.
    not_resolved = [e for e in ended if e["status"] == "not_resolved"]
    assert all(e["ticket_id"] for e in not_resolved)
    ticket = container.ticket_store.get(not_resolved[0]["ticket_id"])
    assert ticket.channel.value == "live_help" and ticket.owner.user_id == "u-enterprise-lvjing"
    assert "需要线下核验原件" in ticket.description
    again = api.post(
        f"/help-requests/{not_resolved[0]['request_id']}/outcome",
        {"outcome": "resolved"},
        user=AGENT,
    )
    assert again.status == 422 and again.json["code"] == "help_already_ended"

    figures = _figures(api)
    by_team: dict[str, list[bool]] = {}
    for _, item, _, outcome in SEEDED_HELP:
        if outcome != "abandoned":
            team = {"QP-SC-101": "dept-scjgj", "QP-RS-203": "dept-rsj"}.get(item, "dept-zwb")
            by_team.setdefault(team, []).append(outcome == "resolved")
    for team, outcomes in by_team.items():
        figure = figures[f"help_resolution_rate:{team}"]
        assert figure["value"] == round(sum(outcomes) / len(outcomes), 4)
        assert figure["met"] is (sum(outcomes) / len(outcomes) >= 0.9)
    assert figures["help_resolution_rate"]["value"] == round(5 / 7, 4)
    pickups = [p for _, _, p, _ in SEEDED_HELP if p is not None]
    assert figures["help_pickup_average_seconds"]["value"] == round(sum(pickups) / len(pickups), 1)
    assert figures["help_pickup_average_seconds"]["target"] == 60


def test_a_person_may_abandon_only_their_own_request(api):
    created = api.post("/help-requests", {"topic": "怎么查询社保缴费记录"}, user="u-citizen-zhang")
    request_id = created.json["request_id"]
    other = api.post(
        f"/help-requests/{request_id}/outcome", {"outcome": "abandoned"}, user="u-citizen-li"
    )
    assert other.status == 404
    mine = api.post(
        f"/help-requests/{request_id}/outcome", {"outcome": "abandoned"}, user="u-citizen-zhang"
    )
    assert mine.status == 200 and mine.json["status"] == "abandoned"
    resolved = api.post(
        f"/help-requests/{request_id}/outcome", {"outcome": "resolved"}, user="u-citizen-zhang"
    )
    assert resolved.status == 403


# ---- the seeded month ---------------------------------------------------------------------------

APPLICATIONS = [
    # prefilled, total, machine reviewed, supplement rounds, online, completed, accepted
    (8, 10, True, 0, True, True, True),
    (5, 10, True, 1, True, True, True),
    (10, 10, False, 0, False, True, True),
    (0, 10, True, 0, True, False, False),
]
RATINGS = [5, 4, 5, 1, 3, 5]
COUNTERS = {
    "dept-scjgj": {
        "contact_judged": 4,
        "contact_on_time": 4,
        "resolve_judged": 3,
        "resolve_on_time": 2,
    },
    "dept-rsj": {
        "contact_judged": 2,
        "contact_on_time": 1,
        "resolve_judged": 1,
        "resolve_on_time": 1,
    },
}
TRANSFERS = [("dept-scjgj", True)] * 9 + [("dept-scjgj", False), ("dept-rsj", True)]
HELP = [
    ("dept-scjgj", 40, "resolved"),
    ("dept-scjgj", 80, "not_resolved"),
    ("dept-zwb", 30, "abandoned"),
]
SERVICES = [
    # complexity, wait seconds, handling seconds, the item's target minutes
    ("simple", 300, 900, 20),
    ("simple", 900, 1500, 20),
    ("complex", 1200, 2400, 45),
]


def _seed_month(container) -> None:
    for n, (prefilled, total, machine, rounds, online, completed, accepted) in enumerate(
        APPLICATIONS
    ):
        container.application_store.put_facts(
            MONTH,
            KpiFacts(
                f"app-{n}",
                "QP-SC-101",
                prefilled,
                total,
                machine,
                rounds,
                online,
                completed,
                accepted,
                3 if completed else None,
            ),
        )
    for n, rating in enumerate(RATINGS):
        container.review_store.create_review(
            Review(
                review_id=f"rv{n:06x}",
                kind=ReviewKind.INITIAL,
                handling_type=HandlingType.APPLICATION,
                handling_id=f"app-{n}",
                department_id="dept-scjgj",
                centre_id=None,
                channel=Channel.ONLINE,
                rating=rating,
                dimensions={},
                tags=(),
                comment="",
                anonymous=False,
                rater_user_id="u-citizen-zhang",
                rater_subject_id=None,
                created_at=datetime(2026, 11, 3 + n, 10, 0, tzinfo=CHINA_TZ),
            )
        )
    for department, amounts in COUNTERS.items():
        container.ticket_store.count(
            f"QP20261101-{department[-4:].upper()}",
            1,
            department,
            MONTH,
            amounts,
            container.clock.now(),
        )
    for n, (department, answered) in enumerate(TRANSFERS):
        offered = datetime(2026, 11, 2, 9, n, tzinfo=CHINA_TZ)
        container.hotline_store.record_transfer(
            Transfer(
                f"tr-{n:03d}",
                department,
                offered,
                TransferOutcome.ANSWERED if answered else TransferOutcome.MISSED,
                offered + timedelta(seconds=15) if answered else None,
            )
        )
    for n, (team, pickup, outcome) in enumerate(HELP):
        container.operations_store.put_fact(
            MONTH, "help", f"h-{n}", {"team": team, "pickup_seconds": pickup, "outcome": outcome}
        )
    for n, (complexity, wait, handling, target) in enumerate(SERVICES):
        container.operations_store.put_fact(
            MONTH,
            "handling",
            f"b-{n}",
            {
                "complexity": complexity,
                "wait_seconds": wait,
                "handling_seconds": handling,
                "target_minutes": target,
            },
        )


def _expected() -> dict[str, tuple[float | None, float]]:
    """Each figure by key: (value, target), computed from the seeded values alone."""
    apps = APPLICATIONS
    accepted = [a for a in apps if a[6]]
    completed = [a for a in apps if a[5]]
    rated = RATINGS
    contact = [
        sum(c["contact_on_time"] for c in COUNTERS.values()),
        sum(c["contact_judged"] for c in COUNTERS.values()),
    ]
    resolve = [
        sum(c["resolve_on_time"] for c in COUNTERS.values()),
        sum(c["resolve_judged"] for c in COUNTERS.values()),
    ]
    scjgj = [a for d, a in TRANSFERS if d == "dept-scjgj"]
    simple = [w / 60 for c, w, _, _ in SERVICES if c == "simple"]
    complex_ = [w / 60 for c, w, _, _ in SERVICES if c == "complex"]
    handling = [h / 60 for _, _, h, _ in SERVICES]
    return {
        "prefill_rate": (round(sum(a[0] for a in apps) / sum(a[1] for a in apps), 4), 0.70),
        "prereview_automation_rate": (round(sum(a[2] for a in apps) / len(apps), 4), 0.90),
        "first_submission_success_rate": (
            round(sum(a[3] == 0 for a in accepted) / len(accepted), 4),
            0.90,
        ),
        "online_completion_rate": (round(sum(a[4] for a in completed) / len(completed), 4), 0.88),
        "good_review_rate": (round(sum(r > 2 for r in rated) / len(rated), 4), 0.90),
        "ticket_contact_on_time_rate": (round(contact[0] / contact[1], 4), 1.0),
        "ticket_resolve_on_time_rate": (round(resolve[0] / resolve[1], 4), 1.0),
        "help_pickup_average_seconds": (round((40 + 80 + 30) / 3, 1), 60),
        "help_resolution_rate": (0.5, 0.90),
        "help_resolution_rate:dept-scjgj": (0.5, 0.90),
        "hotline_answer_rate": (round(10 / 11, 4), 0.90),
        "hotline_answer_rate:dept-scjgj": (round(sum(scjgj) / len(scjgj), 4), 0.90),
        "hotline_answer_rate:dept-rsj": (1.0, 0.90),
        "wait_average_minutes:simple": (round(sum(simple) / len(simple), 1), 10),
        "wait_average_minutes:complex": (round(sum(complex_) / len(complex_), 1), 30),
        "handling_average_minutes": (round(sum(handling) / len(handling), 1), 20),
        "handling_on_target_rate": (round(2 / 3, 4), 1.0),
    }


def test_the_report_of_a_seeded_month_matches_figures_computed_independently(api, container):
    _seed_month(container)

    figures = _figures(api)

    expected = _expected()
    assert set(figures) == set(expected)
    for key, (value, target) in expected.items():
        figure = figures[key]
        assert (figure["value"], figure["target"]) == (value, target), key
        lower_is_better = figure["unit"] in ("seconds", "minutes")
        assert figure["met"] is (value <= target if lower_is_better else value >= target), key
    assert figures["hotline_answer_rate:dept-scjgj"]["name"].endswith("（青浦区市场监督管理局）")
    # Nothing seeded in October: no value, neither met nor missed.
    october = _figures(api, "2026-10")
    assert all(f["value"] is None and f["met"] is None for f in october.values())

    csv = api.get(f"/reports/operations?month={MONTH}&format=csv", user=SUPERVISOR)
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").split("\r\n")
    assert lines[0] == "指标编号,指标,本月数值,目标值,单位,是否达标"
    assert len([line for line in lines if line]) == 1 + len(expected)

    assert api.get(f"/reports/operations?month={MONTH}", user="u-citizen-zhang").status == 403


def test_the_schedule_keeps_last_months_report_once_on_the_first_working_day(api, container, clock):
    _seed_month(container)
    event = json.loads((EVENTS / "schedule" / "operations_report.json").read_text("utf-8"))

    clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=CHINA_TZ))
    # The last day of November is still October's report's month to be built.
    assert api.client.lambda_.invoke("build_operations_report", event).payload["month"] == (
        "2026-10"
    )
    assert container.operations_store.get_report(MONTH) is None
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=CHINA_TZ))  # Tuesday, a working day
    assert api.client.lambda_.invoke("build_operations_report", event).payload == {
        "month": MONTH,
        "built": True,
    }
    # Later facts do not change a kept report, and a second run builds nothing.
    container.operations_store.put_fact(
        MONTH, "help", "late", {"team": "dept-zwb", "pickup_seconds": 5, "outcome": "resolved"}
    )
    assert api.client.lambda_.invoke("build_operations_report", event).payload["built"] is False
    kept = api.get(f"/reports/operations?month={MONTH}", user=SUPERVISOR).json
    assert kept["final"] is True
    figures = {f["key"]: f for f in kept["figures"]}
    assert figures["help_resolution_rate"]["value"] == 0.5
