"""The finance adapter: disburses a benefit to a subject, idempotently on a payment id.

Production would call the district finance system's payment API with the payment id as its
idempotency key. Locally the ledger is a table: one entry per subject and payment id, written
by a conditional put, so a payment delivered three times is booked once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.service_layer.ports import Disbursement, Receipt

__all__ = ["Disbursement", "LocalLedgerFinance", "Receipt"]


class LocalLedgerFinance:
    def disburse(self, payment: Disbursement) -> Receipt:
        from pynamodb.exceptions import PutError

        from chalicelib.adapters.dynamodb.policies import LedgerRecord

        ref = "PAY" + hashlib.sha256(payment.payment_id.encode()).hexdigest()[:16].upper()
        record = LedgerRecord(
            f"subject#{payment.subject_id}",
            f"payment#{payment.payment_id}",
            data={
                "payment_ref": ref,
                "payment_id": payment.payment_id,
                "subject_id": payment.subject_id,
                "amount": payment.amount,
                "memo": payment.memo,
                "at": payment.at,
            },
        )
        try:
            record.save(condition=LedgerRecord.pk.does_not_exist())
        except PutError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            return Receipt(ref, booked_now=False)
        return Receipt(ref, booked_now=True)

    def entries(self, subject_id: str) -> list[dict[str, Any]]:
        from chalicelib.adapters.dynamodb.policies import LedgerRecord

        return [r.data for r in LedgerRecord.query(f"subject#{subject_id}")]
