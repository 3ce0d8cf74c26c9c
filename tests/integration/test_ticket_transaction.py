"""A ticket change and its effects are one transaction: all of them are stored, or none.

Also the transaction helper's own rules on moto: one write per item (a second put keeps the
first's condition, counter additions are summed), at most 100 items (audit facts may leave the
transaction, required writes may not), and the conflict named by the write whose condition
failed."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.errors import Conflict
from tests.integration.test_tickets import ACCEPT, MARKET, act, filed, ok


@pytest.fixture(autouse=True)
def rules(container):
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)


def _intake_calls(container, api) -> tuple[dict, list[str]]:
    calls: list[str] = []
    from pynamodb.connection.base import Connection

    real = Connection._make_api_call

    def counting(self, operation_name, operation_kwargs):
        calls.append(operation_name)
        return real(self, operation_name, operation_kwargs)

    Connection._make_api_call = counting
    try:
        view = filed(api)
    finally:
        Connection._make_api_call = real
    return view, calls


def test_an_intake_stores_the_ticket_with_all_its_effects_in_one_write(api, container):
    view, calls = _intake_calls(container, api)
    ticket = container.ticket_store.get(view["ticket_id"])
    assert not ticket.pending_effects
    assert {ref.kind for ref in ticket.clocks.values()} == {"contact", "resolve"}
    for ref in ticket.clocks.values():
        assert container.clock_store.get(ref.clock_id).state.value == "running"
    writes = [c for c in calls if c in ("PutItem", "UpdateItem", "TransactWriteItems")]
    assert writes.count("TransactWriteItems") == 1
    # Only the idempotency record is written outside it (in progress, then the answer).
    assert writes.count("PutItem") <= 2 and "UpdateItem" not in writes


def test_a_transition_that_loses_the_race_stores_none_of_its_effects(api, container):
    from chalicelib.domain.tickets import transitions
    from chalicelib.service_layer.tickets.common import TicketDeps
    from chalicelib.service_layer.tickets.effects import _store_with_effects

    ticket_id = filed(api)["ticket_id"]
    deps = TicketDeps.from_container(container)
    stale = container.ticket_store.get(ticket_id)
    ok(act(api, ticket_id, "accept", MARKET, ACCEPT))  # the winner, meanwhile
    staff = container.directory.get_user(MARKET).principal()
    contact = next(r for r in stale.clocks.values() if r.kind == "contact")
    before = container.clock_store.get(contact.clock_id)
    transfer = transitions.transfer(
        stale,
        staff,
        container.clock.now(),
        department_id="dept-rsj",
        department_name="区人社局",
        reason="不属本单位",
    )
    with pytest.raises(Conflict) as raised:
        _store_with_effects(deps, transfer, create=False)
    assert raised.value.code == "ticket_changed"
    after = container.clock_store.get(contact.clock_id)
    assert (after.state, after.version) == (before.state, before.version)
    stored = container.ticket_store.get(ticket_id)
    assert stored.state.value == "accepted" and stored.department_id != "dept-rsj"
    entry = transfer.timeline[-1]
    from chalicelib.domain.notifications import notification_id_for

    business_key = f"ticket:{ticket_id}:{entry.seq}:transferred:dept-rsj"
    assert container.notifier.get(notification_id_for(business_key)) is None


# ---- the helper -----------------------------------------------------------------------------


def _counter(name: str):
    from chalicelib.adapters.dynamodb.clocks import DeadlineCounterModel

    try:
        return int(DeadlineCounterModel.get("stats#2026-11", name, consistent_read=True).total)
    except DeadlineCounterModel.DoesNotExist:
        return None


def test_one_item_is_written_once_with_the_first_condition_and_summed_additions(container):
    from chalicelib.adapters.dynamodb.clocks import DeadlineCounterModel, LadderOverrideModel
    from chalicelib.adapters.dynamodb.transaction import Transactions

    transactions = Transactions()
    at = datetime(2026, 11, 26, tzinfo=CHINA_TZ).isoformat()
    with transactions.atomic() as transaction:
        first = LadderOverrideModel("ladder", "t", ladder={"n": 1}, updated_at=at, updated_by="a")
        transaction.put(first, LadderOverrideModel.clock_id.does_not_exist())
        second = LadderOverrideModel("ladder", "t", ladder={"n": 2}, updated_at=at, updated_by="b")
        transaction.put(second)
        transaction.add(DeadlineCounterModel, "stats#2026-11", "k#-#started", {"total": 1})
        transaction.add(DeadlineCounterModel, "stats#2026-11", "k#-#started", {"total": 2})
        assert transaction.size == 2
        assert transaction.pending(LadderOverrideModel, "ladder", "t") is second
    assert LadderOverrideModel.get("ladder", "t").ladder == {"n": 2}
    assert _counter("k#-#started") == 3

    # The kept condition is the first put's: the item exists now, so nothing is written.
    with pytest.raises(Conflict) as raised, transactions.atomic() as transaction:
        again = LadderOverrideModel("ladder", "t", ladder={"n": 3}, updated_at=at, updated_by="c")
        transaction.put(again, LadderOverrideModel.clock_id.does_not_exist())
        transaction.add(DeadlineCounterModel, "stats#2026-11", "k#-#started", {"total": 1})
    assert raised.value.code == "effect_conflict"
    assert LadderOverrideModel.get("ladder", "t").ladder == {"n": 2}
    assert _counter("k#-#started") == 3


def test_too_many_required_writes_write_nothing_and_optional_ones_spill(container):
    from chalicelib.adapters.dynamodb.clocks import DeadlineCounterModel
    from chalicelib.adapters.dynamodb.transaction import MAX_ITEMS, Transactions

    spilled: list = []
    transactions = Transactions(spill=lambda models: spilled.extend(models))
    with pytest.raises(Conflict) as raised, transactions.atomic() as transaction:
        for n in range(MAX_ITEMS + 1):
            transaction.add(DeadlineCounterModel, "stats#2026-11", f"k{n}#-#x", {"total": 1})
    assert raised.value.code == "transaction_too_large"
    assert _counter("k0#-#x") is None

    with transactions.atomic() as transaction:
        for n in range(MAX_ITEMS - 1):
            transaction.add(DeadlineCounterModel, "stats#2026-11", f"k{n}#-#x", {"total": 1})
        for n in range(3):
            transaction.put(
                DeadlineCounterModel("stats#2026-11", f"optional{n}", total=7), optional=True
            )
    assert _counter("k0#-#x") == 1 and _counter(f"k{MAX_ITEMS - 2}#-#x") == 1
    assert _counter("optional0") == 7
    assert [m.step for m in spilled] == ["optional1", "optional2"]
