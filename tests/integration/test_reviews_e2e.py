"""The issue's goal, end to end: HTTP requests, the local pumps (reviews stream → task →
notification outbox stream → delivery queue → signed webhook on a real loopback receiver; the
schedules on the moved clock), in-process moto.

A bad review of a window service opens a rectification task, notifies the department by a
signed webhook, escalates when its clock passes (催办 to the department, 督办 to the district
office, each once), and closes after the district office's call-back; a second rating of the
same handling is refused; the window clerk's rating of their own handling is refused.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.webhook import signature
from tests.integration.helpers import WEBHOOK_SECRETS as SECRETS
from tests.integration.helpers import PumpedApp, t

CITIZEN = "u-citizen-zhang"
CLERK = "u-window-wang"
MARKET = "u-dept-scjgj"
SUPERVISOR = "u-supervisor-zhao"
DISTRICT = "qp-district"
OFFLINE = {"整体满意度": 1, "服务效率": 2, "服务水平": 1, "服务态度": 1}


Flow = PumpedApp


@pytest.fixture
def flow(api, container, clock, department_webhooks) -> Flow:
    from local.seed_bookings import seed_bookings

    seed_bookings(container)
    return Flow(api, container, clock, department_webhooks)


def serve_at_the_window(flow: Flow) -> str:
    booked = flow.post(
        "/bookings",
        {
            "centre_id": DISTRICT,
            "item_code": "QP-SC-101",
            "channel": "counter",
            "date": "2026-11-27",
            "start": "09:00",
        },
        CITIZEN,
        status=201,
    )
    booking_id = booked["booking_id"]
    flow.clock.set(t(2026, 11, 27, 8, 50))
    flow.post(f"/bookings/{booking_id}/check-in", {}, CLERK)
    flow.clock.set(t(2026, 11, 27, 9, 5))
    flow.post(f"/bookings/{booking_id}/call", {}, CLERK)
    flow.clock.set(t(2026, 11, 27, 9, 25))
    flow.post(f"/bookings/{booking_id}/serve", {}, CLERK)
    return booking_id


def rate(flow: Flow, booking_id: str, user: str, rating: int = 1, kind: str = "initial"):
    return flow.api.post(
        "/reviews",
        {
            "handling_type": "booking",
            "handling_id": booking_id,
            "kind": kind,
            "rating": rating,
            "dimensions": OFFLINE if rating <= 2 else dict.fromkeys(OFFLINE, rating),
            "tags": ["等候时间长"],
            "comment": "窗口让我来回跑了三次，材料清单一次没说清楚" if rating <= 2 else "",
        },
        user=user,
    )


def test_a_bad_window_review_is_rectified_escalated_and_closed_after_call_back(flow):
    booking_id = serve_at_the_window(flow)
    assert flow.inbox(CITIZEN)[0] == "review.invitation"

    # The clerk who served it may not rate it; the person may, once.
    own = rate(flow, booking_id, CLERK)
    assert own.status == 403 and own.json["code"] == "own_handling"
    first = rate(flow, booking_id, CITIZEN)
    assert first.status == 201, first
    review_id = first.json["review_id"]
    assert first.json["channel"] == "offline" and first.json["department_id"] == "dept-scjgj"
    flow.flush()
    second = rate(flow, booking_id, CITIZEN, rating=5)
    assert second.status == 409 and second.json["code"] == "already_reviewed"

    # The stream opened the task and the department got a correctly signed webhook.
    (opened,) = flow.calls("dept-scjgj", "review.rectification_opened", review_id)
    assert opened["signature_valid"] and opened["status"] == 204
    raw = json.dumps(
        opened["body"], ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()
    headers = opened["headers"]
    assert headers["webhook-signature"] == signature(
        SECRETS["dept-scjgj"], headers["webhook-id"], headers["webhook-timestamp"], raw
    )
    data = opened["body"]["data"]
    assert data["contact_due_at"] == "2026-11-30T23:59:59+08:00"  # Friday + 1 working day
    assert data["rectify_due_at"] == "2026-12-04T23:59:59+08:00"  # + 5 working days
    task = flow.api.get(f"/reviews/{review_id}/rectification", user=MARKET).json
    assert task["state"] == "open" and task["real_name"] is True

    # Tuesday: the contact deadline (Monday) passed → 催办 once; Wednesday → 督办 once.
    flow.at(t(2026, 12, 1, 10, 0))
    flow.at(t(2026, 12, 1, 10, 10))
    (urge,) = flow.calls("dept-scjgj", "deadline.urge", review_id)
    assert urge["signature_valid"] and urge["body"]["data"]["kind"] == "contact"
    assert flow.calls("dept-zwb", "deadline.supervise", review_id) == []
    flow.at(t(2026, 12, 2, 10, 0))
    flow.at(t(2026, 12, 2, 10, 10))
    (supervise,) = flow.calls("dept-zwb", "deadline.supervise", review_id)
    assert "差评整改" in supervise["body"]["title"]
    assert len(flow.calls("dept-scjgj", "deadline.urge", review_id)) == 1

    # The department contacts (late), rectifies; the office calls back and accepts.
    contacted = flow.post(
        f"/reviews/{review_id}/rectification/contact",
        {"method": "phone", "note": "已电话致歉并核实情况"},
        MARKET,
    )
    assert contacted["state"] == "contacted" and contacted["contact_on_time"] is False
    rectified = flow.post(
        f"/reviews/{review_id}/rectification/rectify",
        {
            "cause": "窗口一次性告知不到位",
            "measures": "修订材料清单，开展一次性告知培训",
            "evidence": ["evidence/training.pdf"],
        },
        MARKET,
    )
    assert rectified["state"] == "submitted" and rectified["rectify_on_time"] is True
    assert flow.calls("dept-zwb", "review.rectification_submitted")
    early = flow.api.post(f"/reviews/{review_id}/rectification/accept", {}, user=SUPERVISOR)
    assert early.status == 422 and early.json["code"] == "call_back_required"
    flow.post(
        f"/reviews/{review_id}/rectification/call-back",
        {"reached": True, "satisfied": True, "note": "办事人认可整改"},
        SUPERVISOR,
    )
    closed = flow.post(
        f"/reviews/{review_id}/rectification/accept", {"note": "整改到位"}, SUPERVISOR
    )
    assert closed["state"] == "closed"
    assert [h["event"] for h in closed["history"]] == [
        "opened",
        "contacted",
        "rectified",
        "called_back",
        "accepted",
    ]
    assert all(d["state"] != "running" for d in closed["deadlines"])
    assert "review.rectification_closed" in flow.inbox(CITIZEN)
    review = flow.api.get(f"/reviews/{review_id}", user=CITIZEN).json
    assert review["rectification_state"] == "closed"

    # One 追评 after the rectification; a second is refused.
    assert rate(flow, booking_id, CITIZEN, rating=4, kind="follow_up").status == 201
    again = rate(flow, booking_id, CITIZEN, rating=4, kind="follow_up")
    assert again.status == 409

    # Nothing more is escalated once the task is closed.
    flow.at(t(2026, 12, 10, 10, 0))
    assert len(flow.calls("dept-zwb", "deadline.report", review_id)) == 0


def test_the_monthly_job_builds_last_months_report_once_and_tells_the_district_office(flow):
    booking_id = serve_at_the_window(flow)
    review_id = rate(flow, booking_id, CITIZEN).json["review_id"]
    flow.flush()
    # 2026-12-01 (Tuesday) is December's first working day.
    flow.at(t(2026, 11, 30, 23, 55))
    assert flow.calls("dept-zwb", "review.monthly_report") == [
        c
        for c in flow.calls("dept-zwb", "review.monthly_report")
        if c["body"]["data"]["month"] == "2026-10"
    ]
    flow.at(t(2026, 12, 1, 9, 0))
    flow.at(t(2026, 12, 1, 9, 10))
    november = [
        c
        for c in flow.calls("dept-zwb", "review.monthly_report")
        if c["body"]["data"]["month"] == "2026-11"
    ]
    assert len(november) == 1 and november[0]["signature_valid"]
    report = flow.api.get("/reports/reviews?month=2026-11", user=SUPERVISOR).json
    assert report["final"] is True
    (market,) = [d for d in report["departments"] if d["department_id"] == "dept-scjgj"]
    assert (market["reviews"], market["bad"], market["good_rate"]) == (1, 1, 0.0)
    (centre,) = report["centres"]
    assert centre["centre_id"] == DISTRICT and centre["centre_name"] == "青浦区政务服务中心"
    assert review_id
