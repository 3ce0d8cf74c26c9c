"""The 12345 hotline: work orders taken in as tickets, and call transfers to a department's
specialist (three-party calls) with their answer rate.

12345 is a party outside the district: its work orders carry their own number and their own
deadlines, in working days, which the district keeps on its working-day calendar; its results
go back to it through the same signed outbound webhooks a department receives, to the
pseudo-department `HOTLINE_DEPARTMENT_ID`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Principal, Role

HOTLINE_DEPARTMENT_ID = "hotline-12345"
HOTLINE_NAME = "12345市民服务热线"
# Work orders are filed in 12345's name, as a dispatcher files a hotline report for a caller.
HOTLINE_PRINCIPAL = Principal(
    user_id="hotline-12345", role=Role.DISPATCHER, display_name=HOTLINE_NAME
)
ANSWER_RATE_TARGET = 0.90
# 12345's usual limits when an order names none: contact within 1 working day, resolve in 5.
DEFAULT_CONTACT_DAYS = 1
DEFAULT_RESOLVE_DAYS = 5

ORDER_NO = re.compile(r"^[A-Za-z0-9\-]{4,40}$")
TRANSFER_ID = re.compile(r"^[A-Za-z0-9\-]{4,64}$")


def month_of(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m")


@dataclass(frozen=True)
class WorkOrder:
    """One 12345 work order as the platform sends it."""

    order_no: str
    received_at: datetime  # when 12345 took the call
    description: str
    caller_name: str
    caller_mobile: str
    caller_id_number: str | None = None
    item_code: str | None = None
    contact_days: int = DEFAULT_CONTACT_DAYS
    resolve_days: int = DEFAULT_RESOLVE_DAYS

    def __post_init__(self) -> None:
        if not ORDER_NO.match(self.order_no):
            raise InvalidInput("12345 工单编号格式不正确", code="invalid_order_no")
        for name in ("contact_days", "resolve_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 60:
                raise InvalidInput(f"{name} 应为1到60个工作日", code="invalid_order_deadline")
        if self.contact_days > self.resolve_days:
            raise InvalidInput("联系时限不能晚于办结时限", code="invalid_order_deadline")

    @property
    def subject_id(self) -> str:
        """Who the ticket is about: the caller's ID number, else the order (12345 callers need
        not give one; the order then stands for the person)."""
        return self.caller_id_number or f"12345-{self.order_no}"


def order_details(order: WorkOrder, contact_due: datetime, resolve_due: datetime) -> dict[str, Any]:
    """What a ticket keeps of its 12345 order (under `details["hotline"]`)."""
    return {
        "order_no": order.order_no,
        "received_at": order.received_at.astimezone(CHINA_TZ).isoformat(),
        "contact_days": order.contact_days,
        "resolve_days": order.resolve_days,
        "contact_due_at": contact_due.astimezone(CHINA_TZ).isoformat(),
        "resolve_due_at": resolve_due.astimezone(CHINA_TZ).isoformat(),
    }


# ---- three-party transfers ------------------------------------------------------------------


class TransferOutcome(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"


@dataclass(frozen=True)
class Transfer:
    """A call 12345 offered to a department's specialist: answered or missed."""

    transfer_id: str
    department_id: str
    offered_at: datetime
    outcome: TransferOutcome
    answered_at: datetime | None = None
    order_no: str | None = None

    def __post_init__(self) -> None:
        if not TRANSFER_ID.match(self.transfer_id):
            raise InvalidInput("转接记录编号格式不正确", code="invalid_transfer_id")
        if self.outcome is TransferOutcome.ANSWERED and self.answered_at is None:
            raise InvalidInput("已接听的转接须填写接听时间", code="answered_at_required")
        if self.answered_at is not None and self.answered_at < self.offered_at:
            raise InvalidInput("接听时间不能早于转接时间", code="invalid_answered_at")

    @property
    def month(self) -> str:
        return month_of(self.offered_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "department_id": self.department_id,
            "offered_at": self.offered_at.astimezone(CHINA_TZ).isoformat(),
            "outcome": self.outcome.value,
            "answered_at": (
                self.answered_at.astimezone(CHINA_TZ).isoformat() if self.answered_at else None
            ),
            "order_no": self.order_no,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transfer:
        answered = data.get("answered_at")
        return cls(
            transfer_id=data["transfer_id"],
            department_id=data["department_id"],
            offered_at=datetime.fromisoformat(data["offered_at"]),
            outcome=TransferOutcome(data["outcome"]),
            answered_at=datetime.fromisoformat(answered) if answered else None,
            order_no=data.get("order_no"),
        )


@dataclass(frozen=True)
class AnswerRate:
    department_id: str
    offered: int
    answered: int
    missed: int

    @property
    def rate(self) -> float | None:
        return round(self.answered / self.offered, 4) if self.offered else None

    @property
    def met(self) -> bool | None:
        return None if self.rate is None else self.rate >= ANSWER_RATE_TARGET

    def to_dict(self) -> dict[str, Any]:
        return {
            "department_id": self.department_id,
            "offered": self.offered,
            "answered": self.answered,
            "missed": self.missed,
            "answer_rate": self.rate,
            "target": ANSWER_RATE_TARGET,
            "met": self.met,
        }


def answer_rates(transfers: Iterable[Transfer]) -> tuple[AnswerRate, list[AnswerRate]]:
    """The overall answer rate ("*") and one per department, by department id."""
    counts: dict[str, list[int]] = {}
    for transfer in transfers:
        bucket = counts.setdefault(transfer.department_id, [0, 0])
        bucket[0 if transfer.outcome is TransferOutcome.ANSWERED else 1] += 1
    rows = [
        AnswerRate(department, answered + missed, answered, missed)
        for department, (answered, missed) in sorted(counts.items())
    ]
    total = AnswerRate(
        "*",
        sum(r.offered for r in rows),
        sum(r.answered for r in rows),
        sum(r.missed for r in rows),
    )
    return total, rows
