"""One retry behaviour for every create and state change (docs/glossary.md, "Retries"): a
repeat of a request with the same Idempotency-Key answers what the first answered, marked
`Idempotent-Replayed: true` when the first succeeded; a few decisions are also safe to repeat
without a key."""

from __future__ import annotations

import re

import pytest

CITIZEN = "u-citizen-zhang"
ADMIN = "u-admin"
MARKET = "u-dept-scjgj"
SUPERVISOR = "u-supervisor-zhao"
TOMORROW = "2026-11-27"  # the clock fixture starts on Thursday 2026-11-26 10:00
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes():
    import app  # noqa: F401  (registers every route)
    from chalicelib.entrypoints.http.routing import ROUTES

    return [spec for spec in ROUTES if spec.method in WRITE_METHODS]


def _comparable(result) -> tuple[int, object]:
    body = result.json if result.json is not None else result.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "request_id"}
    return result.status, body


def test_every_create_and_state_change_takes_an_idempotency_key():
    routes = _write_routes()
    assert len(routes) > 50
    missing = [f"{s.method} {s.path}" for s in routes if s.idempotency is None]
    assert missing == []


@pytest.fixture
def rules(container):
    from local.seed_bookings import seed_bookings
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)
    seed_bookings(container)


def _ticket(api) -> dict:
    body = {
        "kind": "not_accepted",
        "channel": "mini_program",
        "description": "企业设立登记网上提交三次都被退回",
        "contact": {"method": "phone"},
        "item_code": "QP-SC-101",
    }
    created = api.post("/tickets", body, user=CITIZEN)
    assert created.status == 201, created
    return created.json


def test_every_write_route_answers_a_keyed_repeat_as_it_answered_the_first(api, rules):
    """Walks every POST/PUT/DELETE route twice with one key; whatever the first answered
    (a success, a refusal of an empty body, a missing object), the repeat answers the same."""
    ticket_id = _ticket(api)["ticket_id"]
    booking = api.post(
        "/bookings",
        {"centre_id": "qp-district", "item_code": "QP-GA-601", "date": TOMORROW, "start": "10:00"},
        user=CITIZEN,
    )
    assert booking.status == 201, booking
    known = {"ticket_id": ticket_id, "booking_id": booking.json["booking_id"]}
    walked = 0
    for n, spec in enumerate(_write_routes()):
        path = re.sub(
            r"\{(\w+)\}", lambda m: known.get(m.group(1), f"no-such-{m.group(1)}"), spec.path
        )
        if spec.path.startswith("/dev/clock"):
            continue  # moving the shared demo clock would change every later answer
        user = None if spec.public else (CITIZEN if "/bookings" in spec.path else ADMIN)
        headers = {"Idempotency-Key": f"walk-{n:04d}-key"}
        first = api.request(spec.method, path, user=user, body={}, headers=headers)
        second = api.request(spec.method, path, user=user, body={}, headers=headers)
        assert _comparable(second) == _comparable(first), (spec.method, spec.path, first, second)
        if 200 <= first.status < 300:
            assert second.headers.get("Idempotent-Replayed") == "true", (spec.path, second)
        walked += 1
    assert walked == len(_write_routes()) - 1


def test_a_ticket_handled_by_a_client_that_retries_every_step(api, rules):
    """Each step sent twice with its key: the second answers the first status and body, and
    the ticket moves once."""
    ticket = _ticket(api)
    assert ticket["department_id"] == "dept-scjgj", ticket
    steps = [
        ("accept", MARKET, {"contact_method": "phone", "note": "已电话联系企业经办人。"}),
        ("reply", MARKET, {"answer": "已说明退回原因并协助重新提交。", "evidence": ["e/1.pdf"]}),
        ("call-back", SUPERVISOR, {"satisfied": True, "note": "企业表示满意。"}),
        ("close", SUPERVISOR, {"note": ""}),
    ]
    for n, (action, user, body) in enumerate(steps):
        path = f"/tickets/{ticket['ticket_id']}/{action}"
        headers = {"Idempotency-Key": f"ticket-step-{n}-{action}"}
        first = api.post(path, body, user=user, headers=headers)
        assert first.status == 200, (action, first)
        second = api.post(path, body, user=user, headers=headers)
        assert (second.status, second.json) == (first.status, first.json), action
        assert second.headers.get("Idempotent-Replayed") == "true"
    final = api.get(f"/tickets/{ticket['ticket_id']}", user=CITIZEN).json
    assert final["state"] == "closed"
    assert [e["event"] for e in final["timeline"]].count("accept") == 1


def test_cancelling_a_booking_twice_answers_the_cancellation_without_a_key(api, rules):
    body = {"centre_id": "qp-district", "item_code": "QP-GA-601", "date": TOMORROW}
    booked = api.post("/bookings", {**body, "start": "10:30"}, user=CITIZEN)
    assert booked.status == 201, booked
    path = f"/bookings/{booked.json['booking_id']}"
    first = api.delete(path, user=CITIZEN)
    second = api.delete(path, user=CITIZEN)
    assert first.status == 200 and first.json["status"] == "cancelled", first
    assert (second.status, second.json) == (first.status, first.json)
