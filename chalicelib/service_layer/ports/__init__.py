"""What the use cases ask of the world outside: the values they pass to it and the Protocols
the adapters (and the tests' fakes) implement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from chalicelib.domain.directory import Department, UserProfile

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paginated list: `last_key` is None on the last page."""

    items: list[T]
    last_key: dict[str, Any] | None


class TimeSource(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Disbursement:
    payment_id: str  # the business key: one payment per grant
    subject_id: str
    amount: int | None  # 元
    memo: str
    at: str


@dataclass(frozen=True)
class Receipt:
    payment_ref: str
    booked_now: bool  # False: the payment had been booked by an earlier delivery


class Finance(Protocol):
    """Pays a benefit, idempotently on the payment id."""

    def disburse(self, payment: Disbursement) -> Receipt: ...


class Directory(Protocol):
    """People and departments (`adapters/dynamodb/directory.py`)."""

    def get_user(self, user_id: str) -> UserProfile | None: ...
    def put_user(self, user: UserProfile) -> None: ...
    def list_users(
        self, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[UserProfile], dict[str, Any] | None]: ...
    def get_department(self, department_id: str) -> Department | None: ...
    def put_department(self, department: Department) -> None: ...
