"""12345 hotline use cases: the signed inbound calls (work orders, call transfers) and the
transfers' answer rates. A work order's ticket is the tickets capability's: it is taken in
through `take_order`, which the container binds to the tickets use case."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain import hotline as domain
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.hotline import AnswerRate, Transfer, TransferOutcome, WorkOrder
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.audit import AuditLog, record_change
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.ports import Directory
from chalicelib.service_layer.ports.hotline import HotlineStore, InboundVerifier


@dataclass
class HotlineDeps:
    store: HotlineStore
    verifier: InboundVerifier
    directory: Directory
    audit_log: AuditLog
    # The tickets capability's intake of one order: (order) → (ticket id, created).
    take_order: Callable[[WorkOrder], tuple[str, bool]]

    @classmethod
    def from_container(cls, c: Any) -> HotlineDeps:
        return cls(
            store=c.hotline_store,
            verifier=c.hotline_verifier,
            directory=c.directory,
            audit_log=c.audit_log,
            take_order=c.take_work_order,
        )


def _moment(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} 须带时区", code="invalid_time")
        return value
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{name} 应为 ISO 8601 时间", code="invalid_time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} 须带时区", code="invalid_time")
    return moment


def receive_work_order(
    deps: HotlineDeps, headers: Mapping[str, str], body: bytes, order: Mapping[str, Any]
) -> tuple[str, bool]:
    """A work order 12345 sends: checked as 12345's (signature), then taken in as one ticket
    per order number. Answers (ticket id, whether this call created it)."""
    deps.verifier.verify(headers, body)
    work_order = WorkOrder(
        order_no=str(order["order_no"]),
        received_at=_moment(order["received_at"], "received_at"),
        description=str(order["description"]),
        caller_name=str(order["caller_name"]),
        caller_mobile=str(order["caller_mobile"]),
        caller_id_number=order.get("caller_id_number"),
        item_code=order.get("item_code"),
        contact_days=int(order.get("contact_days") or domain.DEFAULT_CONTACT_DAYS),
        resolve_days=int(order.get("resolve_days") or domain.DEFAULT_RESOLVE_DAYS),
    )
    return deps.take_order(work_order)


def receive_transfer(
    deps: HotlineDeps, headers: Mapping[str, str], body: bytes, data: Mapping[str, Any]
) -> tuple[Transfer, bool]:
    """A call 12345 transferred to a department's specialist, answered or missed; stored once
    per transfer id (a retry answers the stored one)."""
    deps.verifier.verify(headers, body)
    department_id = str(data["department_id"])
    if deps.directory.get_department(department_id) is None:
        raise InvalidInput("承办部门不存在", code="department_not_found")
    answered = data.get("answered_at")
    transfer = Transfer(
        transfer_id=str(data["transfer_id"]),
        department_id=department_id,
        offered_at=_moment(data["offered_at"], "offered_at"),
        outcome=TransferOutcome(data["outcome"]),
        answered_at=_moment(answered, "answered_at") if answered else None,
        order_no=data.get("order_no"),
    )
    created = deps.store.record_transfer(transfer)
    if created:
        record_change(
            deps.audit_log,
            domain.HOTLINE_PRINCIPAL,
            "hotline.transfer_recorded",
            "hotline_transfer",
            transfer.transfer_id,
            None,
            transfer.to_dict(),
        )
    return transfer, created


def answer_report(
    deps: HotlineDeps, principal: Principal, month: str
) -> tuple[AnswerRate, list[AnswerRate]]:
    """The month's transfers: answered, missed and the answer rate per department vs 90%."""
    require(principal, Action.READ_TICKET_REPORTS)
    return domain.answer_rates(deps.store.transfers_in_month(month))
