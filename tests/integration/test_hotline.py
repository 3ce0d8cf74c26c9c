"""The 12345 adapter end to end: signed work orders over HTTP become one ticket per order number
however often 12345 sends them; the ticket keeps the order's own deadlines on the working-day
calendar; its result goes back to 12345 (the loopback receiver plays it) through the signed,
retried webhooks and arrives once after a failed first delivery. Call transfers to a
department's specialist give answer rates that match a count by hand."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.adapters.webhook import sign_headers
from chalicelib.domain.hotline import HOTLINE_DEPARTMENT_ID
from tests.integration.helpers import WEBHOOK_SECRETS, PumpedApp

MARKET = "u-dept-scjgj"
SUPERVISOR = "u-supervisor-zhao"
ORDERS = "/integrations/12345/work-orders"
TRANSFERS = "/integrations/12345/transfers"


class Flow(PumpedApp):
    subject_keys = ("ticket_id", "order_no", "subject_id")

    def signed(
        self, path: str, payload: dict, message_id: str, secret: str | None = None
    ) -> tuple[int, dict]:
        """POST as 12345 does: Standard Webhooks signature over the exact body."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = sign_headers(
            [secret or WEBHOOK_SECRETS[HOTLINE_DEPARTMENT_ID]], message_id, int(time.time()), body
        )
        response = self.api.client.http.request(
            "POST", path, headers={"Content-Type": "application/json", **headers}, body=body
        )
        self.flush()
        return response.status_code, json.loads(response.body or b"{}")


@pytest.fixture
def flow(api, container, clock, department_webhooks) -> Flow:
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)
    return Flow(api, container, clock, department_webhooks)


def order(number: str = "12345-20261126-0001") -> dict:
    return {
        "order_no": number,
        "received_at": "2026-11-26T09:40:00+08:00",
        "description": "企业设立登记网上提交三次都被退回，来电反映",
        "caller_name": "周建国",
        "caller_mobile": "13611112222",
        "item_code": "QP-SC-101",
        "contact_days": 1,
        "resolve_days": 3,
    }


def test_an_order_sent_three_times_makes_one_ticket_with_its_deadlines(flow):
    answers = [flow.signed(ORDERS, order(), f"msg-{n}") for n in range(3)]

    assert [status for status, _ in answers] == [201, 201, 201]
    assert [body["created"] for _, body in answers] == [True, False, False]
    ticket_ids = {body["ticket_id"] for _, body in answers}
    assert len(ticket_ids) == 1
    (ticket_id,) = ticket_ids
    assert len(flow.calls("dept-scjgj", "ticket.dispatched", ticket_id)) == 1

    ticket = flow.container.ticket_store.get(ticket_id)
    hotline = ticket.details["hotline"]
    assert hotline["order_no"] == "12345-20261126-0001"
    assert ticket.channel.value == "hotline"
    # Thursday 26 November: 1 working day is Friday the 27th; 3 are Tuesday 1 December.
    assert hotline["contact_due_at"] == "2026-11-27T23:59:59+08:00"
    assert hotline["resolve_due_at"] == "2026-12-01T23:59:59+08:00"
    # The ticket's own clocks run to 12345's limits.
    resolve = ticket.clocks[ticket.resolve_key]
    assert resolve.due_at == datetime(2026, 12, 1, 23, 59, 59, tzinfo=CHINA_TZ)


def test_an_unsigned_or_wrongly_signed_order_is_refused_and_files_nothing(flow):
    status, body = flow.signed(ORDERS, order("12345-X-0002"), "m1", WEBHOOK_SECRETS["dept-rsj"])
    assert status == 401 and body["code"] == "webhook_signature"
    unsigned = flow.api.post(ORDERS, order("12345-X-0002"))
    assert unsigned.status == 401
    assert flow.container.hotline_store.order_ticket("12345-X-0002") is None


def test_the_result_reaches_12345_once_after_a_failed_first_delivery(flow):
    _, answer = flow.signed(ORDERS, order(), "msg-1")
    ticket_id = answer["ticket_id"]
    flow.post(
        f"/tickets/{ticket_id}/accept", {"contact_method": "phone", "note": "已联系来电人"}, MARKET
    )
    flow.receiver.respond_with(500, HOTLINE_DEPARTMENT_ID)
    flow.clock.advance(timedelta(hours=3))
    flow.post(
        f"/tickets/{ticket_id}/reply",
        {"answer": "已指导重新提交并当场受理", "evidence": ["evidence/1.pdf"]},
        MARKET,
    )
    (failed,) = flow.calls(HOTLINE_DEPARTMENT_ID, "hotline.result", ticket_id)
    assert failed["status"] == 500 and failed["signature_valid"]

    flow.receiver.respond_with(204, HOTLINE_DEPARTMENT_ID)
    for minutes in (1, 6, 12, 20, 30):
        flow.at(flow.clock.now() + timedelta(minutes=minutes))

    calls = flow.calls(HOTLINE_DEPARTMENT_ID, "hotline.result", ticket_id)
    delivered = [c for c in calls if c["status"] == 204]
    assert len(delivered) == 1 and len(calls) == 2
    assert {c["headers"]["webhook-id"] for c in calls} == {failed["headers"]["webhook-id"]}
    result = delivered[0]["body"]
    assert result["data"]["order_no"] == "12345-20261126-0001"
    assert result["data"]["state"] == "replied"
    assert result["data"]["answer"] == "已指导重新提交并当场受理"


def test_answer_rates_per_department_match_a_count_by_hand(flow):
    seeded = [
        # (department, answered?) offered in November 2026
        ("dept-scjgj", True),
        ("dept-scjgj", True),
        ("dept-scjgj", False),
        ("dept-rsj", True),
        ("dept-rsj", True),
        ("dept-rsj", True),
        ("dept-rsj", True),
        ("dept-ybj", False),
    ]
    for n, (department, answered) in enumerate(seeded):
        offered = datetime(2026, 11, 2 + n, 10, 0, tzinfo=CHINA_TZ)
        payload = {
            "transfer_id": f"tr-{n:04d}",
            "department_id": department,
            "offered_at": offered.isoformat(),
            "outcome": "answered" if answered else "missed",
        }
        if answered:
            payload["answered_at"] = (offered + timedelta(seconds=20)).isoformat()
        for attempt in range(2):  # a retried call is recorded once
            status, body = flow.signed(TRANSFERS, payload, f"t-{n}-{attempt}")
            assert status == 201 and body["created"] is (attempt == 0)
    # December's transfer is not November's.
    flow.signed(
        TRANSFERS,
        {
            "transfer_id": "tr-dec",
            "department_id": "dept-scjgj",
            "offered_at": "2026-12-01T10:00:00+08:00",
            "outcome": "missed",
        },
        "t-dec",
    )

    report = flow.api.get("/reports/hotline-transfers?month=2026-11", user=SUPERVISOR).json
    by_department = {r["department_id"]: r for r in report["departments"]}
    for department in ("dept-scjgj", "dept-rsj", "dept-ybj"):
        mine = [answered for d, answered in seeded if d == department]
        row = by_department[department]
        assert (row["offered"], row["answered"], row["missed"]) == (
            len(mine),
            sum(mine),
            len(mine) - sum(mine),
        )
        assert row["answer_rate"] == round(sum(mine) / len(mine), 4)
        assert row["met"] is (sum(mine) / len(mine) >= 0.9)
    overall = report["overall"]
    assert (overall["offered"], overall["answered"]) == (8, 6)
    assert overall["answer_rate"] == 0.75 and overall["met"] is False

    csv = flow.api.get("/reports/hotline-transfers?month=2026-11&format=csv", user=SUPERVISOR)
    assert csv.status == 200 and csv.text.count("\r\n") == 1 + 3 + 1
