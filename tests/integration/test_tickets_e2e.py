"""The issue's goal, end to end: HTTP requests, the local event pumps (stream → queue → signed
webhook on a real loopback receiver; the sweep schedule on the moved clock), in-process moto.

Happy path: file, route, notify (the department receives a correctly signed call), accept,
reply, call back, close, the person told at each step. Breach path: the clock moves past the
contact deadline, the sweep sends 催办 to the department, a working day later 督办 to the
district office, each once however often the sweep runs. And a ticket outlives a restart of
the embedded AWS through the snapshot, as `make run` does with its data directory.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.adapters.webhook import WebhookRefused, signature, verify
from tests.integration.helpers import WEBHOOK_SECRETS as SECRETS
from tests.integration.helpers import PumpedApp

CITIZEN = "u-citizen-zhang"
MARKET = "u-dept-scjgj"
SUPERVISOR = "u-supervisor-zhao"


class Flow(PumpedApp):
    subject_keys = ("ticket_id", "subject_id")

    def sweep_at(self, moment: datetime) -> None:
        assert "due-sweep" in self.at(moment)

    def act(self, ticket_id: str, action: str, user: str, payload: dict) -> dict:
        return self.post(f"/tickets/{ticket_id}/{action}", payload, user)


@pytest.fixture
def flow(api, container, clock, department_webhooks) -> Flow:
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)
    return Flow(api, container, clock, department_webhooks)


def file_ticket(flow: Flow) -> dict:
    result = flow.api.post(
        "/tickets",
        {
            "kind": "not_accepted",
            "channel": "mini_program",
            "description": "企业设立登记网上提交三次都被退回",
            "contact": {"method": "phone"},
            "item_code": "QP-SC-101",
            "item_name": "企业设立登记",
        },
        user=CITIZEN,
        headers={"Idempotency-Key": f"e2e-{flow.clock.now():%H%M%S%f}"},
    )
    assert result.status == 201, result
    flow.flush()
    return result.json


def test_file_route_notify_accept_reply_call_back_close(flow):
    ticket = file_ticket(flow)
    ticket_id = ticket["ticket_id"]
    assert ticket["state"] == "dispatched" and ticket["department_id"] == "dept-scjgj"

    (dispatched,) = flow.calls("dept-scjgj", "ticket.dispatched", ticket_id)
    assert dispatched["signature_valid"] and dispatched["status"] == 204
    headers, payload = dispatched["headers"], dispatched["body"]
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert headers["webhook-signature"] == signature(
        SECRETS["dept-scjgj"], message_id, timestamp, raw
    )
    with pytest.raises(WebhookRefused):
        verify([SECRETS["dept-rsj"]], headers, raw, now=float(timestamp))
    assert ticket_id in payload["title"] and payload["department_id"] == "dept-scjgj"
    assert payload["data"]["contact_due_at"] == "2026-11-27T23:59:59+08:00"

    flow.act(ticket_id, "accept", MARKET, {"contact_method": "phone", "note": "已电话联系办事人"})
    assert flow.inbox(CITIZEN) == ["ticket.accepted"]

    flow.clock.advance(timedelta(days=1))
    flow.act(ticket_id, "reply", MARKET, {"answer": "已重新受理", "evidence": ["evidence/1.pdf"]})
    assert flow.inbox(CITIZEN)[0] == "ticket.replied"

    flow.clock.advance(timedelta(hours=2))
    flow.act(ticket_id, "call-back", SUPERVISOR, {"satisfied": True, "note": "办事人满意"})
    flow.clock.advance(timedelta(minutes=5))
    closed = flow.act(ticket_id, "close", SUPERVISOR, {"note": "回访满意，办结"})
    assert closed["state"] == "closed"
    # Closing a ticket also invites the citizen to rate its handling (好差评); both messages
    # carry the same instant, so their order in the inbox is not defined.
    inbox = flow.inbox(CITIZEN)
    assert sorted(inbox[:2]) == ["review.invitation", "ticket.closed"]
    assert inbox[2:] == ["ticket.replied", "ticket.accepted"]
    assert [e["event"] for e in closed["timeline"]] == [
        "submit",
        "dispatch",
        "accept",
        "reply",
        "call_back_satisfied",
        "close",
    ]
    # Nothing overdue: the sweep has nothing to say about this ticket.
    flow.sweep_at(datetime(2026, 12, 10, 10, 0, tzinfo=CHINA_TZ))
    assert all(
        not call["body"]["category"].startswith("deadline.")
        for call in flow.receiver.received
        if call["body"]["data"].get("subject_id") == ticket_id
    )


def test_a_missed_contact_deadline_is_urged_then_supervised_each_once(flow):
    ticket_id = file_ticket(flow)["ticket_id"]
    assert flow.calls("dept-scjgj", "deadline.urge", ticket_id) == []

    # Saturday: Friday's contact deadline has passed. 催办 to the department.
    flow.sweep_at(datetime(2026, 11, 28, 10, 0, tzinfo=CHINA_TZ))
    (urge,) = flow.calls("dept-scjgj", "deadline.urge", ticket_id)
    assert urge["signature_valid"] and urge["body"]["data"]["kind"] == "contact"
    assert ticket_id in urge["body"]["body"]
    assert flow.calls("dept-zwb", "deadline.supervise", ticket_id) == []

    flow.sweep_at(datetime(2026, 11, 28, 10, 10, tzinfo=CHINA_TZ))
    assert len(flow.calls("dept-scjgj", "deadline.urge", ticket_id)) == 1

    # Tuesday: one working day (Monday) past the deadline. 督办 to the district office.
    flow.sweep_at(datetime(2026, 12, 1, 10, 0, tzinfo=CHINA_TZ))
    (supervise,) = flow.calls("dept-zwb", "deadline.supervise", ticket_id)
    assert supervise["signature_valid"]
    assert "青浦区市场监督管理局" in supervise["body"]["body"]
    flow.sweep_at(datetime(2026, 12, 1, 10, 10, tzinfo=CHINA_TZ))
    assert len(flow.calls("dept-zwb", "deadline.supervise", ticket_id)) == 1
    assert len(flow.calls("dept-scjgj", "deadline.urge", ticket_id)) == 1

    view = flow.api.get(f"/tickets/{ticket_id}", user=MARKET).json
    contact = next(d for d in view["deadlines"] if d["kind"] == "contact")
    assert contact["overdue"] is True
    overdue = flow.api.get("/departments/dept-scjgj/tickets?overdue=true", user=MARKET).json
    assert [t["ticket_id"] for t in overdue["items"]] == [ticket_id]

    november = flow.api.get("/reports/tickets?month=2026-11", user=SUPERVISOR).json
    december = flow.api.get("/reports/tickets?month=2026-12", user=SUPERVISOR).json
    market_nov = next(r for r in november["departments"] if r["department_id"] == "dept-scjgj")
    market_dec = next(r for r in december["departments"] if r["department_id"] == "dept-scjgj")
    assert (market_nov["received"], market_nov["overdue"]) == (1, 1)
    assert market_dec["escalations"] == 1

    # Late contact still counts: accepted late, judged late.
    flow.act(ticket_id, "accept", MARKET, {"contact_method": "phone", "note": "迟到的联系"})
    november = flow.api.get("/reports/tickets?month=2026-12", user=SUPERVISOR).json
    market_dec = next(r for r in november["departments"] if r["department_id"] == "dept-scjgj")
    assert (market_dec["contact_judged"], market_dec["contact_on_time"]) == (1, 0)


def test_a_ticket_survives_a_restart_of_the_embedded_aws(tmp_path):
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib.adapters.clock import ManualClock
    from chalicelib.bootstrap import Container, set_container
    from chalicelib.service_layer.tickets.common import TicketDeps
    from chalicelib.service_layer.tickets.reading import list_my_tickets
    from chalicelib.settings import get_settings
    from local.provision import provision
    from local.seed import seed
    from local.seed_tickets import seed_tickets
    from local.snapshot import Snapshotter

    settings = get_settings()
    clock = ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ))
    try:
        with mock_aws():
            provision(settings)
            first = Container(settings, clock=clock)
            set_container(first)
            seed(first.directory)
            seed_tickets(first)
            deps = TicketDeps.from_container(first)
            zhang = first.directory.get_user(CITIZEN).principal()
            before = list_my_tickets(deps, zhang, 10, None).items
            Snapshotter(
                settings, tmp_path, first.aws.client("dynamodb"), first.aws.client("sqs")
            ).save()

        with mock_aws():
            provision(settings)
            second = Container(settings, clock=clock)
            set_container(second)
            Snapshotter(
                settings, tmp_path, second.aws.client("dynamodb"), second.aws.client("sqs")
            ).restore()
            seed(second.directory)
            seed_tickets(second)  # idempotent: nothing new
            deps = TicketDeps.from_container(second)
            after = list_my_tickets(deps, zhang, 10, None).items
            assert [t.ticket_id for t in after] == [t.ticket_id for t in before]
            assert [t.state for t in after] == [t.state for t in before]

            dispatched = next(t for t in after if t.state.value == "dispatched")
            staff = second.directory.get_user(MARKET)
            token = second.dev_token_issuer.issue(staff.principal(), clock.now())
            with Client(app) as client:
                result = client.http.post(
                    f"/tickets/{dispatched.ticket_id}/accept",
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                    body=json.dumps({"contact_method": "phone", "note": "重启后继续办理"}),
                )
            assert result.status_code == 200, result.body
            assert json.loads(result.body)["state"] == "accepted"
    finally:
        set_container(None)
