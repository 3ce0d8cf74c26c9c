"""Placeholder persistence model; replaced by its capability."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import meta


class AuditRecordModel(Model):
    Meta = meta("audit")

    pk = UnicodeAttribute(hash_key=True)
