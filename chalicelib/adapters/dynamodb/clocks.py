"""Placeholder persistence model; replaced by its capability."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import meta


class ClockModel(Model):
    Meta = meta("clocks")

    pk = UnicodeAttribute(hash_key=True)


class EscalationStepModel(Model):
    Meta = meta("escalations")

    pk = UnicodeAttribute(hash_key=True)
