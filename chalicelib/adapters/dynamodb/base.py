"""Shared PynamoDB settings: every model's table name and endpoint come from the settings."""

from __future__ import annotations

from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE

from chalicelib.settings import get_settings
from chalicelib.topology import table_name


def meta(logical_name: str, **extra: object) -> type:
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
