"""Outbound notifications as the rest of the domain asks for them, and the pure rules of their
delivery: identity from the business key, the webhook body, the retry back-off."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RecipientKind(StrEnum):
    DEPARTMENT = "department"  # delivered by signed webhook to the department's endpoint
    USER = "user"  # delivered as a mini-program subscription message (locally: the inbox)


@dataclass(frozen=True)
class NotificationRequest:
    """Written once per `business_key`: asking twice with the same key sends nothing new.

    The key must name the recipient too (one key, one recipient): the notification's identity
    is derived from the key alone."""

    business_key: str  # e.g. "clock:<clock_id>:warning"
    recipient_kind: RecipientKind
    recipient_id: str  # department_id or user_id
    category: str  # e.g. "deadline.warning"
    title: str  # Chinese, shown to people
    body: str  # Chinese, shown to people
    data: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None


class NotificationStatus(StrEnum):
    PENDING = "pending"  # written, not yet attempted
    RETRYING = "retrying"  # at least one attempt failed; the queue will try again
    DELIVERED = "delivered"  # terminal: never sent again
    FAILED = "failed"  # the last allowed attempt failed; the message goes to the DLQ


# The department webhook's own header; the Standard Webhooks headers are the sender's.
CORRELATION_ID_HEADER = "X-Correlation-Id"

# SQS refuses a visibility timeout past 12 hours from receipt; a quarter of an hour between the
# last attempts keeps a whole retry series within an hour at the default settings.
MAX_BACKOFF_SECONDS = 15 * 60

MAX_BUSINESS_KEY_LENGTH = 512


@dataclass(frozen=True)
class DeliveryAttempt:
    number: int  # 1-based, counted on the notification (survives DLQ redrives)
    at: datetime
    delivered: bool
    status_code: int | None = None  # HTTP status for webhooks
    error: str | None = None  # short machine-readable reason, never personal data
    duration_ms: int | None = None


@dataclass(frozen=True)
class SendResult:
    """What one channel answered to one attempt."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None  # short machine-readable reason
    duration_ms: int | None = None


@dataclass(frozen=True)
class Notification:
    notification_id: str
    business_key: str
    recipient_kind: RecipientKind
    recipient_id: str
    category: str
    title: str
    body: str
    data: dict[str, Any]
    correlation_id: str
    created_at: datetime
    status: NotificationStatus = NotificationStatus.PENDING
    attempts: tuple[DeliveryAttempt, ...] = ()
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    in_inbox: bool = False  # placed in the recipient user's inbox (GET /me/notifications)

    @property
    def is_delivered(self) -> bool:
        return self.status is NotificationStatus.DELIVERED

    @property
    def next_attempt_number(self) -> int:
        return self.attempts[-1].number + 1 if self.attempts else 1

    @property
    def inbox_owner_id(self) -> str | None:
        """The user who may read this notification in their inbox, if anyone."""
        if self.recipient_kind is RecipientKind.USER and self.in_inbox:
            return self.recipient_id
        return None


def notification_id_for(business_key: str) -> str:
    """The notification's identity: the same business key always names the same notification."""
    return hashlib.sha256(business_key.encode("utf-8")).hexdigest()[:32]


def check_request(request: NotificationRequest) -> None:
    """Programming errors of a caller, refused before anything is written."""
    if not request.business_key.strip():
        raise ValueError("business_key must not be empty")
    if len(request.business_key) > MAX_BUSINESS_KEY_LENGTH:
        raise ValueError("business_key is too long")
    if not request.recipient_id.strip():
        raise ValueError("recipient_id must not be empty")
    RecipientKind(request.recipient_kind)
    try:
        json.dumps(request.data)
    except (TypeError, ValueError) as exc:
        raise ValueError("data must be JSON-serialisable") from exc


def new_notification(
    request: NotificationRequest, *, now: datetime, correlation_id: str
) -> Notification:
    return Notification(
        notification_id=notification_id_for(request.business_key),
        business_key=request.business_key,
        recipient_kind=RecipientKind(request.recipient_kind),
        recipient_id=request.recipient_id,
        category=request.category,
        title=request.title,
        body=request.body,
        data=dict(request.data),
        correlation_id=request.correlation_id or correlation_id,
        created_at=now,
    )


def webhook_body(notification: Notification) -> bytes:
    """The JSON a department receives. Stable across retries: receivers de-duplicate on the id."""
    payload = {
        "notification_id": notification.notification_id,
        "department_id": notification.recipient_id,
        "category": notification.category,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": notification.created_at.isoformat(),
        "correlation_id": notification.correlation_id,
    }
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


def retry_delay_seconds(
    base_seconds: int, receive_count: int, cap_seconds: int = MAX_BACKOFF_SECONDS
) -> int:
    """Back-off before the next attempt: base * 2^(n-1) after the n-th receive, capped."""
    exponent = max(receive_count, 1) - 1
    # Bound the exponent so a huge receive count cannot build a huge integer.
    delay = max(base_seconds, 0) * 2 ** min(exponent, 32)
    return int(min(delay, cap_seconds))


def is_last_attempt(receive_count: int, max_receive_count: int) -> bool:
    """The queue's redrive moves the message to the DLQ after this many receives."""
    return receive_count >= max_receive_count
