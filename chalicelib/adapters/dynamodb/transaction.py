"""One DynamoDB transaction for a change and its synchronous effects.

Inside `Transactions.atomic()` the stores that take part (tickets, clocks, deadline counters,
the notification outbox, the audit facts) do not write: they enlist their writes here, and the
block's end commits them all in one TransactWriteItems, so a change is never stored without its
effects, nor effects without their change. Outside a transaction the same stores write at once.

DynamoDB's limits shape it:
- one item at most once per transaction: a second put of the same key replaces the first's
  item but keeps the first's condition (the one about what is stored now); ADD updates of the
  same counter are summed into one update;
- at most 100 items: optional writes (audit facts, which may also be written at the end of the
  request) leave the transaction when it would be too large; if the required writes alone are
  too many, `TransactionTooLarge` is raised before anything is written and the caller takes its
  step-by-step path.

A failed condition raises the `Conflict` the enlisting store named for that write (e.g.
"ticket_changed"), or `EffectConflict` for a write that named none. Reads of an item enlisted
in the current transaction answer the enlisted state (`pending`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from chalicelib.domain.errors import Conflict

MAX_ITEMS = 100

_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "dynamodb_transaction", default=None
)


class TransactionTooLarge(Conflict):
    """The required writes of one change exceed what one transaction holds (nothing was
    written; the caller takes its step-by-step path)."""

    def __init__(self, count: int):
        super().__init__(f"一次写入的数据过多（{count} 项）", code="transaction_too_large")


def effect_conflict() -> Conflict:
    return Conflict("关联数据已被更新，请重试", code="effect_conflict")


@dataclass
class _Write:
    kind: str  # "put" | "add"
    model_cls: type[Model]
    key: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    model: Model | None = None  # put: the item as enlisted
    amounts: dict[str, int] = field(default_factory=dict)  # add: attribute -> amount
    on_conflict: Callable[[], Exception] = effect_conflict
    optional: bool = False
    order: int = 0  # when it was enlisted: the change is enlisted after its effects


def _table(model_cls: type[Model]) -> str:
    return str(model_cls.Meta.table_name)


def _key_of(model: Model) -> tuple[Any, ...]:
    serialized = model._get_hash_range_key_serialized_values()
    return (_table(type(model)), repr(serialized))


def _class_key(model_cls: type[Model], hash_key: Any, range_key: Any = None) -> tuple[Any, ...]:
    probe = model_cls(hash_key, range_key) if range_key is not None else model_cls(hash_key)
    return _key_of(probe)


class Transaction:
    def __init__(self) -> None:
        self._writes: dict[tuple[Any, ...], _Write] = {}
        self._after: list[Callable[[], None]] = []

    # -- enlisting ------------------------------------------------------------------------------

    def put(
        self,
        model: Model,
        condition: Condition | None = None,
        *,
        on_conflict: Callable[[], Exception] = effect_conflict,
        optional: bool = False,
    ) -> Model:
        """Enlist a put (with the model's version check, as `Model.save` does); the model's
        local version moves on as if written."""
        key = _key_of(model)
        kwargs = model.get_save_kwargs_from_instance(condition=condition)
        model.update_local_version_attribute()
        earlier = self._writes.get(key)
        if earlier is not None:
            if earlier.kind != "put":
                raise ValueError(f"{key} is both updated and put in one transaction")
            earlier.kwargs["Item"] = kwargs["Item"]
            earlier.model = model
            return model
        self._writes[key] = _Write(
            "put",
            type(model),
            key,
            kwargs,
            model=model,
            on_conflict=on_conflict,
            optional=optional,
            order=len(self._writes),
        )
        return model

    def add(
        self,
        model_cls: type[Model],
        hash_key: Any,
        range_key: Any,
        amounts: dict[str, int],
    ) -> None:
        """Enlist ADD updates of number attributes; amounts for the same item are summed."""
        key = _class_key(model_cls, hash_key, range_key)
        write = self._writes.get(key)
        if write is None:
            write = self._writes[key] = _Write(
                "add", model_cls, key, kwargs={}, order=len(self._writes)
            )
            write.kwargs["_keys"] = (hash_key, range_key)
        elif write.kind != "add":
            raise ValueError(f"{key} is both put and updated in one transaction")
        for name, amount in amounts.items():
            write.amounts[name] = write.amounts.get(name, 0) + amount

    def pending(self, model_cls: type[Model], hash_key: Any, range_key: Any = None) -> Any:
        """The item as enlisted in this transaction (a put), or None."""
        write = self._writes.get(_class_key(model_cls, hash_key, range_key))
        return write.model if write is not None and write.kind == "put" else None

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction is written (never if it fails)."""
        self._after.append(action)

    @property
    def size(self) -> int:
        return len(self._writes)

    # -- committing ----------------------------------------------------------------------------

    def commit(self, connection: Any) -> list[_Write]:
        """Write every enlisted item in one call; answers the optional writes that were left out
        (the caller writes them some other way)."""
        writes = list(self._writes.values())
        required = [w for w in writes if not w.optional]
        optional = [w for w in writes if w.optional]
        if len(required) > MAX_ITEMS:
            raise TransactionTooLarge(len(required))
        room = MAX_ITEMS - len(required)
        included = required + optional[:room]
        left_out = optional[room:]
        if not included:
            return left_out
        puts = [w for w in included if w.kind == "put"]
        adds = [w for w in included if w.kind == "add"]
        updates = [_update_kwargs(w) for w in adds]
        try:
            connection.transact_write_items(
                condition_check_items=[],
                delete_items=[],
                put_items=[w.kwargs for w in puts],
                update_items=updates,
            )
        except TransactWriteError as error:
            raise _conflict_of(error, puts + adds) from error
        for action in self._after:
            action()
        return left_out


def _update_kwargs(write: _Write) -> dict[str, Any]:
    hash_key, range_key = write.kwargs["_keys"]
    model_cls = write.model_cls
    item = model_cls(hash_key, range_key) if range_key is not None else model_cls(hash_key)
    actions = [getattr(model_cls, name).add(amount) for name, amount in write.amounts.items()]
    return item.get_update_kwargs_from_instance(actions=actions, add_version_condition=False)


def _conflict_of(error: TransactWriteError, ordered: list[_Write]) -> Exception:
    """The conflict of the failed write that says most: a write that named its own conflict
    (the changed item itself, e.g. the ticket) before effects that found themselves stored
    (which a change stored meanwhile explains)."""
    reasons = error.cancellation_reasons or []
    failed = [
        write
        for write, reason in zip(ordered, reasons, strict=False)
        if reason is not None and reason.code == "ConditionalCheckFailed"
    ]
    named = [w for w in failed if w.on_conflict is not effect_conflict]
    if named:
        return max(named, key=lambda w: w.order).on_conflict()
    if failed:
        return failed[0].on_conflict()
    if any(r is not None and r.code == "TransactionConflict" for r in reasons):
        return effect_conflict()
    return error


def current() -> Transaction | None:
    """The transaction of this context, if one is open."""
    return _current.get()


class Transactions:
    """Opens transactions; one per container (its client is costly to build)."""

    def __init__(self, spill: Callable[[list[Model]], None] | None = None) -> None:
        self._connection: Any = None
        # Writes optional items that did not fit (a batch write); by default one by one.
        self._spill = spill or (lambda models: [m.save() for m in models])

    def client(self) -> Any:
        if self._connection is None:
            from pynamodb.connection import Connection

            from chalicelib.settings import get_settings

            settings = get_settings()
            self._connection = Connection(
                region=settings.aws_region, host=settings.aws_endpoint_url, max_retry_attempts=3
            )
        return self._connection

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Transaction]:
        """Collect the writes made inside; commit them in one call at the end. Nested blocks
        join the outermost. A block that raises writes nothing."""
        open_one = _current.get()
        if open_one is not None:
            yield open_one
            return
        transaction = Transaction()
        token = _current.set(transaction)
        try:
            yield transaction
        finally:
            _current.reset(token)
        left_out = transaction.commit(self.client())
        if left_out:
            self._spill([w.model for w in left_out if w.model is not None])
