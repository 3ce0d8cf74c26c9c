"""Outbound notifications as the rest of the domain asks for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RecipientKind(StrEnum):
    DEPARTMENT = "department"  # delivered by signed webhook to the department's endpoint
    USER = "user"  # delivered as a mini-program subscription message (locally: the inbox)


@dataclass(frozen=True)
class NotificationRequest:
    """Written once per `business_key`: asking twice with the same key sends nothing new."""

    business_key: str  # e.g. "clock:<clock_id>:warning"
    recipient_kind: RecipientKind
    recipient_id: str  # department_id or user_id
    category: str  # e.g. "deadline.warning"
    title: str  # Chinese, shown to people
    body: str  # Chinese, shown to people
    data: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
