"""The ticket use cases on in-memory stores (tests/fakes/tickets.py): intake and routing with
its clocks, each transition and its refusals, optimistic versions, a change stored with its
effects or step by step, lists and their cursors, and whose ticket a caller may touch. The
DynamoDB side of the same contracts (conditional puts, index queries, one transaction) is
tests/integration/test_tickets.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.clock import CHINA_TZ, ManualClock
from chalicelib.domain import hotline
from chalicelib.domain.directory import Department, UserProfile
from chalicelib.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.hotline import WorkOrder
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.tickets import transitions as domain
from chalicelib.domain.tickets.limits import TicketLimits
from chalicelib.domain.tickets.routing import RoutingRule, RuleSet
from chalicelib.domain.tickets.ticket import (
    Channel,
    Complexity,
    ContactMethod,
    Ticket,
    TicketKind,
    TicketState,
)
from chalicelib.service_layer import deadlines
from chalicelib.service_layer.tickets import intake, limits, reading, report, routing, transitions
from chalicelib.service_layer.tickets.common import TicketDeps
from tests.fakes.common import InMemoryDirectory, RecordingAuditLog
from tests.fakes.deadlines import InMemoryCalendarStore, InMemoryEscalationStore, RecordingQueue
from tests.fakes.tickets import (
    InMemoryHotlineStore,
    InMemoryOutbox,
    InMemoryTicketStore,
    InMemoryTransactions,
    TransactionalClockStore,
)

PHONE = ContactMethod.PHONE
USERS = {
    "citizen": UserProfile(
        "u-citizen-zhang",
        Role.CITIZEN,
        "张伟",
        subject_id="310118198503121233",
        mobile="13812345678",
    ),
    "other": UserProfile(
        "u-citizen-li", Role.CITIZEN, "李秀英", subject_id="310118194801150026", mobile="1399"
    ),
    "market": UserProfile("u-dept-scjgj", Role.DEPARTMENT_STAFF, "刘强", "dept-scjgj"),
    "hr": UserProfile("u-dept-rsj", Role.DEPARTMENT_STAFF, "孙丽", "dept-rsj"),
    "dispatcher": UserProfile("u-dispatcher-chen", Role.DISPATCHER, "陈静"),
    "supervisor": UserProfile("u-supervisor-zhao", Role.SUPERVISOR, "赵敏"),
}
CITIZEN, OTHER, MARKET, HR, DISPATCHER, SUPERVISOR = (
    USERS[name].principal()
    for name in ("citizen", "other", "market", "hr", "dispatcher", "supervisor")
)
DEPARTMENTS = {
    "dept-scjgj": "青浦区市场监督管理局",
    "dept-rsj": "青浦区人力资源和社会保障局",
    "dept-zwb": "青浦区政务服务办公室",
}
RULES = RuleSet(
    version=1,
    rules=(
        RoutingRule(
            "market-items",
            "市场监管事项",
            "dept-scjgj",
            kinds=frozenset({TicketKind.NOT_ACCEPTED, TicketKind.OTHER}),
            item_department_ids=frozenset({"dept-scjgj"}),
        ),
    ),
    item_departments={"QP-SC-101": "dept-scjgj", "QP-SC-104": "dept-scjgj"},
)


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


class World:
    """The ticket use cases wired to in-memory stores, on a clock the test moves."""

    def __init__(self) -> None:
        self.clock = ManualClock(t(2026, 11, 26, 10, 0))  # a Thursday
        self.transactions = InMemoryTransactions()
        self.store = InMemoryTicketStore(self.transactions)
        self.store.put_rule_set(RULES)
        self.clocks = TransactionalClockStore(transactions=self.transactions)
        self.escalations = InMemoryEscalationStore()
        self.outbox = InMemoryOutbox(self.transactions)
        self.audit = RecordingAuditLog(self.clock.now)
        self.completed: list[tuple[str, str]] = []
        self.metrics: list[tuple[Any, ...]] = []
        directory = InMemoryDirectory(
            users={u.user_id: u for u in USERS.values()},
            departments={d: Department(d, name) for d, name in DEPARTMENTS.items()},
        )
        self.transactions.participants = [
            self.store,
            self.clocks,
            self.escalations,
            self.outbox,
            self.audit,
        ]
        self.deps = TicketDeps(
            tickets=self.store,
            deadlines=deadlines.DeadlineDeps(
                clocks=self.clocks,
                escalations=self.escalations,
                calendars=InMemoryCalendarStore(),
                notifier=self.outbox,
                audit_log=self.audit,
                clock=self.clock,
                jobs=RecordingQueue(),
                directory=directory,
                metric=lambda *args, **kw: self.metrics.append(args),
            ),
            notifier=self.outbox,
            audit_log=self.audit,
            directory=directory,
            clock=self.clock,
            completed=lambda kind, subject: self.completed.append((kind, subject)),
            transactions=self.transactions,
        )

    def file(
        self, principal: Principal = CITIZEN, key: str | None = None, **overrides: Any
    ) -> Ticket:
        return self.intake(principal, key, **overrides).ticket

    def intake(
        self, principal: Principal = CITIZEN, key: str | None = None, **overrides: Any
    ) -> intake.IntakeResult:
        values: dict[str, Any] = {
            "kind": TicketKind.NOT_ACCEPTED,
            "channel": Channel.MINI_PROGRAM,
            "description": "企业设立登记网上提交三次都被退回",
            "contact_method": PHONE,
            "service_item_id": "QP-SC-101",
            "service_item_name": "企业设立登记",
        }
        values.update(overrides)
        return intake.file_ticket(self.deps, principal, intake.IntakeRequest(**values), key)

    def accept(self, ticket_id: str, principal: Principal = MARKET) -> Ticket:
        return transitions.accept(
            self.deps, principal, ticket_id, contact_method=PHONE, note="已电话联系办事人"
        )

    def reply(self, ticket_id: str) -> Ticket:
        return transitions.reply(
            self.deps, MARKET, ticket_id, answer="已核实并重新受理", evidence=("evidence/1.pdf",)
        )

    def clock_states(self, ticket_id: str) -> dict[tuple[str, str | None], str]:
        ticket = self.store.tickets[ticket_id]
        return {(r.kind, r.department_id): r.state for r in ticket.clocks.values()}

    def stored_clock_states(self, ticket_id: str) -> dict[str, str]:
        ticket = self.store.tickets[ticket_id]
        return {
            r.kind: self.clocks._clocks[r.clock_id].clock.state.value
            for r in ticket.clocks.values()
        }

    def audited(self, ticket_id: str) -> list[str]:
        return [
            e.action
            for e in self.audit.entries
            if e.subject_type == "ticket" and e.subject_id == ticket_id
        ]


@pytest.fixture
def world() -> World:
    return World()


def _code(raised: pytest.ExceptionInfo[Any]) -> str:
    return str(raised.value.code)


# ---- intake -------------------------------------------------------------------------------


def test_intake_routes_by_the_first_matching_rule_and_starts_its_clocks_in_one_write(world):
    ticket = world.file()
    assert ticket.state is TicketState.DISPATCHED
    assert (ticket.department_id, ticket.department_name) == ("dept-scjgj", "青浦区市场监督管理局")
    assert ticket.routing is not None and ticket.routing.rule_id == "market-items"
    assert [e.event.value for e in ticket.timeline] == ["submit", "dispatch"]
    assert world.clock_states(ticket.ticket_id) == {
        ("contact", "dept-scjgj"): "running",
        ("resolve", "dept-scjgj"): "running",
    }
    contact = next(r for r in ticket.clocks.values() if r.kind == "contact")
    assert contact.due_at == t(2026, 11, 27, 23, 59, 59)  # one working day
    assert not ticket.pending_effects and world.store.tickets[ticket.ticket_id] == ticket
    assert world.audited(ticket.ticket_id) == ["ticket.submit", "ticket.dispatch"]
    assert world.outbox.categories() == ["ticket.dispatched"]
    assert world.store.month_counters("2026-11") == {"dept-scjgj": {"received": 1}}
    assert world.transactions.commits == 1


def test_an_unmatched_intake_waits_in_the_dispatcher_queue_without_clocks(world):
    ticket = world.file(kind=TicketKind.CROSS_DEPARTMENT, service_item_id=None)
    assert ticket.state is TicketState.SUBMITTED and ticket.department_id is None
    assert ticket.clocks == {} and world.outbox.stored == {}
    queue = reading.list_queue(world.deps, DISPATCHER, "unrouted", 10, None)
    assert [q.ticket_id for q in queue.items] == [ticket.ticket_id]

    routed = transitions.dispatch(
        world.deps, DISPATCHER, ticket.ticket_id, department_id="dept-rsj", note="牵头部门"
    )
    assert routed.state is TicketState.DISPATCHED and routed.department_id == "dept-rsj"
    assert world.clock_states(ticket.ticket_id)[("contact", "dept-rsj")] == "running"
    assert reading.list_queue(world.deps, DISPATCHER, "unrouted", 10, None).items == []


def test_a_keyed_intake_run_again_finds_the_ticket_its_first_run_filed(world):
    first = world.intake(key="intake-key-0001")
    again = world.intake(key="intake-key-0001")
    assert (first.created, again.created) == (True, False)
    assert again.ticket.ticket_id == first.ticket.ticket_id
    assert len(world.store.tickets) == 1
    assert world.store.month_counters("2026-11") == {"dept-scjgj": {"received": 1}}
    assert len(world.outbox.stored) == 1
    assert world.audited(first.ticket.ticket_id) == ["ticket.submit", "ticket.dispatch"]


def test_a_keyed_intake_of_another_person_is_another_ticket(world):
    mine = world.file(key="intake-key-0003")
    theirs = world.file(OTHER, key="intake-key-0003")
    assert mine.ticket_id != theirs.ticket_id


def test_a_similar_open_ticket_is_named_as_a_possible_duplicate_not_merged(world):
    first = world.file()
    second = world.file(description="还是企业设立登记的问题，仍然被退回")
    other_item = world.file(service_item_id="QP-SC-104", service_item_name="食品经营许可")
    assert second.possible_duplicates == (first.ticket_id,)
    assert other_item.possible_duplicates == ()
    assert len(world.store.tickets) == 3


def test_staff_filing_for_someone_must_name_them_and_write_nothing_otherwise(world):
    window = Principal("u-window-wang", Role.WINDOW_STAFF, "王芳")
    with pytest.raises(InvalidInput) as raised:
        world.file(window, channel=Channel.WINDOW)
    assert _code(raised) == "on_behalf_required"
    assert world.store.tickets == {} and world.audit.entries == []


# ---- transitions --------------------------------------------------------------------------


def test_accept_reply_call_back_close_move_the_clocks_and_audit_each_step(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)
    assert world.clock_states(ticket_id)[("contact", "dept-scjgj")] == "met"

    world.clock.advance(timedelta(days=1))
    replied = world.reply(ticket_id)
    assert replied.state is TicketState.REPLIED
    assert world.stored_clock_states(ticket_id) == {
        "contact": "met",
        "resolve": "met",
        "call_back": "running",
    }
    transitions.call_back(world.deps, SUPERVISOR, ticket_id, satisfied=True, note="满意")
    assert world.completed == []
    closed = transitions.close(world.deps, SUPERVISOR, ticket_id, note="办结")
    assert closed.state is TicketState.CLOSED
    assert world.completed == [("ticket", ticket_id)]
    assert set(world.stored_clock_states(ticket_id).values()) <= {"met", "cancelled"}
    assert world.audited(ticket_id) == [
        "ticket.submit",
        "ticket.dispatch",
        "ticket.accept",
        "ticket.reply",
        "ticket.call_back_satisfied",
        "ticket.close",
    ]
    person = [r.category for r in world.outbox.stored.values() if r.recipient_id == CITIZEN.user_id]
    assert person == ["ticket.accepted", "ticket.replied", "ticket.closed"]


def test_a_role_the_table_does_not_allow_is_refused_and_changes_nothing(world):
    ticket = world.file()
    with pytest.raises(Forbidden) as raised:
        world.accept(ticket.ticket_id, CITIZEN)
    assert _code(raised) == "transition_forbidden"
    assert world.store.tickets[ticket.ticket_id] == ticket


def test_an_illegal_transition_is_refused_with_a_chinese_message(world):
    ticket = world.file()
    with pytest.raises(Conflict) as raised:
        world.reply(ticket.ticket_id)
    assert _code(raised) == "illegal_transition"
    assert "已派单" in str(raised.value) and "答复" in str(raised.value)
    assert world.store.tickets[ticket.ticket_id] == ticket
    assert world.audited(ticket.ticket_id) == ["ticket.submit", "ticket.dispatch"]


def test_waiting_for_the_person_pauses_the_resolve_deadline_and_moves_it_on(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)
    waiting = transitions.await_person(world.deps, MARKET, ticket_id, reason="请补充营业场所证明")
    assert world.stored_clock_states(ticket_id)["resolve"] == "paused"
    before = waiting.clocks[waiting.resolve_key].due_at

    world.clock.advance(timedelta(days=7))  # Thursday to Thursday: 5 working days waited
    back = transitions.person_responded(world.deps, CITIZEN, ticket_id, note="已上传")
    resolve = back.clocks[back.resolve_key]
    assert back.state is TicketState.ACCEPTED and resolve.state == "running"
    assert before is not None and resolve.due_at == t(2026, 12, 10, 23, 59, 59) > before


def test_transfer_hands_the_ticket_and_new_clocks_to_the_other_department(world):
    ticket_id = world.file().ticket_id
    moved = transitions.transfer(
        world.deps, MARKET, ticket_id, department_id="dept-rsj", reason="属人社"
    )
    assert moved.department_id == "dept-rsj" and moved.state is TicketState.DISPATCHED
    states = world.clock_states(ticket_id)
    assert states[("contact", "dept-scjgj")] == "cancelled"
    assert states[("contact", "dept-rsj")] == "running"
    with pytest.raises(NotFound):
        reading.get_ticket(world.deps, MARKET, ticket_id)
    assert world.accept(ticket_id, HR).state is TicketState.ACCEPTED
    with pytest.raises(InvalidInput) as raised:
        transitions.transfer(world.deps, HR, ticket_id, department_id="dept-none", reason="x")
    assert _code(raised) == "department_not_found"


def test_a_return_waits_in_the_queue_for_the_dispatchers_decision(world):
    ticket_id = world.file().ticket_id
    transitions.request_return(world.deps, MARKET, ticket_id, reason="不属于本部门职责")
    queue = reading.list_queue(world.deps, DISPATCHER, "return", 10, None)
    assert [q.ticket_id for q in queue.items] == [ticket_id]
    with pytest.raises(Forbidden):
        transitions.decide_return(world.deps, MARKET, ticket_id, accept=True, note="x")

    rejected = transitions.decide_return(
        world.deps, DISPATCHER, ticket_id, accept=False, note="属本部门"
    )
    assert rejected.state is TicketState.DISPATCHED
    transitions.request_return(world.deps, MARKET, ticket_id, reason="确实不属于本部门")
    accepted = transitions.decide_return(
        world.deps, DISPATCHER, ticket_id, accept=True, note="同意"
    )
    assert accepted.state is TicketState.SUBMITTED and accepted.department_id is None
    assert "running" not in world.stored_clock_states(ticket_id).values()


def test_only_a_complex_ticket_gets_an_extension_and_only_with_approval(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)
    with pytest.raises(RuleViolation) as raised:
        transitions.request_extension(world.deps, MARKET, ticket_id, days=5, reason="需现场核查")
    assert _code(raised) == "extension_not_allowed"

    transitions.set_complexity(
        world.deps, DISPATCHER, ticket_id, complexity=Complexity.COMPLEX, reason="多部门"
    )
    transitions.request_extension(world.deps, MARKET, ticket_id, days=5, reason="需现场核查")
    queue = reading.list_queue(world.deps, DISPATCHER, "extension", 10, None)
    assert [q.ticket_id for q in queue.items] == [ticket_id]
    approved = transitions.decide_extension(
        world.deps, DISPATCHER, ticket_id, approve=True, note="同意"
    )
    resolve = approved.clocks[approved.resolve_key]
    assert resolve.due_at == t(2026, 12, 24, 23, 59, 59)
    assert reading.list_queue(world.deps, DISPATCHER, "extension", 10, None).items == []


def test_an_extension_is_not_approved_once_the_deadline_passed(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)
    transitions.set_complexity(
        world.deps, DISPATCHER, ticket_id, complexity=Complexity.COMPLEX, reason="多部门"
    )
    transitions.request_extension(world.deps, MARKET, ticket_id, days=5, reason="需现场核查")
    world.clock.advance(timedelta(days=40))
    with pytest.raises(RuleViolation) as raised:
        transitions.decide_extension(world.deps, DISPATCHER, ticket_id, approve=True, note="同意")
    assert _code(raised) == "deadline_passed"


def test_the_person_reopens_and_the_same_department_handles_it_again(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)
    world.reply(ticket_id)
    reopened = transitions.reopen(world.deps, CITIZEN, ticket_id, reason="问题并没有解决")
    assert reopened.state is TicketState.REOPENED and reopened.department_id == "dept-scjgj"
    kinds = {(r.kind, r.state) for r in reopened.clocks.values()}
    assert ("call_back", "cancelled") in kinds and ("contact", "running") in kinds
    assert world.accept(ticket_id).state is TicketState.ACCEPTED


# ---- concurrency --------------------------------------------------------------------------


def test_a_ticket_stored_on_a_stale_version_is_a_conflict(world):
    ticket_id = world.file().ticket_id
    stale = world.store.get(ticket_id)
    assert stale is not None
    now = world.clock.now()
    world.store.save(domain.accept(stale, MARKET, now, contact_method=PHONE, note="第一个"))
    second = domain.transfer(
        stale, MARKET, now, department_id="dept-rsj", department_name=None, reason="第二个"
    )
    with pytest.raises(Conflict) as raised:
        world.store.save(second)
    assert _code(raised) == "ticket_changed"
    assert world.store.tickets[ticket_id].state is TicketState.ACCEPTED


class StaleFirstRead:
    """The ticket store, but its first read answers the ticket as it was, after `meanwhile`
    stored another change (the other side of a race)."""

    def __init__(self, world: World, meanwhile: Any) -> None:
        self._store = world.store
        self._meanwhile = meanwhile
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get(self, ticket_id: str) -> Ticket | None:
        self.reads += 1
        if self.reads == 1:
            stale = self._store.get(ticket_id)
            self._meanwhile(ticket_id)
            return stale
        return self._store.get(ticket_id)


def test_a_transition_that_lost_a_race_is_judged_again_on_the_fresh_ticket(world):
    ticket_id = world.file().ticket_id
    world.deps.tickets = StaleFirstRead(world, lambda tid: world.accept(tid))
    with pytest.raises(Conflict) as raised:
        world.accept(ticket_id)
    assert _code(raised) == "illegal_transition"
    accepts = [e for e in world.store.tickets[ticket_id].timeline if e.event.value == "accept"]
    assert len(accepts) == 1
    assert world.audited(ticket_id).count("ticket.accept") == 1


def test_a_transition_that_lost_a_race_to_a_compatible_change_is_stored_after_it(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)

    def meanwhile(tid: str) -> None:
        transitions.set_complexity(
            world.deps, DISPATCHER, tid, complexity=Complexity.COMPLEX, reason="多部门"
        )

    racing = replace(world.deps, tickets=StaleFirstRead(world, meanwhile))
    world.deps.tickets = world.store  # the dispatcher's change reads the real store
    waiting = transitions.await_person(racing, MARKET, ticket_id, reason="请补充材料")
    events = [e.event.value for e in waiting.timeline]
    assert events[-2:] == ["set_complexity", "await_person"]
    assert waiting.complexity is Complexity.COMPLEX and not waiting.pending_effects


# ---- a change and its effects -------------------------------------------------------------


def test_a_change_whose_write_fails_keeps_none_of_its_effects(world):
    ticket = world.file()
    audited = list(world.audit.entries)
    clocks = dict(world.clocks._clocks)
    metrics = list(world.metrics)
    world.transactions.fail_commit = Conflict("服务繁忙", code="transaction_failed")
    with pytest.raises(Conflict):
        world.accept(ticket.ticket_id)
    assert world.store.tickets[ticket.ticket_id] == ticket
    assert world.clocks._clocks == clocks and world.audit.entries == audited
    assert world.outbox.categories() == ["ticket.dispatched"]
    assert world.metrics == metrics  # emitted only once the write is kept


def test_a_change_too_large_for_one_write_is_stored_then_its_effects_step_by_step(world):
    ticket_id = world.file().ticket_id
    world.transactions.fail_commit = Conflict("过大", code="transaction_too_large")
    accepted = world.accept(ticket_id)
    assert not accepted.pending_effects
    assert world.store.tickets[ticket_id].effects_through == accepted.timeline[-1].seq
    assert world.stored_clock_states(ticket_id)["contact"] == "met"
    assert "ticket.accepted" in world.outbox.categories()


def test_effects_a_failure_left_pending_are_applied_before_the_next_change_once(world):
    world.deps.transactions = None  # the step-by-step path throughout
    ticket_id = world.file().ticket_id
    accepted_key = f"ticket:{ticket_id}:3:accepted:{CITIZEN.user_id}"
    world.outbox.fail_keys.add(accepted_key)
    world.accept(ticket_id)
    stored = world.store.tickets[ticket_id]
    assert [e.event.value for e in stored.pending_effects] == ["accept"]
    assert accepted_key not in world.outbox.stored

    world.outbox.fail_keys.clear()
    replied = world.reply(ticket_id)
    assert not replied.pending_effects
    assert accepted_key in world.outbox.stored
    assert world.stored_clock_states(ticket_id) == {
        "contact": "met",
        "resolve": "met",
        "call_back": "running",
    }
    assert world.store.month_counters("2026-11")["dept-scjgj"]["received"] == 1
    assert [r.business_key for r in world.outbox.calls].count(accepted_key) == 2  # failed, then


def test_effects_applied_again_record_their_audit_fact_once(world):
    world.deps.transactions = None
    ticket_id = world.file().ticket_id
    world.outbox.fail_keys.add(f"ticket:{ticket_id}:3:accepted:{CITIZEN.user_id}")
    world.accept(ticket_id)
    world.outbox.fail_keys.clear()
    world.reply(ticket_id)
    assert world.audited(ticket_id).count("ticket.accept") == 1


def test_a_change_stored_without_its_effects_gets_them_with_the_next_change(world):
    ticket_id = world.file().ticket_id
    stored = world.store.get(ticket_id)
    assert stored is not None
    world.store.save(
        domain.accept(stored, MARKET, world.clock.now(), contact_method=PHONE, note="已联系")
    )
    assert world.store.tickets[ticket_id].pending_effects
    replied = world.reply(ticket_id)
    assert not replied.pending_effects
    states = {ref.kind: ref.state for ref in replied.clocks.values()}
    assert states == {"contact": "met", "resolve": "met", "call_back": "running"}


def test_an_event_is_counted_once_however_often_it_is_applied(world):
    now = world.clock.now()
    assert world.store.count("T-1", 2, "dept-scjgj", "2026-11", {"received": 1}, now)
    assert not world.store.count("T-1", 2, "dept-scjgj", "2026-11", {"received": 1}, now)
    assert world.store.month_counters("2026-11") == {"dept-scjgj": {"received": 1}}


# ---- lists --------------------------------------------------------------------------------


def test_my_tickets_come_newest_first_in_pages(world):
    filed = []
    for n in range(3):
        filed.append(world.file(description=f"第{n}件：企业设立登记被退回").ticket_id)
        world.clock.advance(timedelta(minutes=5))
    first = reading.list_my_tickets(world.deps, CITIZEN, 2, None)
    assert [x.ticket_id for x in first.items] == filed[:0:-1] and first.last_key
    rest = reading.list_my_tickets(world.deps, CITIZEN, 2, first.last_key)
    assert [x.ticket_id for x in rest.items] == filed[:1] and rest.last_key is None


def test_the_department_list_filters_by_state_overdue_and_due_before(world):
    first = world.file().ticket_id
    world.clock.advance(timedelta(days=1))  # Friday
    second = world.file(description="第二件：仍然被退回").ticket_id
    world.accept(second)

    def listed(**kw: Any) -> list[str]:
        kw = {"state": None, "overdue": False, "due_before": None, **kw}
        page = reading.list_department_tickets(
            world.deps, MARKET, "dept-scjgj", limit=10, start_key=None, **kw
        )
        return [x.ticket_id for x in page.items]

    assert listed() == [first, second]  # nearest deadline first
    assert listed(state=TicketState.DISPATCHED) == [first]
    assert listed(due_before=t(2026, 11, 28).date()) == [first]
    assert listed(overdue=True) == []
    world.clock.advance(timedelta(days=1))  # Saturday: the first contact deadline passed
    assert listed(overdue=True) == [first]
    assert listed(overdue=True, state=TicketState.ACCEPTED) == []


def test_the_department_list_pages_and_refuses_another_lists_cursor(world):
    for n in range(3):
        world.file(description=f"第{n}件：企业设立登记被退回")
    kw: dict[str, Any] = {"state": None, "overdue": False, "due_before": None, "limit": 2}
    page = reading.list_department_tickets(world.deps, MARKET, "dept-scjgj", start_key=None, **kw)
    assert len(page.items) == 2 and page.last_key is not None
    rest = reading.list_department_tickets(
        world.deps, MARKET, "dept-scjgj", start_key=page.last_key, **kw
    )
    assert len(rest.items) == 1 and rest.last_key is None
    assert {x.ticket_id for x in page.items + rest.items} == set(world.store.tickets)
    with pytest.raises(InvalidInput) as raised:
        reading.list_department_tickets(
            world.deps, DISPATCHER, "dept-rsj", start_key=page.last_key, **kw
        )
    assert _code(raised) == "invalid_cursor"


# ---- authorisation ------------------------------------------------------------------------


def test_a_person_never_reads_or_acts_on_another_persons_ticket(world):
    ticket_id = world.file().ticket_id
    world.accept(ticket_id)
    world.reply(ticket_id)
    for attempt in (
        lambda: reading.get_ticket(world.deps, OTHER, ticket_id),
        lambda: transitions.reopen(world.deps, OTHER, ticket_id, reason="x"),
        lambda: reading.get_ticket(world.deps, CITIZEN, "QP20261126-ZZZZZZZZ"),
        lambda: reading.get_ticket(world.deps, CITIZEN, "not-an-id"),
    ):
        with pytest.raises(NotFound) as raised:
            attempt()
        assert _code(raised) == "ticket_not_found"
    assert reading.list_my_tickets(world.deps, OTHER, 10, None).items == []
    assert world.store.tickets[ticket_id].state is TicketState.REPLIED


def test_another_department_neither_sees_nor_handles_the_ticket(world):
    ticket = world.file()
    with pytest.raises(NotFound):
        reading.get_ticket(world.deps, HR, ticket.ticket_id)
    with pytest.raises(NotFound):
        world.accept(ticket.ticket_id, HR)
    assert world.store.tickets[ticket.ticket_id] == ticket
    with pytest.raises(NotFound) as raised:
        reading.list_department_tickets(
            world.deps,
            HR,
            "dept-scjgj",
            state=None,
            overdue=False,
            due_before=None,
            limit=10,
            start_key=None,
        )
    assert _code(raised) == "department_not_found"


# ---- 12345 work orders ------------------------------------------------------------------


def work_order(order_no: str = "12345-20261126-0001") -> WorkOrder:
    return WorkOrder(
        order_no=order_no,
        received_at=t(2026, 11, 26, 9, 30),
        description="企业设立登记网上提交被退回，来电反映",
        caller_name="张伟",
        caller_mobile="13812345678",
        item_code="QP-SC-101",
        contact_days=1,
        resolve_days=3,
    )


def test_a_work_order_sent_three_times_makes_one_ticket_on_its_own_deadlines(world):
    orders = InMemoryHotlineStore()
    results = [intake.receive_work_order(world.deps, orders, work_order()) for _ in range(3)]
    assert [r.created for r in results] == [True, False, False]
    assert len({r.ticket.ticket_id for r in results}) == 1 and len(world.store.tickets) == 1
    ticket = results[0].ticket
    assert ticket.channel is Channel.HOTLINE and ticket.department_id == "dept-scjgj"
    assert ticket.details["hotline"]["resolve_due_at"] == "2026-12-01T23:59:59+08:00"
    assert ticket.clocks[ticket.resolve_key].due_at == t(2026, 12, 1, 23, 59, 59)
    assert world.outbox.categories().count("ticket.dispatched") == 1


def test_the_result_of_a_work_order_is_reported_to_12345_once_per_entry(world):
    filed = intake.receive_work_order(world.deps, InMemoryHotlineStore(), work_order())
    ticket_id = filed.ticket.ticket_id
    world.accept(ticket_id)
    world.reply(ticket_id)
    reported = [r for r in world.outbox.calls if r.category == "hotline.result"]
    assert [(r.recipient_id, r.data["state"]) for r in reported] == [
        (hotline.HOTLINE_DEPARTMENT_ID, "replied")
    ]
    assert reported[0].data["order_no"] == "12345-20261126-0001"


# ---- routing rules, limits and the report -------------------------------------------------


def test_routing_rules_are_replaced_on_the_version_read_and_audited(world):
    admin = Principal("u-admin", Role.ADMIN, "系统管理员")
    rule = RoutingRule("hr-items", "人社事项", "dept-rsj", kinds=frozenset({TicketKind.OTHER}))
    new = routing.replace_rule_set(
        world.deps, admin, rules=[rule], item_departments={}, expected_version=1
    )
    assert new.version == 2 and world.store.current_rule_set() == new
    assert world.audit.actions()[-1] == "ticket_routing.updated"
    with pytest.raises(Conflict) as raised:
        routing.replace_rule_set(
            world.deps, admin, rules=[rule], item_departments={}, expected_version=1
        )
    assert _code(raised) == "ruleset_changed"
    unknown = replace(rule, department_id="dept-none")
    with pytest.raises(InvalidInput):
        routing.replace_rule_set(
            world.deps, admin, rules=[unknown], item_departments={}, expected_version=2
        )
    assert world.store.current_rule_set().version == 2


def test_new_limits_are_stored_on_the_version_read_and_govern_later_intakes(world):
    admin = Principal("u-admin", Role.ADMIN, "系统管理员")
    longer = replace(TicketLimits(), contact_days=2)
    stored = limits.replace_limits(
        world.deps, admin, limits=longer, effective_from=None, expected_version=0
    )
    assert stored.version == 1
    with pytest.raises(Conflict) as raised:
        limits.replace_limits(
            world.deps, admin, limits=longer, effective_from=None, expected_version=0
        )
    assert _code(raised) == "limits_changed"
    ticket = world.file()
    contact = next(r for r in ticket.clocks.values() if r.kind == "contact")
    assert contact.due_at == t(2026, 11, 30, 23, 59, 59)  # two working days, over a weekend


def test_the_monthly_report_counts_each_departments_events(world):
    first = world.file().ticket_id
    world.file(description="第二件：仍然被退回")
    world.accept(first)
    rows = report.ticket_report(world.deps, SUPERVISOR, "2026-11")
    assert [(r.department_id, r.department_name) for r in rows] == [
        ("dept-scjgj", "青浦区市场监督管理局")
    ]
    counts = rows[0].counts
    assert (counts["received"], counts["contact_judged"], counts["contact_on_time"]) == (2, 1, 1)
    assert rows[0].rate("contact_on_time", "contact_judged") == 1.0
    with pytest.raises(InvalidInput):
        report.ticket_report(world.deps, SUPERVISOR, "2026-13")
