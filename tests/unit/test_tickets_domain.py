"""The ticket aggregate without I/O: the transition table, routing rules, duplicates, effects."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.errors import Forbidden, InvalidInput, RuleViolation
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.tickets import transitions
from chalicelib.domain.tickets.intake import Intake, check_channel, file, possible_duplicates
from chalicelib.domain.tickets.routing import RoutingFacts, RoutingRule, RuleSet, next_rule_set
from chalicelib.domain.tickets.ticket import (
    MAX_TIMELINE,
    OPEN_STATES,
    STATE_LABELS,
    Channel,
    ClockOp,
    ClockRef,
    Complexity,
    ContactMethod,
    ContactPreference,
    Effects,
    Event,
    Notice,
    Owner,
    Ticket,
    TicketKind,
    TicketState,
    TimelineEntry,
    mask_name,
)
from chalicelib.domain.tickets.transitions import (
    PREVIOUS,
    SAME,
    TRANSITIONS,
    IllegalTransition,
    accept,
    allowed_events,
    await_person,
    call_back,
    close,
    decide_extension,
    decide_return,
    person_responded,
    reopen,
    reply,
    request_extension,
    request_return,
    set_complexity,
    transfer,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)  # Thursday
CALENDAR = WorkingCalendar()

ACTORS = {
    Role.CITIZEN: Principal("u-citizen", Role.CITIZEN, "张伟", subject_id="310118198503121233"),
    Role.ENTERPRISE: Principal("u-ent", Role.ENTERPRISE, "绿境科技"),
    Role.WINDOW_STAFF: Principal("u-window", Role.WINDOW_STAFF, "王芳"),
    Role.DEPARTMENT_STAFF: Principal(
        "u-dept", Role.DEPARTMENT_STAFF, "刘强", department_id="dept-a"
    ),
    Role.DISPATCHER: Principal("u-disp", Role.DISPATCHER, "陈静"),
    Role.SUPERVISOR: Principal("u-sup", Role.SUPERVISOR, "赵敏"),
    Role.ADMIN: Principal("u-admin", Role.ADMIN, "管理员"),
}

RULES = RuleSet(
    version=3,
    rules=(
        RoutingRule(
            "conduct", "作风", "dept-zwb", kinds=frozenset({TicketKind.STAFF_CONDUCT}), version=2
        ),
        RoutingRule(
            "market", "市场监管", "dept-a", item_department_ids=frozenset({"dept-a"}), version=1
        ),
        RoutingRule(
            "insurance", "医保", "dept-b", keywords=("医保",), complexity=Complexity.COMPLEX
        ),
    ),
    item_departments={"item-a": "dept-a"},
)


def intake(**overrides) -> Intake:
    values = dict(
        ticket_id="QP20261126-AAAAAAAA",
        kind=TicketKind.NOT_ACCEPTED,
        channel=Channel.MINI_PROGRAM,
        description="营业执照办不下来",
        owner=Owner("u-citizen", "310118198503121233", "张伟"),
        contact=ContactPreference(ContactMethod.PHONE, "13812345678"),
        service_item_id="item-a",
    )
    values.update(overrides)
    return Intake(**values)


def filed(**overrides) -> Ticket:
    return file(intake(**overrides), ACTORS[Role.CITIZEN], NOW, rules=RULES)


def in_state(state: TicketState, **changes) -> Ticket:
    """A dispatched ticket moved to `state` (the fields each state implies are set)."""
    ticket = filed()
    extra: dict = {"details": {}}
    if state is TicketState.RETURN_REQUESTED:
        extra["details"] = {"return_request": {"from_state": "accepted", "reason": "非本部门"}}
    if state in (TicketState.REPLIED, TicketState.CALLED_BACK, TicketState.CLOSED):
        extra.update(reply_count=1, last_replied_at=NOW)
    if state is TicketState.SUBMITTED:
        extra.update(department_id=None)
    extra.update(changes)
    return replace(ticket, state=state, **extra)


def do(ticket: Ticket, event: Event, actor: Principal, now: datetime = NOW) -> Ticket:
    """Each event with plausible arguments."""
    calls = {
        Event.DISPATCH: lambda: transitions.dispatch(ticket, actor, now, department_id="dept-b"),
        Event.ACCEPT: lambda: accept(
            ticket, actor, now, contact_method=ContactMethod.PHONE, note="已电话联系"
        ),
        Event.AWAIT_PERSON: lambda: await_person(ticket, actor, now, reason="待补充材料"),
        Event.PERSON_RESPONDED: lambda: person_responded(ticket, actor, now),
        Event.REPLY: lambda: reply(ticket, actor, now, answer="已办理", evidence=("e/1.pdf",)),
        Event.CALL_BACK_SATISFIED: lambda: call_back(
            ticket, actor, now, satisfied=True, note="满意"
        ),
        Event.CALL_BACK_UNSATISFIED: lambda: call_back(
            ticket, actor, now, satisfied=False, note="不满意"
        ),
        Event.CLOSE: lambda: close(ticket, actor, now),
        Event.REOPEN: lambda: reopen(ticket, actor, now, reason="问题没解决", calendar=CALENDAR),
        Event.TRANSFER: lambda: transfer(
            ticket, actor, now, department_id="dept-b", department_name="乙局", reason="职责"
        ),
        Event.REQUEST_RETURN: lambda: request_return(ticket, actor, now, reason="非本部门"),
        Event.ACCEPT_RETURN: lambda: decide_return(ticket, actor, now, accept=True, note="同意"),
        Event.REJECT_RETURN: lambda: decide_return(ticket, actor, now, accept=False, note="驳回"),
        Event.SET_COMPLEXITY: lambda: set_complexity(
            ticket, actor, now, complexity=Complexity.COMPLEX, reason="涉及多部门"
        ),
        Event.REQUEST_EXTENSION: lambda: request_extension(
            replace(ticket, complexity=Complexity.COMPLEX), actor, now, days=5, reason="需现场核查"
        ),
        Event.APPROVE_EXTENSION: lambda: decide_extension(
            replace(ticket, details={"extension": {"status": "pending", "days": 5}}),
            actor,
            now,
            approve=True,
            note="同意",
        ),
        Event.REJECT_EXTENSION: lambda: decide_extension(
            replace(ticket, details={"extension": {"status": "pending", "days": 5}}),
            actor,
            now,
            approve=False,
            note="不同意",
        ),
    }
    return calls[event]()


EVENTS = [e for e in Event if e is not Event.SUBMIT]
ALLOWED = [
    (event, state, role)
    for event in EVENTS
    for state in sorted(TRANSITIONS[event].sources, key=lambda s: s.value)
    for role in sorted(TRANSITIONS[event].roles, key=lambda r: r.value)
]
ILLEGAL_STATES = [
    (event, state)
    for event in EVENTS
    for state in TicketState
    if state not in TRANSITIONS[event].sources
]
FORBIDDEN_ROLES = [
    (event, role) for event in EVENTS for role in Role if role not in TRANSITIONS[event].roles
]


# ---- the transition table -----------------------------------------------------------------


@pytest.mark.parametrize("event,state,role", ALLOWED, ids=lambda v: getattr(v, "value", v))
def test_each_allowed_transition_moves_to_its_target_and_records_one_entry(event, state, role):
    ticket = in_state(state)
    moved = do(ticket, event, ACTORS[role])

    rule = TRANSITIONS[event]
    if rule.target == SAME:
        assert moved.state is state
    elif rule.target == PREVIOUS:
        assert moved.state is TicketState.ACCEPTED  # the state the 退单 was requested from
    else:
        assert moved.state is rule.target
    entry = moved.timeline[-1]
    assert len(moved.timeline) == len(ticket.timeline) + 1
    assert (entry.event, entry.from_state, entry.to_state) == (event, state, moved.state)
    assert entry.actor_id == ACTORS[role].user_id and entry.seq == ticket.last_seq + 1


@pytest.mark.parametrize("event,state", ILLEGAL_STATES, ids=lambda v: getattr(v, "value", v))
def test_an_event_outside_its_source_states_is_an_illegal_transition(event, state):
    role = next(iter(TRANSITIONS[event].roles))
    with pytest.raises(IllegalTransition) as raised:
        do(in_state(state), event, ACTORS[role])
    assert raised.value.code == "illegal_transition"
    assert STATE_LABELS[state] in raised.value.message


@pytest.mark.parametrize("event,role", FORBIDDEN_ROLES, ids=lambda v: getattr(v, "value", v))
def test_a_role_outside_the_table_is_forbidden_whatever_the_state(event, role):
    state = next(iter(TRANSITIONS[event].sources))
    with pytest.raises(Forbidden) as raised:
        do(in_state(state), event, ACTORS[role])
    assert raised.value.code == "transition_forbidden"


def test_the_table_leaves_no_open_state_without_a_way_out_and_closed_only_by_reopen():
    exits = {s: {e for e, r in TRANSITIONS.items() if s in r.sources} for s in TicketState}
    assert all(exits[s] for s in OPEN_STATES)
    assert exits[TicketState.CLOSED] == {Event.REOPEN}


def test_allowed_events_answer_what_a_role_may_do_next():
    ticket = in_state(TicketState.DISPATCHED)
    assert set(allowed_events(ticket, Role.DEPARTMENT_STAFF)) == {
        Event.ACCEPT,
        Event.TRANSFER,
        Event.REQUEST_RETURN,
    }
    assert allowed_events(ticket, Role.CITIZEN) == []


# ---- effects of transitions --------------------------------------------------------------


def test_a_routed_ticket_starts_contact_and_resolve_clocks_for_its_department():
    ticket = filed()
    submit, dispatch = ticket.timeline
    assert submit.event is Event.SUBMIT and submit.effects == Effects()
    assert dispatch.event is Event.DISPATCH and dispatch.actor_id == "system"
    starts = {op.kind: op for op in dispatch.effects.clocks}
    assert starts["contact"].limit == 1 and starts["resolve"].limit == 5
    assert {op.department_id for op in starts.values()} == {"dept-a"}
    assert starts["contact"].key == ticket.contact_key
    assert dispatch.effects.notices == (Notice("department", "dispatched", "dept-a"),)
    assert dispatch.effects.counts == (("dept-a", "received"),)


def test_a_complex_route_gets_the_fifteen_day_resolve_limit():
    ticket = filed(kind=TicketKind.OTHER, service_item_id=None, description="医保报销被拒")
    resolve = next(op for op in ticket.timeline[-1].effects.clocks if op.kind == "resolve")
    assert ticket.complexity is Complexity.COMPLEX and resolve.limit == 15


def test_accept_stops_the_contact_clock_and_tells_the_person():
    ticket = filed()
    accepted = do(ticket, Event.ACCEPT, ACTORS[Role.DEPARTMENT_STAFF])
    effects = accepted.timeline[-1].effects
    assert effects.clocks == (ClockOp("stop", ticket.contact_key, judge="contact"),)
    assert effects.notices[0].audience == "person"
    assert accepted.details["first_contact"]["method"] == "phone"


def test_accept_refuses_a_contact_time_in_the_future():
    with pytest.raises(InvalidInput):
        accept(
            filed(),
            ACTORS[Role.DEPARTMENT_STAFF],
            NOW,
            contact_method=ContactMethod.PHONE,
            note="x",
            contacted_at=NOW + timedelta(hours=1),
        )


def test_waiting_for_the_person_pauses_and_resumes_the_resolve_clock():
    accepted = in_state(TicketState.ACCEPTED)
    waiting = do(accepted, Event.AWAIT_PERSON, ACTORS[Role.DEPARTMENT_STAFF])
    assert waiting.timeline[-1].effects.clocks[0].op == "pause"
    assert waiting.details["waiting"]["reason"] == "待补充材料"
    back = do(waiting, Event.PERSON_RESPONDED, ACTORS[Role.CITIZEN])
    assert back.timeline[-1].effects.clocks == (ClockOp("resume", accepted.resolve_key),)
    assert "waiting" not in back.details


def test_reply_needs_evidence_and_starts_the_call_back_clock_of_the_district_office():
    accepted = in_state(TicketState.ACCEPTED)
    with pytest.raises(InvalidInput) as raised:
        reply(accepted, ACTORS[Role.DEPARTMENT_STAFF], NOW, answer="已办理", evidence=())
    assert raised.value.code == "evidence_required"
    replied = do(accepted, Event.REPLY, ACTORS[Role.DEPARTMENT_STAFF])
    stop, start = replied.timeline[-1].effects.clocks
    assert stop == ClockOp("stop", accepted.resolve_key, judge="resolve")
    assert (start.kind, start.limit, start.department_id) == ("call_back", 3, "dept-zwb")
    assert replied.reply_count == 1 and replied.last_replied_at == NOW


def test_an_unsatisfied_call_back_hands_the_ticket_back_on_a_new_leg():
    replied = in_state(TicketState.REPLIED)
    reopened = do(replied, Event.CALL_BACK_UNSATISFIED, ACTORS[Role.SUPERVISOR])
    assert reopened.state is TicketState.REOPENED and reopened.leg == replied.leg + 1
    ops = reopened.timeline[-1].effects.clocks
    assert ops[0] == ClockOp("stop", replied.call_back_key, judge="call_back")
    assert {op.key for op in ops[1:]} == {reopened.contact_key, reopened.resolve_key}
    assert ("dept-a", "unsatisfied") in reopened.timeline[-1].effects.counts


def test_the_person_may_reopen_within_fifteen_working_days_of_the_reply_only():
    replied = in_state(TicketState.CLOSED, last_replied_at=NOW)
    day_15 = datetime(2026, 12, 17, 18, 0, tzinfo=CHINA_TZ)  # 15 working days after 11-26
    assert do(replied, Event.REOPEN, ACTORS[Role.CITIZEN], day_15).state is TicketState.REOPENED
    with pytest.raises(RuleViolation) as raised:
        do(replied, Event.REOPEN, ACTORS[Role.CITIZEN], day_15 + timedelta(days=1))
    assert raised.value.code == "reopen_window_passed"


def test_transfer_ends_the_old_handoff_clocks_and_starts_the_new_departments():
    ticket = in_state(TicketState.ACCEPTED)
    moved = do(ticket, Event.TRANSFER, ACTORS[Role.DEPARTMENT_STAFF])
    ops = moved.timeline[-1].effects.clocks
    assert [(op.op, op.key) for op in ops[:2]] == [
        ("cancel", ticket.contact_key),
        ("cancel", ticket.resolve_key),
    ]
    assert {(op.op, op.department_id) for op in ops[2:]} == {("start", "dept-b")}
    assert moved.department_id == "dept-b" and moved.state is TicketState.DISPATCHED
    assert moved.timeline[-1].effects.counts == (
        ("dept-b", "received"),
        ("dept-a", "transferred_out"),
    )
    with pytest.raises(InvalidInput):
        transfer(
            ticket,
            ACTORS[Role.DISPATCHER],
            NOW,
            department_id="dept-a",
            department_name=None,
            reason="x",
        )


def test_a_return_needs_a_reason_and_an_accepted_return_goes_back_to_the_queue():
    ticket = in_state(TicketState.DISPATCHED)
    with pytest.raises(InvalidInput):
        request_return(ticket, ACTORS[Role.DEPARTMENT_STAFF], NOW, reason="  ")
    requested = do(ticket, Event.REQUEST_RETURN, ACTORS[Role.DEPARTMENT_STAFF])
    assert requested.timeline[-1].effects.notices[0].audience == "supervisor"
    rejected = do(requested, Event.REJECT_RETURN, ACTORS[Role.DISPATCHER])
    assert rejected.state is TicketState.DISPATCHED
    accepted = do(requested, Event.ACCEPT_RETURN, ACTORS[Role.DISPATCHER])
    assert accepted.state is TicketState.SUBMITTED and accepted.department_id is None
    assert {op.op for op in accepted.timeline[-1].effects.clocks} == {"cancel"}


def test_a_complexity_change_restarts_the_resolve_clock_from_the_legs_start():
    ticket = in_state(TicketState.ACCEPTED, leg_started_at=NOW - timedelta(days=1))
    changed = do(ticket, Event.SET_COMPLEXITY, ACTORS[Role.DISPATCHER], NOW)
    cancel, start = changed.timeline[-1].effects.clocks
    assert cancel.key == ticket.resolve_key and start.key == changed.resolve_key
    assert start.key != cancel.key and start.limit == 15
    assert start.started_at == NOW - timedelta(days=1)


def test_only_complex_tickets_may_ask_for_an_extension():
    with pytest.raises(RuleViolation) as raised:
        request_extension(
            in_state(TicketState.ACCEPTED), ACTORS[Role.DEPARTMENT_STAFF], NOW, days=3, reason="x"
        )
    assert raised.value.code == "extension_not_allowed"


def test_an_approved_extension_extends_the_resolve_clock():
    ticket = in_state(TicketState.ACCEPTED, complexity=Complexity.COMPLEX)
    asked = request_extension(ticket, ACTORS[Role.DEPARTMENT_STAFF], NOW, days=5, reason="核查")
    approved = decide_extension(asked, ACTORS[Role.DISPATCHER], NOW, approve=True, note="同意")
    assert approved.timeline[-1].effects.clocks == (
        ClockOp("extend", ticket.resolve_key, amount=5, reason="核查"),
    )
    with pytest.raises(IllegalTransition):
        decide_extension(approved, ACTORS[Role.DISPATCHER], NOW, approve=True, note="再批")


def test_the_timeline_is_bounded_and_keeps_the_intake_entry():
    ticket = in_state(TicketState.ACCEPTED)
    ticket = replace(ticket, effects_through=10_000)
    for _ in range(MAX_TIMELINE + 20):
        ticket = do(ticket, Event.AWAIT_PERSON, ACTORS[Role.DEPARTMENT_STAFF])
        ticket = do(ticket, Event.PERSON_RESPONDED, ACTORS[Role.DEPARTMENT_STAFF])
    assert len(ticket.timeline) <= MAX_TIMELINE
    assert ticket.timeline[0].event is Event.SUBMIT
    assert ticket.timeline[-1].seq == ticket.last_seq > MAX_TIMELINE


def test_entries_round_trip_through_their_stored_form():
    ticket = do(in_state(TicketState.ACCEPTED), Event.REPLY, ACTORS[Role.DEPARTMENT_STAFF])
    entry = ticket.timeline[-1]
    assert TimelineEntry.from_dict(entry.to_dict()) == entry


# ---- intake and channels -----------------------------------------------------------------


def test_a_person_files_online_and_staff_at_a_window_or_on_the_hotline():
    check_channel(ACTORS[Role.CITIZEN], Channel.SELF_SERVICE_TERMINAL)
    check_channel(ACTORS[Role.WINDOW_STAFF], Channel.HOTLINE)
    with pytest.raises(InvalidInput):
        check_channel(ACTORS[Role.CITIZEN], Channel.WINDOW)
    with pytest.raises(InvalidInput):
        check_channel(ACTORS[Role.WINDOW_STAFF], Channel.MINI_PROGRAM)


def test_possible_duplicates_are_open_tickets_of_the_same_person_on_the_same_item():
    owner = Owner("u-1", "310118198503121233").key
    candidates = [
        ("T1", owner, "item-a", TicketState.ACCEPTED),
        ("T2", owner, "item-a", TicketState.CLOSED),
        ("T3", owner, "item-b", TicketState.DISPATCHED),
        ("T4", "s#other", "item-a", TicketState.DISPATCHED),
    ]
    assert possible_duplicates(candidates, owner, "item-a") == ["T1"]
    assert possible_duplicates(candidates, owner, None) == []
    ticket = file(intake(), ACTORS[Role.CITIZEN], NOW, rules=RULES, duplicates=["T1"])
    assert ticket.possible_duplicates == ("T1",)
    assert ticket.state is TicketState.DISPATCHED  # recorded, never merged


def test_an_owner_is_keyed_by_subject_when_known_so_window_filings_reach_the_person():
    assert Owner("u-1", "310118198503121233").key == Owner(None, "310118198503121233").key
    assert Owner("u-1", None).key == "u#u-1"


# ---- routing -----------------------------------------------------------------------------


def facts(**overrides) -> RoutingFacts:
    values = dict(
        kind=TicketKind.NOT_ACCEPTED,
        service_item_id="item-a",
        item_department_id="dept-a",
        text="营业执照",
        centre_id=None,
    )
    values.update(overrides)
    return RoutingFacts(**values)


def test_the_first_matching_rule_wins_and_names_its_id_and_versions():
    match = RULES.route(facts(kind=TicketKind.STAFF_CONDUCT, text="医保 窗口态度"))
    assert (match.rule_id, match.rule_version, match.ruleset_version) == ("conduct", 2, 3)
    assert match.department_id == "dept-zwb"


def test_no_match_leaves_the_ticket_for_the_dispatcher():
    assert RULES.route(facts(item_department_id=None, text="别的事")) is None
    ticket = filed(service_item_id=None, description="跨部门的复杂问题")
    assert ticket.state is TicketState.SUBMITTED and ticket.department_id is None
    assert [e.event for e in ticket.timeline] == [Event.SUBMIT]


@pytest.mark.parametrize(
    "rule,hit,miss",
    [
        (
            RoutingRule("r", "n", "d", kinds=frozenset({TicketKind.NOT_APPROVED})),
            facts(kind=TicketKind.NOT_APPROVED),
            facts(),
        ),
        (
            RoutingRule("r", "n", "d", service_item_ids=frozenset({"item-a"})),
            facts(),
            facts(service_item_id="item-b"),
        ),
        (RoutingRule("r", "n", "d", keywords=("Licence",)), facts(text="my licence"), facts()),
        (
            RoutingRule("r", "n", "d", centre_ids=frozenset({"c-1"})),
            facts(centre_id="c-1"),
            facts(centre_id="c-2"),
        ),
        (
            RoutingRule("r", "n", "d", kinds=frozenset({TicketKind.NOT_ACCEPTED}), keywords=("x",)),
            facts(text="x"),
            facts(text="y"),
        ),
    ],
    ids=["kind", "item", "keyword-case-insensitive", "centre", "all-criteria-must-hold"],
)
def test_each_routing_criterion(rule, hit, miss):
    assert rule.matches(hit) and not rule.matches(miss)


def test_a_disabled_rule_never_matches():
    assert not RoutingRule("r", "n", "d", enabled=False).matches(facts())


def test_the_items_department_comes_from_the_rule_set():
    ticket = filed()
    assert ticket.item_department_id == "dept-a" and ticket.department_id == "dept-a"
    assert ticket.routing.rule_id == "market"


def test_a_new_rule_set_version_bumps_only_changed_rules():
    by, known = "u-admin", {"dept-a", "dept-b", "dept-zwb"}
    changed = [
        RULES.rules[0],
        replace(RULES.rules[1], keywords=("执照",)),
        RoutingRule("new", "新规则", "dept-b"),
    ]
    new = next_rule_set(
        RULES, changed, {"item-a": "dept-a"}, known_departments=known, by=by, now=NOW
    )
    assert new.version == 4
    assert [(r.rule_id, r.version) for r in new.rules] == [
        ("conduct", 2),
        ("market", 2),
        ("new", 1),
    ]


def test_a_rule_set_with_unknown_departments_or_duplicate_ids_is_refused():
    rules = [RoutingRule("a", "n", "dept-x"), RoutingRule("a", "n", "dept-a")]
    with pytest.raises(InvalidInput) as raised:
        next_rule_set(RULES, rules, {}, known_departments={"dept-a"}, by="u", now=NOW)
    assert raised.value.code == "invalid_routing_rules"
    assert "dept-x" in raised.value.message and "重复" in raised.value.message


# ---- views -------------------------------------------------------------------------------


def test_governing_due_is_the_nearest_open_deadline_of_the_current_leg():
    ticket = filed()
    soon, later = NOW + timedelta(days=1), NOW + timedelta(days=7)
    clocks = {
        ticket.contact_key: ClockRef(ticket.contact_key, "c1", "contact", "dept-a", "met", soon),
        ticket.resolve_key: ClockRef(
            ticket.resolve_key, "c2", "resolve", "dept-a", "running", later
        ),
    }
    assert replace(ticket, clocks=clocks).governing_due == later
    assert replace(ticket, clocks=clocks, state=TicketState.REPLIED).governing_due is None


@pytest.mark.parametrize("name,masked", [("刘强", "刘*"), ("欧阳娜娜", "欧***"), ("王", "王")])
def test_staff_names_are_masked_for_the_public(name, masked):
    assert mask_name(name) == masked


def test_a_paused_deadline_does_not_govern_the_department_list():
    ticket = replace(filed(), state=TicketState.AWAITING_PERSON)
    due = NOW + timedelta(days=7)
    ref = ClockRef(ticket.resolve_key, "c2", "resolve", "dept-a", "paused", due)
    assert replace(ticket, clocks={ticket.resolve_key: ref}).governing_due is None


def test_with_no_rule_matching_the_items_owner_gets_the_ticket():
    match = RULES.route(facts(item_department_id="dept-x", text="别的事"))
    assert (match.rule_id, match.department_id) == ("item-owner", "dept-x")
    for kind in (TicketKind.CROSS_DEPARTMENT, TicketKind.STAFF_CONDUCT):
        routed = RuleSet(version=1).route(facts(kind=kind, item_department_id="dept-x"))
        assert routed is None


def test_a_ticket_on_a_guide_item_goes_to_the_guides_owner_unless_the_rules_say_otherwise():
    ticket = file(intake(), ACTORS[Role.CITIZEN], NOW, rules=RuleSet(), item_owner="dept-rsj")
    assert ticket.state is TicketState.DISPATCHED and ticket.department_id == "dept-rsj"
    assert ticket.routing.rule_id == "item-owner"
    mapped = RuleSet(item_departments={"item-qysl": "dept-scjgj"})
    assert mapped.item_department("QP-SC-101") == "dept-scjgj"  # a legacy id reads as its code


def test_rules_name_items_by_the_guides_code_even_when_stored_with_a_legacy_id():
    rule = RoutingRule.from_dict(
        {"rule_id": "r", "department_id": "d", "service_item_ids": ["item-qysl"]}
    )
    assert rule.service_item_ids == frozenset({"QP-SC-101"})
