"""办不成事 tickets over HTTP on moto: intake, idempotency, validation, authorisation,
transitions and their clocks, department lists, the dispatcher queue, routing rules, reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.tickets.ticket import ContactMethod

PHONE = ContactMethod.PHONE

CITIZEN = "u-citizen-zhang"
OTHER_CITIZEN = "u-citizen-li"
MARKET = "u-dept-scjgj"  # staff of dept-scjgj
HR = "u-dept-rsj"  # staff of dept-rsj
DISPATCHER = "u-dispatcher-chen"
SUPERVISOR = "u-supervisor-zhao"
WINDOW = "u-window-wang"
ADMIN = "u-admin"


@pytest.fixture(autouse=True)
def rules(container):
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)


def body(**overrides) -> dict:
    values = {
        "kind": "not_accepted",
        "channel": "mini_program",
        "description": "企业设立登记网上提交三次都被退回",
        "contact": {"method": "phone"},
        "item_code": "QP-SC-101",
        "item_name": "企业设立登记",
    }
    values.update(overrides)
    return values


def file(api, user: str = CITIZEN, key: str | None = None, **overrides):
    headers = {"Idempotency-Key": key} if key else None
    return api.post("/tickets", body(**overrides), user=user, headers=headers)


def filed(api, **kw) -> dict:
    result = file(api, **kw)
    assert result.status == 201, result
    return result.json


def act(api, ticket_id: str, action: str, user: str, payload: dict):
    return api.post(f"/tickets/{ticket_id}/{action}", payload, user=user)


def ok(result) -> dict:
    assert result.status == 200, result
    return result.json


ACCEPT = {"contact_method": "phone", "note": "已电话联系办事人", "staff_phone": "13900001111"}
REPLY = {"answer": "已核实并重新受理", "evidence": ["evidence/1.pdf"]}


def deadline(view: dict, kind: str) -> dict:
    return next(d for d in view["deadlines"] if d["kind"] == kind and d["state"] != "cancelled")


# ---- intake -------------------------------------------------------------------------------


def test_a_ticket_is_routed_by_the_first_matching_rule_with_its_deadlines(api):
    ticket = filed(api)
    assert ticket["state"] == "dispatched"
    assert ticket["department_id"] == "dept-scjgj"
    assert ticket["routing"] == {"rule_id": "market-items", "rule_version": 1, "ruleset_version": 1}
    assert deadline(ticket, "contact")["due_at"] == "2026-11-27T23:59:59+08:00"
    assert deadline(ticket, "resolve")["due_at"] == "2026-12-03T23:59:59+08:00"
    assert [e["event"] for e in ticket["timeline"]] == ["submit", "dispatch"]


def test_a_retried_intake_replays_the_first_answer(api):
    first = file(api, key="intake-key-0001")
    again = file(api, key="intake-key-0001")
    assert (first.status, again.status) == (201, 201)
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    mine = api.get("/me/tickets", user=CITIZEN).json["items"]
    assert [t["ticket_id"] for t in mine] == [first.json["ticket_id"]]


def test_the_same_key_with_another_request_is_a_conflict(api):
    assert file(api, key="intake-key-0002").status == 201
    result = file(api, key="intake-key-0002", description="另一件完全不同的事情")
    assert result.status == 409 and result.json["code"] == "idempotency_key_reused"


def test_the_same_key_of_another_person_is_another_ticket(api):
    mine = file(api, key="intake-key-0003").json
    theirs = file(api, user=OTHER_CITIZEN, key="intake-key-0003").json
    assert mine["ticket_id"] != theirs["ticket_id"]


def test_a_similar_open_ticket_is_reported_as_a_possible_duplicate_not_merged(api):
    first = filed(api)
    second = filed(api, description="还是企业设立登记的问题，仍然被退回")
    assert second["possible_duplicates"] == [first["ticket_id"]]
    assert second["ticket_id"] != first["ticket_id"]
    other_item = filed(api, item_code="QP-SC-104", item_name="食品经营许可")
    assert other_item["possible_duplicates"] == []


def test_an_unmatched_ticket_waits_in_the_dispatcher_queue_for_manual_dispatch(api):
    ticket = filed(api, kind="cross_department", item_code=None, item_name=None)
    assert ticket["state"] == "submitted" and ticket["deadlines"] == []
    queue = api.get("/dispatcher/tickets?queue=unrouted", user=DISPATCHER).json["items"]
    assert ticket["ticket_id"] in [t["ticket_id"] for t in queue]

    routed = ok(
        act(
            api,
            ticket["ticket_id"],
            "dispatch",
            DISPATCHER,
            {"department_id": "dept-rsj", "complexity": "complex", "note": "牵头部门"},
        )
    )
    assert routed["state"] == "dispatched" and routed["complexity"] == "complex"
    assert deadline(routed, "resolve")["due_at"] == "2026-12-17T23:59:59+08:00"  # 15 wd
    queue = api.get("/dispatcher/tickets?queue=unrouted", user=DISPATCHER).json["items"]
    assert ticket["ticket_id"] not in [t["ticket_id"] for t in queue]


def test_window_staff_file_for_a_person_who_then_sees_it_as_their_own(api):
    ticket = filed(
        api,
        user=WINDOW,
        channel="window",
        contact={"method": "phone", "mobile": "13998765432"},
        on_behalf_of={"name": "李秀英", "subject_id": "310118194801150026"},
        item_code="QP-RS-204",
        item_name="社会保障卡申领",
    )
    assert ticket["channel"] == "window" and ticket["department_id"] == "dept-rsj"
    mine = api.get("/me/tickets", user=OTHER_CITIZEN).json["items"]
    assert [t["ticket_id"] for t in mine] == [ticket["ticket_id"]]
    assert api.get(f"/tickets/{ticket['ticket_id']}", user=OTHER_CITIZEN).status == 200


@pytest.mark.parametrize(
    "user,overrides,code",
    [
        (CITIZEN, {"description": ""}, "validation_failed"),
        (CITIZEN, {"kind": "complaint"}, "validation_failed"),
        (CITIZEN, {"channel": "window"}, "channel_not_allowed"),
        (
            CITIZEN,
            {"on_behalf_of": {"name": "李秀英", "subject_id": "310118194801150026"}},
            "on_behalf_not_allowed",
        ),
        (WINDOW, {"channel": "window"}, "on_behalf_required"),
        (
            WINDOW,
            {
                "channel": "hotline",
                "on_behalf_of": {"name": "李", "subject_id": "310118194801150027"},
            },
            "validation_failed",
        ),
        (CITIZEN, {"contact": {"method": "sms", "mobile": "12345"}}, "validation_failed"),
        (CITIZEN, {"attachments": ["../../etc/passwd"]}, "validation_failed"),
    ],
    ids=[
        "empty-description",
        "unknown-kind",
        "public-at-window",
        "public-on-behalf",
        "staff-without-person",
        "bad-id-number",
        "bad-mobile",
        "bad-attachment",
    ],
)
def test_bad_intakes_are_refused_and_write_nothing(api, user, overrides, code):
    result = file(api, user=user, **overrides)
    assert result.status == 400, result
    assert result.json["code"] == code
    assert api.get("/me/tickets", user=CITIZEN).json["items"] == []


def test_a_malformed_idempotency_key_is_refused(api):
    result = file(api, key="bad key!")
    assert result.status == 400 and result.json["code"] == "invalid_idempotency_key"


def test_filing_needs_a_token_and_a_filing_role(api):
    assert api.post("/tickets", body()).status == 401
    assert file(api, user=MARKET).status == 403


# ---- authorisation and views --------------------------------------------------------------


def test_a_person_never_reads_another_persons_ticket(api):
    ticket = filed(api)
    result = api.get(f"/tickets/{ticket['ticket_id']}", user=OTHER_CITIZEN)
    assert result.status == 404 and result.json["code"] == "ticket_not_found"
    assert api.get("/tickets/QP20261126-ZZZZZZZZ", user=CITIZEN).json["code"] == "ticket_not_found"
    assert api.get("/tickets/not-an-id", user=CITIZEN).status == 404
    assert api.get("/me/tickets", user=OTHER_CITIZEN).json["items"] == []


def test_another_department_cannot_see_or_handle_the_ticket(api):
    ticket = filed(api)
    assert api.get(f"/tickets/{ticket['ticket_id']}", user=HR).status == 404
    assert act(api, ticket["ticket_id"], "accept", HR, ACCEPT).status == 404


def test_a_role_the_table_does_not_allow_is_403(api):
    ticket = filed(api)
    result = act(api, ticket["ticket_id"], "accept", CITIZEN, ACCEPT)
    assert result.status == 403 and result.json["code"] == "transition_forbidden"


def test_an_illegal_transition_is_409_with_a_chinese_message(api):
    ticket = filed(api)
    result = act(api, ticket["ticket_id"], "reply", MARKET, REPLY)
    assert result.status == 409
    assert result.json["code"] == "illegal_transition"
    assert "已派单" in result.json["message"] and "答复" in result.json["message"]


def test_the_person_sees_staff_masked_and_staff_see_the_person_masked(api):
    ticket = filed(api)
    ok(act(api, ticket["ticket_id"], "accept", MARKET, ACCEPT))

    mine = api.get(f"/tickets/{ticket['ticket_id']}", user=CITIZEN).json
    assert mine["first_contact"]["by_name"] == "刘*"
    assert mine["first_contact"]["staff_phone"] == "139****1111"
    assert "by" not in mine["first_contact"]
    accept_entry = next(e for e in mine["timeline"] if e["event"] == "accept")
    assert accept_entry["actor_name"] == "刘*"
    assert mine["owner"]["subject_id"] == "310118198503121233"

    staff = api.get(f"/tickets/{ticket['ticket_id']}", user=MARKET).json
    assert staff["first_contact"]["by_name"] == "刘强"
    assert staff["owner"]["subject_id"] == "310118********1233"
    assert staff["owner"]["mobile"] == "13812345678"  # to reach the person
    assert staff["allowed_actions"] == ["await_person", "reply", "transfer", "request_return"]


# ---- handling -----------------------------------------------------------------------------


def test_accept_reply_call_back_close_with_clocks_and_audit(api, container, clock):
    ticket_id = filed(api)["ticket_id"]
    accepted = ok(act(api, ticket_id, "accept", MARKET, ACCEPT))
    contact = next(d for d in accepted["deadlines"] if d["kind"] == "contact")
    assert contact["state"] == "met"

    clock.advance(timedelta(days=1))
    replied = ok(act(api, ticket_id, "reply", MARKET, REPLY))
    assert next(d for d in replied["deadlines"] if d["kind"] == "resolve")["state"] == "met"
    call_back = deadline(replied, "call_back")
    assert call_back["department_id"] == "dept-zwb" and call_back["state"] == "running"

    assert act(api, ticket_id, "call-back", MARKET, {"satisfied": True, "note": "x"}).status == 403
    called = ok(act(api, ticket_id, "call-back", SUPERVISOR, {"satisfied": True, "note": "满意"}))
    assert called["state"] == "called_back" and called["call_back"]["satisfied"] is True
    closed = ok(act(api, ticket_id, "close", SUPERVISOR, {"note": "办结"}))
    assert closed["state"] == "closed"
    assert all(d["state"] in ("met", "cancelled") for d in closed["deadlines"])

    from tests.integration.audit_helpers import audit_records

    records = audit_records(container, "ticket")
    actions = [r.action for r in records if r.subject_id == ticket_id]
    assert actions == [
        "ticket.submit",
        "ticket.dispatch",
        "ticket.accept",
        "ticket.reply",
        "ticket.call_back_satisfied",
        "ticket.close",
    ]
    accept_record = next(r for r in records if r.action == "ticket.accept")
    assert (accept_record.actor_id, accept_record.actor_role) == (MARKET, "department_staff")


def test_waiting_for_the_person_pauses_the_resolve_deadline(api, clock):
    ticket_id = filed(api)["ticket_id"]
    ok(act(api, ticket_id, "accept", MARKET, ACCEPT))
    waiting = ok(act(api, ticket_id, "await-person", MARKET, {"reason": "请补充营业场所证明"}))
    assert waiting["state"] == "awaiting_person"
    assert deadline(waiting, "resolve")["state"] == "paused"
    before = deadline(waiting, "resolve")["due_at"]

    clock.advance(timedelta(days=7))  # Thursday to Thursday: 5 working days waited
    back = ok(act(api, ticket_id, "person-responded", CITIZEN, {"note": "已上传"}))
    assert back["state"] == "accepted"
    resolve = deadline(back, "resolve")
    assert resolve["state"] == "running"
    assert resolve["due_at"] > before and resolve["due_at"] == "2026-12-10T23:59:59+08:00"


def test_transfer_moves_the_ticket_and_its_handoff_clocks_to_the_new_department(api):
    ticket_id = filed(api)["ticket_id"]
    moved = ok(
        act(api, ticket_id, "transfer", MARKET, {"department_id": "dept-rsj", "reason": "属人社"})
    )
    assert moved["department_id"] == "dept-rsj" and moved["state"] == "dispatched"
    states = {(d["kind"], d["department_id"]): d["state"] for d in moved["deadlines"]}
    assert states[("contact", "dept-scjgj")] == "cancelled"
    assert states[("contact", "dept-rsj")] == "running"
    assert api.get(f"/tickets/{ticket_id}", user=MARKET).status == 404
    assert act(api, ticket_id, "accept", HR, ACCEPT).status == 200
    unknown = act(api, ticket_id, "transfer", HR, {"department_id": "dept-none", "reason": "x"})
    assert unknown.status == 400 and unknown.json["code"] == "department_not_found"


def test_a_return_needs_the_dispatchers_decision(api):
    ticket_id = filed(api)["ticket_id"]
    requested = ok(act(api, ticket_id, "return", MARKET, {"reason": "不属于本部门职责"}))
    assert requested["state"] == "return_requested"
    queue = api.get("/dispatcher/tickets?queue=return", user=DISPATCHER).json["items"]
    assert [t["ticket_id"] for t in queue] == [ticket_id]
    assert (
        act(api, ticket_id, "return-decision", MARKET, {"accept": True, "note": "x"}).status == 403
    )

    rejected = ok(
        act(api, ticket_id, "return-decision", DISPATCHER, {"accept": False, "note": "属本部门"})
    )
    assert rejected["state"] == "dispatched"
    ok(act(api, ticket_id, "return", MARKET, {"reason": "确实不属于本部门"}))
    accepted = ok(
        act(api, ticket_id, "return-decision", DISPATCHER, {"accept": True, "note": "同意"})
    )
    assert accepted["state"] == "submitted" and accepted["department_id"] is None
    assert all(d["state"] != "running" for d in accepted["deadlines"])
    queue = api.get("/dispatcher/tickets?queue=unrouted", user=DISPATCHER).json["items"]
    assert ticket_id in [t["ticket_id"] for t in queue]


def test_complex_tickets_get_an_extension_only_with_the_dispatchers_approval(api):
    ticket_id = filed(api)["ticket_id"]
    simple = act(api, ticket_id, "extension", MARKET, {"days": 5, "reason": "需现场核查"})
    assert simple.status == 409  # not accepted yet
    ok(act(api, ticket_id, "accept", MARKET, ACCEPT))
    simple = act(api, ticket_id, "extension", MARKET, {"days": 5, "reason": "需现场核查"})
    assert simple.status == 422 and simple.json["code"] == "extension_not_allowed"

    made_complex = ok(
        act(api, ticket_id, "complexity", DISPATCHER, {"complexity": "complex", "reason": "多部门"})
    )
    assert deadline(made_complex, "resolve")["due_at"] == "2026-12-17T23:59:59+08:00"
    ok(act(api, ticket_id, "extension", MARKET, {"days": 5, "reason": "需现场核查"}))
    queue = api.get("/dispatcher/tickets?queue=extension", user=DISPATCHER).json["items"]
    assert [t["ticket_id"] for t in queue] == [ticket_id]
    approved = ok(
        act(api, ticket_id, "extension-decision", DISPATCHER, {"approve": True, "note": "同意"})
    )
    resolve = deadline(approved, "resolve")
    assert resolve["extension_days"] == 5 and resolve["due_at"] == "2026-12-24T23:59:59+08:00"
    assert api.get("/dispatcher/tickets?queue=extension", user=DISPATCHER).json["items"] == []


def test_the_person_reopens_and_the_same_department_handles_it_again(api):
    ticket_id = filed(api)["ticket_id"]
    ok(act(api, ticket_id, "accept", MARKET, ACCEPT))
    ok(act(api, ticket_id, "reply", MARKET, REPLY))
    assert act(api, ticket_id, "reopen", OTHER_CITIZEN, {"reason": "x"}).status == 404
    reopened = ok(act(api, ticket_id, "reopen", CITIZEN, {"reason": "问题并没有解决"}))
    assert reopened["state"] == "reopened" and reopened["department_id"] == "dept-scjgj"
    kinds = {(d["kind"], d["state"]) for d in reopened["deadlines"]}
    assert ("call_back", "cancelled") in kinds and ("contact", "running") in kinds
    assert ok(act(api, ticket_id, "accept", MARKET, ACCEPT))["state"] == "accepted"


def test_concurrent_transitions_cannot_both_win(api, container):
    from chalicelib.domain.errors import Conflict
    from chalicelib.domain.tickets.transitions import accept, transfer

    ticket_id = filed(api)["ticket_id"]
    store = container.ticket_store
    stale = store.get(ticket_id)
    staff = container.directory.get_user(MARKET).principal()
    now = container.clock.now()
    store.save(accept(stale, staff, now, contact_method=PHONE, note="第一个"))
    with pytest.raises(Conflict) as raised:
        store.save(
            transfer(
                stale, staff, now, department_id="dept-rsj", department_name=None, reason="第二个"
            )
        )
    assert raised.value.code == "ticket_changed"
    assert store.get(ticket_id).state.value == "accepted"


def test_a_transition_that_lost_a_race_is_judged_again_on_the_fresh_ticket(api, container):
    """The loser re-reads: accepting an already accepted ticket is an illegal transition."""
    from chalicelib.service_layer.tickets import transitions
    from chalicelib.service_layer.tickets.common import TicketDeps

    ticket_id = filed(api)["ticket_id"]
    deps = TicketDeps.from_container(container)
    real_get = deps.tickets.get
    stale = real_get(ticket_id)
    calls = {"n": 0}

    class StaleFirstRead:
        def __getattr__(self, name):
            return getattr(container.ticket_store, name)

        def get(self, wanted):
            calls["n"] += 1
            if calls["n"] == 1:
                ok(act(api, ticket_id, "accept", MARKET, ACCEPT))  # the winner
                return stale
            return real_get(wanted)

    deps.tickets = StaleFirstRead()
    staff = container.directory.get_user(MARKET).principal()
    from chalicelib.domain.errors import Conflict
    from chalicelib.domain.tickets.ticket import ContactMethod

    with pytest.raises(Conflict) as raised:
        transitions.accept(deps, staff, ticket_id, contact_method=ContactMethod.PHONE, note="慢了")
    assert raised.value.code == "illegal_transition"
    accepts = [e for e in real_get(ticket_id).timeline if e.event.value == "accept"]
    assert len(accepts) == 1


def test_effects_left_undone_by_a_crash_are_applied_before_the_next_change(api, container):
    from chalicelib.service_layer.tickets.common import TicketDeps
    from chalicelib.service_layer.tickets.transitions import reply

    ticket_id = filed(api)["ticket_id"]
    store = container.ticket_store
    staff = container.directory.get_user(MARKET).principal()
    deps = TicketDeps.from_container(container)
    # Store the accept but "crash" before its effects: the contact clock keeps running.
    from chalicelib.domain.tickets.transitions import accept

    store.save(
        accept(
            store.get(ticket_id), staff, container.clock.now(), contact_method=PHONE, note="已联系"
        )
    )
    assert store.get(ticket_id).pending_effects
    replied = reply(deps, staff, ticket_id, answer="已办理", evidence=("e/1",))
    assert not replied.pending_effects
    states = {ref.kind: ref.state for ref in replied.clocks.values()}
    assert states == {"contact": "met", "resolve": "met", "call_back": "running"}


# ---- lists ------------------------------------------------------------------------------


def test_the_department_list_filters_by_state_overdue_and_due_before(api, clock):
    first = filed(api)["ticket_id"]
    clock.advance(timedelta(days=1))  # Friday
    second = filed(api, description="第二件：仍然被退回")["ticket_id"]
    ok(act(api, second, "accept", MARKET, ACCEPT))
    path = "/departments/dept-scjgj/tickets"

    everything = api.get(path, user=MARKET).json["items"]
    assert [t["ticket_id"] for t in everything] == [first, second]  # nearest deadline first
    dispatched = api.get(f"{path}?state=dispatched", user=MARKET).json["items"]
    assert [t["ticket_id"] for t in dispatched] == [first]
    soon = api.get(f"{path}?due_before=2026-11-28", user=MARKET).json["items"]
    assert [t["ticket_id"] for t in soon] == [first]
    assert api.get(f"{path}?overdue=true", user=MARKET).json["items"] == []

    clock.advance(timedelta(days=1))  # Saturday: the first ticket's contact deadline passed
    overdue = api.get(f"{path}?overdue=true", user=MARKET).json["items"]
    assert [(t["ticket_id"], t["overdue"]) for t in overdue] == [(first, True)]
    # The list row says what the list screen shows; the ticket and /clocks agree on the state.
    assert overdue[0]["next_deadline_state"] == "breached"
    assert (overdue[0]["latest_event"], overdue[0]["item_code"]) == ("dispatch", "QP-SC-101")
    ticket = api.get(f"/tickets/{first}", user=MARKET).json
    contact = next(d for d in ticket["deadlines"] if d["kind"] == "contact")
    assert (contact["state"], contact["overdue"]) == ("breached", True)
    clocks = api.get(f"/clocks?subject_type=ticket&subject_id={first}", user=SUPERVISOR).json
    (clock_row,) = [c for c in clocks["items"] if c["kind"] == "contact"]
    assert (clock_row["state"], clock_row["overdue"]) == ("breached", True)
    mine = api.get("/me/tickets", user=CITIZEN).json["items"]
    row = next(t for t in mine if t["ticket_id"] == first)
    assert row["next_deadline_state"] == "breached" and row["latest_event_at"]
    also = api.get(f"{path}?overdue=true&state=accepted", user=MARKET).json["items"]
    assert also == []


def test_the_department_list_pages_and_refuses_another_lists_cursor(api):
    for n in range(3):
        filed(api, description=f"第{n}件：企业设立登记被退回")
    path = "/departments/dept-scjgj/tickets"
    page = api.get(f"{path}?limit=2", user=MARKET).json
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get(f"{path}?limit=2&cursor={page['next_cursor']}", user=MARKET).json
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    stolen = api.get(f"/departments/dept-rsj/tickets?cursor={page['next_cursor']}", user=DISPATCHER)
    assert stolen.status == 400 and stolen.json["code"] == "invalid_cursor"


def test_department_lists_are_for_that_department_and_the_district_office(api):
    filed(api)
    assert api.get("/departments/dept-scjgj/tickets", user=HR).status == 404
    assert api.get("/departments/dept-scjgj/tickets", user=CITIZEN).status == 403
    assert len(api.get("/departments/dept-scjgj/tickets", user=SUPERVISOR).json["items"]) == 1
    bad = api.get("/departments/dept-scjgj/tickets?state=unknown", user=MARKET)
    assert bad.status == 400 and bad.json["code"] == "validation_failed"


# ---- routing rules ----------------------------------------------------------------------


def test_admins_publish_versioned_rules_and_tickets_record_the_rule_that_routed_them(api):
    current = api.get("/admin/ticket-routing", user=DISPATCHER).json
    assert current["version"] == 1
    rules = current["rules"]
    for rule in rules:
        rule.pop("version")
    rules.insert(
        0,
        {
            "rule_id": "licence-keyword",
            "name": "营业执照关键词",
            "department_id": "dept-rsj",
            "keywords": ["营业执照"],
        },
    )
    update = {
        "expected_version": 1,
        "rules": rules,
        "item_departments": {"QP-SC-101": "dept-scjgj"},
    }
    assert api.put("/admin/ticket-routing", update, user=DISPATCHER).status == 403
    published = api.put("/admin/ticket-routing", update, user=ADMIN)
    assert published.status == 200, published
    assert published.json["version"] == 2
    assert {r["rule_id"]: r["version"] for r in published.json["rules"]}["market-items"] == 1

    stale = api.put("/admin/ticket-routing", update, user=ADMIN)
    assert stale.status == 409 and stale.json["code"] == "ruleset_changed"

    ticket = filed(api, description="营业执照办不下来")
    assert ticket["department_id"] == "dept-rsj"
    assert ticket["routing"] == {
        "rule_id": "licence-keyword",
        "rule_version": 1,
        "ruleset_version": 2,
    }


def test_rules_naming_an_unknown_department_are_refused(api):
    update = {
        "expected_version": 1,
        "rules": [{"rule_id": "x", "name": "x", "department_id": "dept-none"}],
    }
    result = api.put("/admin/ticket-routing", update, user=ADMIN)
    assert result.status == 400 and result.json["code"] == "invalid_routing_rules"


# ---- reports ----------------------------------------------------------------------------


def test_the_monthly_report_counts_per_department(api, clock):
    on_time = filed(api)["ticket_id"]
    ok(act(api, on_time, "accept", MARKET, ACCEPT))
    ok(act(api, on_time, "reply", MARKET, REPLY))
    ok(act(api, on_time, "call-back", SUPERVISOR, {"satisfied": False, "note": "不满意"}))
    late = filed(api, description="第二件：仍然被退回")["ticket_id"]
    clock.advance(timedelta(days=3))  # Sunday: contact deadline of Friday passed
    ok(act(api, late, "accept", MARKET, ACCEPT))

    report = api.get("/reports/tickets?month=2026-11", user=SUPERVISOR)
    assert report.status == 200, report
    market = next(r for r in report.json["departments"] if r["department_id"] == "dept-scjgj")
    assert market["received"] == 2
    assert (market["contact_judged"], market["contact_on_time"]) == (2, 1)
    assert market["contact_on_time_rate"] == 0.5
    assert (market["resolve_judged"], market["resolve_on_time_rate"]) == (1, 1.0)
    assert (market["call_backs"], market["satisfied"], market["satisfaction_rate"]) == (1, 0, 0.0)
    assert market["reopened"] == 1

    own = api.get("/reports/tickets?month=2026-11", user=HR).json["departments"]
    assert {r["department_id"] for r in own} <= {"dept-rsj"}
    assert api.get("/reports/tickets?month=2026-11", user=CITIZEN).status == 403
    assert api.get("/reports/tickets?month=2026-13", user=SUPERVISOR).status == 400
    assert api.get("/reports/tickets?month=2026-12", user=SUPERVISOR).json["departments"] == []

    for asked in ({"path": "&format=csv"}, {"headers": {"Accept": "text/csv"}}):
        url = "/reports/tickets?month=2026-11" + asked.get("path", "")
        csv = api.get(url, user=SUPERVISOR, headers=asked.get("headers"))
        assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
        assert csv.text.startswith("\ufeff月份,部门编号,部门名称,收件数")
        assert "dept-scjgj,青浦区市场监督管理局,2," in csv.text


def test_counting_an_event_twice_counts_it_once(container):
    store = container.ticket_store
    now = datetime(2026, 11, 26, 10, tzinfo=CHINA_TZ)
    assert store.count("QP20261126-AAAAAAAA", 2, "dept-a", "2026-11", {"received": 1}, now)
    assert not store.count("QP20261126-AAAAAAAA", 2, "dept-a", "2026-11", {"received": 1}, now)
    assert store.month_counters("2026-11") == {"dept-a": {"received": 1}}


def test_a_new_ticket_view_is_stable_while_nothing_changes(api, container):
    ticket = filed(api)
    again = api.get(f"/tickets/{ticket['ticket_id']}", user=CITIZEN).json
    assert again == ticket
    stored = container.ticket_store.get(ticket["ticket_id"])
    assert replace(stored, version=None).effects_through == stored.last_seq


def test_a_ticket_naming_a_guide_item_goes_to_the_department_the_guide_names(api, container):
    from local.seed_policies import TALENT_SERVICE_ITEM

    if container.application_store.latest_item("QP-RC-501") is None:
        container.application_store.put_item_version(TALENT_SERVICE_ITEM)
    ticket = filed(api, item_code="QP-RC-501", item_name=None, description="人才安居补贴迟迟未到账")
    assert ticket["department_id"] == "dept-rsj" and ticket["state"] == "dispatched"
    assert ticket["routing"]["rule_id"] in ("hr-items", "item-owner")
    assert (ticket["item_code"], ticket["item_name"]) == ("QP-RC-501", "青浦区人才安居补贴申领")

    # A former item id still names the item; an unknown code is refused before anything.
    legacy = filed(api, item_code="item-sbk", item_name=None)
    assert (legacy["item_code"], legacy["department_id"]) == ("QP-RS-204", "dept-rsj")
    unknown = file(api, item_code="QP-XX-999")
    assert unknown.status == 400 and unknown.json["code"] == "item_not_found"


def test_routing_rules_refuse_items_missing_from_the_guide(api):
    current = api.get("/admin/ticket-routing", user=ADMIN).json
    update = {
        "expected_version": current["version"],
        "rules": [
            {"rule_id": "r1", "name": "n", "department_id": "dept-rsj", "item_codes": ["QP-XX-1"]}
        ],
    }
    refused = api.put("/admin/ticket-routing", update, user=ADMIN)
    assert refused.status == 400 and refused.json["code"] == "item_not_found"
    update["rules"][0]["item_codes"] = ["item-sbk"]
    update["item_departments"] = {"item-lhjy": "dept-rsj"}
    stored = api.put("/admin/ticket-routing", update, user=ADMIN)
    assert stored.status == 200, stored
    assert stored.json["rules"][0]["item_codes"] == ["QP-RS-204"]
    assert stored.json["item_departments"] == {"QP-RS-205": "dept-rsj"}
