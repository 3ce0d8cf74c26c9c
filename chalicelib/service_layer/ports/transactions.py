"""Port of the one-write-per-change capability: a change and its synchronous effects stored
together or not at all."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol


class Transaction(Protocol):
    def after_commit(self, action: Callable[[], None]) -> None: ...


class Transactions(Protocol):
    """`adapters/dynamodb/transaction.py` Transactions. Stores that take part enlist their
    writes in the open block; the block's end writes them all, or none if it raises."""

    def atomic(self) -> AbstractContextManager[Transaction]: ...
