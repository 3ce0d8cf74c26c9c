"""The operations table ("operations"): 12345 work orders and call transfers, the facts other
capabilities record for the monthly operations report, and the reports. Keys (pk, sk):

- order:    ("order#<order no>", "order"): the ticket a 12345 order became (conditional put:
            the first arrival claims the number, every retry finds its ticket);
- transfer: ("transfer#<YYYY-MM>", <transfer id>): one three-party call transfer, once;
- fact:     ("fact#<YYYY-MM>#<kind>", <id>): one help request's pick-up and outcome, one
            window service's wait and handling; written again under its id to update it;
- report:   ("report#<YYYY-MM>", "report"): the month's report, written once.

Every read is by key or one month's partition (paginated Query), never table-wide.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, meta
from chalicelib.domain.hotline import Transfer


class OperationsRecord(Model):
    Meta = meta("operations")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    item_type = UnicodeAttribute()  # order | transfer | fact | report
    data = JSONAttribute()


def _put_new(record: OperationsRecord) -> bool:
    try:
        record.save(condition=OperationsRecord.pk.does_not_exist())
    except PutError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _get(pk: str, sk: str) -> OperationsRecord | None:
    try:
        return OperationsRecord.get(pk, sk, consistent_read=True)
    except OperationsRecord.DoesNotExist:
        return None


def _partition(pk: str) -> list[dict[str, Any]]:
    return [dict(item.data) for item in OperationsRecord.query(pk, consistent_read=True)]


class DynamoHotlineStore:
    def claim_order(self, order_no: str, ticket_id: str, received_at: str) -> str:
        data = {"order_no": order_no, "ticket_id": ticket_id, "received_at": received_at}
        if _put_new(OperationsRecord(f"order#{order_no}", "order", item_type="order", data=data)):
            return ticket_id
        claimed = self.order_ticket(order_no)
        if claimed is None:  # a claim is never deleted
            raise RuntimeError("order claim vanished")
        return claimed

    def order_ticket(self, order_no: str) -> str | None:
        item = _get(f"order#{order_no}", "order")
        return str(item.data["ticket_id"]) if item is not None else None

    def record_transfer(self, transfer: Transfer) -> bool:
        return _put_new(
            OperationsRecord(
                f"transfer#{transfer.month}",
                transfer.transfer_id,
                item_type="transfer",
                data=transfer.to_dict(),
            )
        )

    def transfers_in_month(self, month: str) -> list[Transfer]:
        return [Transfer.from_dict(data) for data in _partition(f"transfer#{month}")]


class DynamoOperationsStore:
    def put_fact(self, month: str, kind: str, fact_id: str, data: dict[str, Any]) -> None:
        OperationsRecord(f"fact#{month}#{kind}", fact_id, item_type="fact", data=data).save()

    def facts(self, month: str, kind: str) -> list[dict[str, Any]]:
        return _partition(f"fact#{month}#{kind}")

    def put_report_once(self, month: str, report: dict[str, Any]) -> bool:
        return _put_new(
            OperationsRecord(f"report#{month}", "report", item_type="report", data=report)
        )

    def get_report(self, month: str) -> dict[str, Any] | None:
        item = _get(f"report#{month}", "report")
        return dict(item.data) if item is not None else None
