"""Idempotency-Key on every create route: a replay answers the first status and body marked
`Idempotent-Replayed: true`, a reused key with another body is 409 `idempotency_key_reused`, a
duplicate arriving while the first is in flight is 409 `idempotency_in_progress`, and however
the duplicates interleave one object is made."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

CITIZEN = "u-citizen-zhang"
ENTERPRISE = "u-enterprise-lvjing"
RSJ = "u-dept-rsj"
WINDOW = "u-window-wang"
TOMORROW = "2026-11-27"  # the clock fixture starts on Thursday 2026-11-26 10:00


@dataclass
class Case:
    path: str
    user: str
    status: int
    body: Callable[[Any, int], dict]  # (api, variant) → request body; variants differ
    count: Callable[[Any], int]  # how many objects of the kind the user can see


def _ticket(api: Any, variant: int) -> dict:
    return {
        "kind": "not_accepted",
        "channel": "mini_program",
        "description": f"企业设立登记网上提交三次都被退回（第{variant}件）",
        "contact": {"method": "phone"},
        "item_code": "QP-SC-101",
        "item_name": "企业设立登记",
    }


def _booking(api: Any, variant: int) -> dict:
    start = ["09:00", "09:30", "10:00"][variant]
    return {
        "centre_id": "qp-district",
        "item_code": "QP-GA-601",
        "channel": "counter",
        "date": TOMORROW,
        "start": start,
    }


_PREFILLS: dict[int, dict] = {}


def _application(api: Any, variant: int) -> dict:
    # One prefill per test: a retry resends the very same request, token included.
    pre = _PREFILLS.get(id(api))
    if pre is None:
        pre = _PREFILLS[id(api)] = api.get("/items/QP-RS-201/prefill", user=ENTERPRISE).json
    fields = {f["name"]: f["value"] for f in pre["fields"]}
    fields["employees"] = 12 + variant
    return {
        "item_code": "QP-RS-201",
        "prefill_token": pre["prefill_token"],
        "fields": fields,
        "materials": [],
    }


def _items(api: Any, path: str, user: str) -> int:
    result = api.get(path, user=user)
    assert result.status == 200, result
    return len(result.json["items"])


CASES = {
    "tickets": Case(
        "/tickets", CITIZEN, 201, _ticket, lambda api: _items(api, "/me/tickets", CITIZEN)
    ),
    "bookings": Case(
        "/bookings", CITIZEN, 201, _booking, lambda api: _items(api, "/me/bookings", CITIZEN)
    ),
    "help-requests": Case(
        "/help-requests",
        CITIZEN,
        201,
        lambda api, v: {"topic": ["社保参保登记怎么办", "企业开办", "居住证办理"][v]},
        lambda api: _items(api, "/help-requests", WINDOW),
    ),
    "kb-questions": Case(
        "/kb/questions",
        CITIZEN,
        201,
        lambda api, v: {"text": ["灵活就业补贴断缴了还能领吗？", "社保补贴什么时候到账？"][v]},
        lambda api: _items(api, "/me/kb-questions", CITIZEN),
    ),
    "kb-articles": Case(
        "/kb/articles",
        RSJ,
        201,
        lambda api, v: {
            "question": ["打零工的人交社保有补贴吗？", "灵活就业补贴怎么申请？"][v],
            "answer": "以灵活方式就业并按规定缴纳社会保险费的就业困难人员，可以申请补贴。",
            "department_id": "dept-rsj",
            "tags": ["灵活就业"],
        },
        lambda api: _items(api, "/kb/articles?state=draft", RSJ),
    ),
    "applications": Case(
        "/applications",
        ENTERPRISE,
        202,
        _application,
        lambda api: _items(api, "/me/applications", ENTERPRISE),
    ),
}


@pytest.fixture
def seeded(api, container):
    from local.seed_applications import seed_applications
    from local.seed_bookings import seed_bookings
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)
    seed_bookings(container)
    seed_applications(container)
    yield api
    _PREFILLS.pop(id(api), None)


def _post(api: Any, case: Case, variant: int, key: str | None):
    headers = {"Idempotency-Key": key} if key else None
    return api.post(case.path, case.body(api, variant), user=case.user, headers=headers)


@pytest.mark.parametrize("name", list(CASES))
def test_a_replay_answers_the_first_status_and_body_marked_replayed(seeded, name):
    case = CASES[name]
    first = _post(seeded, case, 0, "replay-key-0001")
    again = _post(seeded, case, 0, "replay-key-0001")
    assert first.status == case.status, first
    assert "Idempotent-Replayed" not in first.headers
    assert again.status == first.status
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert case.count(seeded) == 1


@pytest.mark.parametrize("name", list(CASES))
def test_a_key_reused_with_another_body_is_refused(seeded, name):
    case = CASES[name]
    assert _post(seeded, case, 0, "reused-key-0001").status == case.status
    other = _post(seeded, case, 1, "reused-key-0001")
    assert other.status == 409 and other.json["code"] == "idempotency_key_reused", other
    assert case.count(seeded) == 1


class _HeldStore:
    """The real store, with the first request held after its work, before its answer is
    stored: a duplicate arriving then finds the key in progress."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.working = threading.Event()
        self.go_on = threading.Event()

    def claim(self, *args: Any) -> Any:
        return self.inner.claim(*args)

    def release(self, *args: Any) -> Any:
        return self.inner.release(*args)

    def complete(self, *args: Any) -> Any:
        self.working.set()
        assert self.go_on.wait(10)
        return self.inner.complete(*args)


@pytest.mark.parametrize("name", list(CASES))
def test_a_duplicate_in_flight_is_refused_and_one_object_is_made(seeded, container, name):
    case = CASES[name]
    case.body(seeded, 0)  # any preparatory read happens before the race
    held = _HeldStore(container.idempotency_store)
    container.idempotency_store = held
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(_post(seeded, case, 0, "race-key-01")))
    first.start()
    try:
        assert held.working.wait(10)
        duplicate = _post(seeded, case, 0, "race-key-01")
    finally:
        held.go_on.set()
        first.join(10)
    assert duplicate.status == 409 and duplicate.json["code"] == "idempotency_in_progress"
    assert answers[0].status == case.status, answers[0]
    later = _post(seeded, case, 0, "race-key-01")
    assert later.json == answers[0].json and later.headers["Idempotent-Replayed"] == "true"
    assert case.count(seeded) == 1


@pytest.mark.parametrize("name", ["tickets", "bookings", "help-requests", "applications"])
def test_a_rerun_after_the_first_run_died_finds_the_object_it_made(seeded, container, name):
    """The first run made its object, then its process died before storing the answer; once
    the in-progress claim lapses a retry runs again and answers the same object."""
    case = CASES[name]
    first = _post(seeded, case, 0, "crash-key-0001")
    assert first.status == case.status
    record_id = f"{case.user}#crash-key-0001"
    client = container.aws.client("dynamodb")
    table = container.settings.resource_name("idempotency")
    client.update_item(
        TableName=table,
        Key={"id": {"S": record_id}},
        UpdateExpression="SET #s = :p, in_progress_expiration = :past REMOVE #d",
        ExpressionAttributeNames={"#s": "status", "#d": "data"},
        ExpressionAttributeValues={":p": {"S": "INPROGRESS"}, ":past": {"N": "0"}},
    )
    again = _post(seeded, case, 0, "crash-key-0001")
    assert again.status == case.status, again
    assert "Idempotent-Replayed" not in again.headers
    id_field = next(k for k in first.json if k.endswith("_id") and k != "department_id")
    assert again.json[id_field] == first.json[id_field]
    assert case.count(seeded) == 1


def test_a_failed_request_releases_its_key(seeded):
    case = CASES["bookings"]
    body = dict(_booking(seeded, 0), date="2026-11-28")  # a Saturday: closed
    refused = seeded.post("/bookings", body, user=CITIZEN, headers={"Idempotency-Key": "k-fail-01"})
    assert refused.status >= 400 and refused.status != 409
    ok = _post(seeded, case, 0, "k-fail-01")
    assert ok.status == 201 and "Idempotent-Replayed" not in ok.headers


def test_the_same_key_of_two_callers_is_two_requests(seeded):
    case = CASES["tickets"]
    mine = _post(seeded, case, 0, "shared-key-0001")
    headers = {"Idempotency-Key": "shared-key-0001"}
    theirs = seeded.post("/tickets", _ticket(seeded, 0), user="u-citizen-li", headers=headers)
    assert (mine.status, theirs.status) == (201, 201)
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json["ticket_id"] != theirs.json["ticket_id"]


def test_every_create_route_declares_the_idempotency_key():
    import app  # noqa: F401  (registers every route)
    from chalicelib.entrypoints.http.routing import ROUTES

    creating = [
        s for s in ROUTES if s.method == "POST" and s.status in (201, 202) and not s.local_only
    ]
    assert len(creating) >= 10
    assert [s.path for s in creating if s.idempotency is None] == []
