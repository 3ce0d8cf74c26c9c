"""Ports of notifications: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from chalicelib.domain.notifications import (
    DeliveryAttempt,
    DepartmentCircuit,
    Notification,
    NotificationRequest,
    NotificationStatus,
    SendResult,
)


class NotificationOutbox(Protocol):
    """`adapters/dynamodb/notifications.py` DynamoNotificationOutbox."""

    def notify(self, request: NotificationRequest) -> tuple[str, bool]: ...
    def get(self, notification_id: str) -> Notification | None: ...
    def list_inbox(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Notification], dict[str, Any] | None]: ...
    def claim(self, notification_id: str, now: datetime, lease_seconds: int) -> bool: ...
    def record_attempt(
        self,
        notification_id: str,
        attempt: DeliveryAttempt,
        status: NotificationStatus,
        *,
        next_attempt_at: datetime | None = None,
        sweep_at: datetime | None = None,
    ) -> None: ...
    def defer(
        self, notification_id: str, until: datetime, sweep_at: datetime, now: datetime
    ) -> bool: ...
    def dead_letter(self, notification_id: str, now: datetime) -> bool: ...
    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str, str]]: ...
    def mark_enqueued(
        self, notification_id: str, seen_work_at: str, sweep_at: datetime
    ) -> bool: ...
    def dead_letters(
        self, recipient_kind: str, recipient_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Notification], dict[str, Any] | None]: ...
    def redrive(self, notification_id: str, now: datetime, sweep_at: datetime) -> bool: ...
    def outstanding(self, limit: int) -> list[Notification]: ...
    def circuit(self, department_id: str) -> DepartmentCircuit: ...
    def circuit_failed(
        self, department_id: str, threshold: int, probe_at: Any
    ) -> DepartmentCircuit: ...
    def circuit_succeeded(self, department_id: str, now: datetime) -> None: ...
    def claim_probe(self, department_id: str, now: datetime, lease_until: datetime) -> bool: ...
    def place_in_inbox(self, notification_id: str, user_id: str) -> None: ...
    def mark_read(self, notification_id: str, now: datetime) -> bool: ...


class DeliveryQueue(Protocol):
    """`adapters/delivery_queue.py` SqsDeliveryQueue."""

    def enqueue(
        self, notification_id: str, correlation_id: str | None, delay_seconds: int
    ) -> None: ...


class WebhookPoster(Protocol):
    """`adapters/webhook.py` WebhookSender."""

    def deliver(
        self,
        department_id: str,
        url: str,
        message_id: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> SendResult: ...
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult: ...


class SubscriptionSender(Protocol):
    """`adapters/subscription.py` InboxSubscriptionSender."""

    def send(self, notification: Notification) -> SendResult: ...
