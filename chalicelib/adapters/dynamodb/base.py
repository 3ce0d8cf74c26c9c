"""Shared PynamoDB settings: every model's table name and endpoint come from the settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, overload

from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.settings import get_settings
from chalicelib.topology import table_name

# The hash key of every table's sparse "effects pending" index (range: since when). Only the
# few items whose effects are still being applied carry it, so one key serves a district.
EFFECTS_PENDING = "pending"


def meta(logical_name: str, **extra: object) -> Any:
    """Build a PynamoDB `Meta` class for the table declared under `logical_name` in topology."""
    settings = get_settings()
    attrs: dict[str, object] = {
        "table_name": table_name(logical_name, settings),
        "region": settings.aws_region,
        "host": settings.aws_endpoint_url,
        "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
        "max_retry_attempts": 3,
    }
    attrs.update(extra)
    return type("Meta", (), attrs)


def transaction_connection(model_cls: Any) -> Any:
    """The PynamoDB connection for a `TransactWrite`: the model's own, whose botocore client is
    built once per process (building one costs more than the transaction it would carry)."""
    return model_cls._get_connection().connection


def iso(moment: datetime) -> str:
    """Fixed-width China-time text: sorts like the instants it names (keys, due indexes)."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="microseconds")


@overload
def parse_iso(value: str) -> datetime: ...
@overload
def parse_iso(value: str | None) -> datetime | None: ...
def parse_iso(value: str | None) -> datetime | None:
    """Stored text back to a China-time moment; nothing stored, nothing answered."""
    return datetime.fromisoformat(value).astimezone(CHINA_TZ) if value else None


def condition_failed(error: Exception) -> bool:
    """Whether a PynamoDB write failed on its condition (the item was there, or had changed)."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"
