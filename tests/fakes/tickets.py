"""In-memory ticket store, transactions and notification outbox with the semantics the ticket
use cases rely on, as `adapters/dynamodb/tickets.py`, `transaction.py` and `notifications.py`
give them:

- a ticket is stored on the version it was read at (`ticket_changed` otherwise), a create
  refuses an id taken (None outside a transaction, `ticket_exists` inside one);
- lists are pages in index order with a cursor that belongs to its own list (`invalid_cursor`);
- an event is counted once (a count marker per ticket, entry and department);
- `atomic()` keeps every write of its block or none: the stores taking part are put back as
  they were when the block raises. Inside it a write whose condition fails is not made but
  answered as if it were, and fails the whole block at its end, as in one DynamoDB
  transaction: with the conflict the write named (the latest such), else `effect_conflict`
  (an effect found already stored: a clock, a notification, a count marker). Outside a
  transaction the same effect writes are idempotent."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamodb.tickets import COUNTERS
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import Clock
from chalicelib.domain.errors import Conflict, InvalidInput
from chalicelib.domain.hotline import Transfer
from chalicelib.domain.notifications import NotificationRequest
from chalicelib.domain.tickets.limits import TicketLimitsVersion
from chalicelib.domain.tickets.routing import RuleSet
from chalicelib.domain.tickets.ticket import Ticket, TicketState
from chalicelib.service_layer.notify import Notifier
from chalicelib.service_layer.ports import Page
from chalicelib.service_layer.ports.deadlines import ClockStore
from chalicelib.service_layer.ports.hotline import HotlineStore
from chalicelib.service_layer.ports.tickets import TicketStore
from chalicelib.service_layer.ports.transactions import Transactions
from tests.fakes.deadlines import InMemoryClockStore

_LIMITS_RECENT = 20
_NO_DUE = "~"


def effect_conflict() -> Conflict:
    return Conflict("关联数据已被更新，请重试", code="effect_conflict")


# ---- transactions -----------------------------------------------------------------------


@dataclass
class InMemoryTransaction:
    after: list[Callable[[], None]] = field(default_factory=list)
    failed: list[tuple[Conflict, bool]] = field(default_factory=list)  # (conflict, named)

    def after_commit(self, action: Callable[[], None]) -> None:
        self.after.append(action)

    def condition_failed(self, conflict: Conflict, *, named: bool) -> None:
        self.failed.append((conflict, named))

    def conflict(self) -> Conflict | None:
        """The adapter's choice: the latest write that named its conflict (the changed item
        itself, enlisted after its effects), else the first failed effect."""
        named = [c for c, is_named in self.failed if is_named]
        if named:
            return named[-1]
        return self.failed[0][0] if self.failed else None


def _snapshot(store: Any) -> dict[str, Any]:
    # The data a store holds are its dict, list and set fields; callables and clocks are not.
    assert is_dataclass(store), f"{type(store).__name__} is not a dataclass"
    return {
        f.name: copy.deepcopy(getattr(store, f.name))
        for f in fields(store)
        if isinstance(getattr(store, f.name), (dict, list, set))
    }


@dataclass
class InMemoryTransactions:
    """`participants` are the stores whose writes the block keeps or drops together.
    `fail_commit`: the next commit raises it after the block ran (e.g. a transaction too large,
    which the use cases answer by taking the step-by-step path); nothing is kept."""

    participants: list[Any] = field(default_factory=list)
    fail_commit: Conflict | None = None
    commits: int = 0
    current: InMemoryTransaction | None = None

    @property
    def open(self) -> bool:
        return self.current is not None

    @contextlib.contextmanager
    def atomic(self) -> Iterator[InMemoryTransaction]:
        if self.current is not None:  # nested blocks join the outermost
            yield self.current
            return
        saved = [(store, _snapshot(store)) for store in self.participants]
        transaction = self.current = InMemoryTransaction()
        try:
            yield transaction
            failure, self.fail_commit = self.fail_commit, None
            failure = transaction.conflict() or failure
            if failure is not None:
                raise failure
        except BaseException:
            for store, state in saved:
                for name, value in state.items():
                    setattr(store, name, value)
            raise
        finally:
            self.current = None
        self.commits += 1
        for action in transaction.after:
            action()


def _open(transactions: InMemoryTransactions | None) -> InMemoryTransaction | None:
    return transactions.current if transactions is not None else None


# ---- tickets ----------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).isoformat(timespec="microseconds")


def _queue_key(ticket: Ticket) -> str | None:
    if ticket.state is TicketState.SUBMITTED:
        return "unrouted"
    if ticket.state is TicketState.RETURN_REQUESTED:
        return "return"
    extension = ticket.details.get("extension") or {}
    if ticket.is_open and extension.get("status") == "pending":
        return "extension"
    return None


def _dept_sort(ticket: Ticket) -> str:
    due = ticket.governing_due
    return f"{_iso(due) if due else _NO_DUE}#{ticket.ticket_id}"


def _created_sort(ticket: Ticket) -> str:
    return f"{_iso(ticket.created_at)}#{ticket.ticket_id}"


def _paged(
    items: list[Ticket],
    sort: Callable[[Ticket], str],
    *,
    attribute: str,
    value: str,
    limit: int,
    start_key: dict[str, Any] | None,
    descending: bool = False,
) -> Page[Ticket]:
    """One page in index order after the cursor; the cursor names its list, as the adapter's
    does, and a cursor of another list is refused."""
    if start_key is not None:
        held = start_key.get(attribute)
        if not isinstance(held, dict) or held.get("S") != value:
            raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor")
    ordered = sorted(items, key=sort, reverse=descending)
    if start_key is not None:
        after = start_key["sort"]["S"]
        ordered = [t for t in ordered if (sort(t) < after if descending else sort(t) > after)]
    page = ordered[:limit]
    more = len(ordered) > limit
    last = {attribute: {"S": value}, "sort": {"S": sort(page[-1])}} if more else None
    return Page(page, last)


@dataclass
class InMemoryTicketStore:
    transactions: InMemoryTransactions | None = None
    tickets: dict[str, Ticket] = field(default_factory=dict)
    rule_sets: dict[int, RuleSet] = field(default_factory=dict)
    limits: dict[int, TicketLimitsVersion] = field(default_factory=dict)
    markers: set[tuple[str, int, str]] = field(default_factory=set)
    counters: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    # -- the aggregate --------------------------------------------------------------------

    def get(self, ticket_id: str) -> Ticket | None:
        return self.tickets.get(ticket_id)

    def create(self, ticket: Ticket) -> Ticket | None:
        """None when the id is taken; in a transaction that fails it with `ticket_exists`."""
        new = replace(ticket, version=1)
        if ticket.ticket_id in self.tickets:
            transaction = _open(self.transactions)
            if transaction is None:
                return None
            transaction.condition_failed(Conflict("工单已存在", code="ticket_exists"), named=True)
            return new
        self.tickets[ticket.ticket_id] = new
        return new

    def save(self, ticket: Ticket) -> Ticket:
        """Stored on the version read, else `ticket_changed` (at the transaction's end)."""
        current = self.tickets.get(ticket.ticket_id)
        new = replace(ticket, version=(ticket.version or 0) + 1)
        if (current.version if current is not None else None) != ticket.version:
            changed = Conflict("工单已被他人更新，请刷新后重试", code="ticket_changed")
            transaction = _open(self.transactions)
            if transaction is None:
                raise changed
            transaction.condition_failed(changed, named=True)
            return new
        self.tickets[ticket.ticket_id] = new
        return new

    # -- lists ----------------------------------------------------------------------------

    def by_owner(
        self, owner_key: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Ticket]:
        mine = [t for t in self.tickets.values() if t.owner.key == owner_key]
        return _paged(
            mine,
            _created_sort,
            attribute="owner_key",
            value=owner_key,
            limit=limit,
            start_key=start_key,
            descending=True,
        )

    def by_department(
        self,
        department_id: str,
        state: TicketState | None,
        due_before: datetime | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> Page[Ticket]:
        found = [
            t
            for t in self.tickets.values()
            if t.department_id == department_id and (state is None or t.state is state)
        ]
        if due_before is not None:
            bound = _iso(due_before)
            found = [t for t in found if _dept_sort(t) < bound]
        attribute, value = (
            ("dept_key", department_id)
            if state is None
            else ("dept_state_key", f"{department_id}#{state.value}")
        )
        return _paged(
            found, _dept_sort, attribute=attribute, value=value, limit=limit, start_key=start_key
        )

    def open_for_owner_item(
        self, owner_key: str, service_item_id: str
    ) -> list[tuple[str, str, str | None, TicketState]]:
        found = [
            t
            for t in self.tickets.values()
            if t.is_open and t.owner.key == owner_key and t.service_item_id == service_item_id
        ]
        newest = sorted(found, key=_created_sort, reverse=True)[:20]
        return [(t.ticket_id, t.owner.key, t.service_item_id, t.state) for t in newest]

    def queue(self, queue_key: str, limit: int, start_key: dict[str, Any] | None) -> Page[Ticket]:
        found = [t for t in self.tickets.values() if _queue_key(t) == queue_key]
        return _paged(
            found,
            _created_sort,
            attribute="queue_key",
            value=queue_key,
            limit=limit,
            start_key=start_key,
        )

    # -- routing rules and limits ---------------------------------------------------------

    def current_rule_set(self) -> RuleSet:
        return self.rule_sets[max(self.rule_sets)] if self.rule_sets else RuleSet()

    def put_rule_set(self, rules: RuleSet) -> bool:
        if rules.version in self.rule_sets:
            return False
        self.rule_sets[rules.version] = rules
        return True

    def limits_versions(self) -> list[TicketLimitsVersion]:
        return [self.limits[v] for v in sorted(self.limits, reverse=True)][:_LIMITS_RECENT]

    def put_limits_version(self, version: TicketLimitsVersion) -> bool:
        if version.version in self.limits:
            return False
        self.limits[version.version] = version
        return True

    # -- report counters ------------------------------------------------------------------

    def count(
        self,
        ticket_id: str,
        seq: int,
        department_id: str,
        month: str,
        amounts: dict[str, int],
        now: datetime,
    ) -> bool:
        unknown = set(amounts) - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown ticket counters: {sorted(unknown)}")
        marker = (ticket_id, seq, department_id)
        if marker in self.markers:
            transaction = _open(self.transactions)
            if transaction is None:
                return False
            transaction.condition_failed(effect_conflict(), named=False)
            return True
        self.markers.add(marker)
        figures = self.counters.setdefault((month, department_id), {})
        for name, amount in amounts.items():
            figures[name] = figures.get(name, 0) + amount
        return True

    def month_counters(self, month: str) -> dict[str, dict[str, int]]:
        return {d: dict(f) for (m, d), f in self.counters.items() if m == month}


# ---- clocks and notifications as they take part in a transaction -------------------------


@dataclass
class TransactionalClockStore(InMemoryClockStore):
    """Inside a transaction a clock created again fails it with `clock_exists`, and one saved
    on a stale version with `clock_changed` (the adapter's conflicts for those writes);
    outside one they answer None and raise, as before."""

    transactions: InMemoryTransactions | None = None

    def create(self, clock: Clock, now: datetime) -> Clock | None:
        transaction = _open(self.transactions)
        if transaction is not None and self.get(clock.clock_id) is not None:
            transaction.condition_failed(Conflict("计时已存在", code="clock_exists"), named=True)
            return replace(clock, version=1)
        return super().create(clock, now)

    def save(self, clock: Clock, now: datetime) -> Clock:
        transaction = _open(self.transactions)
        current = self.get(clock.clock_id)
        if transaction is not None and current is not None and current.version != clock.version:
            changed = Conflict("计时已被他人更新，请重试", code="clock_changed")
            transaction.condition_failed(changed, named=True)
            return replace(clock, version=(clock.version or 0) + 1)
        return super().save(clock, now)


@dataclass
class InMemoryOutbox:
    """Notifications once per business key. `calls` records every call (a use case that asks
    twice shows there); `fail_keys` makes the outbox fail for those keys."""

    transactions: InMemoryTransactions | None = None
    stored: dict[str, NotificationRequest] = field(default_factory=dict)
    calls: list[NotificationRequest] = field(default_factory=list)
    fail_keys: set[str] = field(default_factory=set)

    def notify(self, request: NotificationRequest) -> tuple[str, bool]:
        self.calls.append(request)
        if request.business_key in self.fail_keys:
            raise RuntimeError("notification store unavailable")
        if request.business_key in self.stored:
            transaction = _open(self.transactions)
            if transaction is None:
                return request.business_key, False
            transaction.condition_failed(effect_conflict(), named=False)
        else:
            self.stored[request.business_key] = request
        return request.business_key, True

    def categories(self) -> list[str]:
        return [r.category for r in self.stored.values()]


@dataclass
class InMemoryHotlineStore:
    """12345 order claims (the first arrival's ticket id wins, never deleted) and transfers
    stored once per id."""

    orders: dict[str, dict[str, str]] = field(default_factory=dict)
    transfers: dict[str, Transfer] = field(default_factory=dict)

    def claim_order(self, order_no: str, ticket_id: str, received_at: str) -> str:
        claim = self.orders.setdefault(
            order_no, {"ticket_id": ticket_id, "received_at": received_at}
        )
        return claim["ticket_id"]

    def order_ticket(self, order_no: str) -> str | None:
        claim = self.orders.get(order_no)
        return claim["ticket_id"] if claim else None

    def record_transfer(self, transfer: Transfer) -> bool:
        if transfer.transfer_id in self.transfers:
            return False
        self.transfers[transfer.transfer_id] = transfer
        return True

    def transfers_in_month(self, month: str) -> list[Transfer]:
        return [t for t in self.transfers.values() if t.month == month]


def _checked() -> tuple[TicketStore, Transactions, Notifier, ClockStore, HotlineStore]:
    transactions = InMemoryTransactions()
    return (
        InMemoryTicketStore(transactions),
        transactions,
        InMemoryOutbox(transactions),
        TransactionalClockStore(transactions=transactions),
        InMemoryHotlineStore(),
    )
