"""The `idempotency` table: one item per caller + Idempotency-Key (layout of Powertools
idempotency: partition key `id`, TTL on `expiration`, `status`, `validation`, `data`,
`in_progress_expiration`).

A fresh request costs two calls (the conditional put that claims the key, the put that stores
the response), a replay one (the failed conditional put returns the stored item).
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import meta
from chalicelib.domain.idempotency import COMPLETED, IN_PROGRESS, KeyRecord, StoredResponse


class IdempotencyModel(Model):
    Meta = meta("idempotency")

    id = UnicodeAttribute(hash_key=True)
    expiration = NumberAttribute(null=True)
    in_progress_expiration = NumberAttribute(null=True)
    status = UnicodeAttribute(null=True)
    data = UnicodeAttribute(null=True)
    validation = UnicodeAttribute(null=True)


class DynamoIdempotencyStore:
    def __init__(self, client: Any):
        self._client = client  # a boto3 DynamoDB client: PynamoDB cannot ask for ALL_OLD on failure
        self._table = IdempotencyModel.Meta.table_name

    def claim(
        self,
        record_id: str,
        fingerprint: str,
        now: datetime,
        lock_until: datetime,
        expires: datetime,
    ) -> KeyRecord | None:
        """Mark the key in progress unless a live record holds it; answer that record if one does.
        A record past its TTL (DynamoDB deletes late, moto never) or an in-progress claim whose
        holder died counts as free."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": record_id},
                    "status": {"S": IN_PROGRESS},
                    "validation": {"S": fingerprint},
                    "in_progress_expiration": {"N": str(int(lock_until.timestamp()))},
                    "expiration": {"N": str(int(expires.timestamp()))},
                },
                ConditionExpression=(
                    "attribute_not_exists(id) OR expiration < :now"
                    " OR (#status = :in_progress AND in_progress_expiration < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now.timestamp()))},
                    ":in_progress": {"S": IN_PROGRESS},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except self._client.exceptions.ConditionalCheckFailedException as error:
            return _record(error.response.get("Item") or {})

    def complete(
        self, record_id: str, fingerprint: str, response: StoredResponse, expires: datetime
    ) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                "id": {"S": record_id},
                "status": {"S": COMPLETED},
                "validation": {"S": fingerprint},
                "data": {"S": json.dumps(response.to_dict(), ensure_ascii=False)},
                "expiration": {"N": str(int(expires.timestamp()))},
            },
        )

    def release(self, record_id: str) -> None:
        """Forget an in-progress claim whose request failed, so the caller may retry it."""
        # Completed meanwhile by a takeover after our lock lapsed: keep that answer.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self._table,
                Key={"id": {"S": record_id}},
                ConditionExpression="#status = :in_progress",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":in_progress": {"S": IN_PROGRESS}},
            )


def _record(item: dict[str, Any]) -> KeyRecord:
    data = item.get("data", {}).get("S")
    return KeyRecord(
        status=item.get("status", {}).get("S", IN_PROGRESS),
        fingerprint=item.get("validation", {}).get("S", ""),
        response=StoredResponse.from_dict(json.loads(data)) if data else None,
    )
