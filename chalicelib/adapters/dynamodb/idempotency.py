"""Table layout Powertools idempotency expects (partition key `id`, TTL on `expiration`)."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import meta


class IdempotencyModel(Model):
    Meta = meta("idempotency")

    id = UnicodeAttribute(hash_key=True)
    expiration = NumberAttribute(null=True)
    status = UnicodeAttribute(null=True)
    data = UnicodeAttribute(null=True)
    validation = UnicodeAttribute(null=True)
