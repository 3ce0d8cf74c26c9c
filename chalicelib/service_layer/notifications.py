"""Notification use cases: deliver one notification (one attempt), read and mark the inbox.

Delivery is at-least-once and idempotent: a delivered notification is never sent again, a
lease keeps two consumers of a duplicated message from sending at the same time, and every
attempt is stored on the notification whatever its outcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.directory import Department
from chalicelib.domain.errors import NotFound
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import (
    CORRELATION_ID_HEADER,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
    RecipientKind,
    SendResult,
    is_last_attempt,
    retry_delay_seconds,
    webhook_body,
)
from chalicelib.service_layer.authorization import Action, Resource, require

_NOTIFICATION_ID = re.compile(r"^[0-9a-f]{32}$")


class Clock(Protocol):
    def now(self) -> datetime: ...


class NotificationStore(Protocol):
    def get(self, notification_id: str) -> Notification | None: ...

    def claim(self, notification_id: str, now: datetime, lease_seconds: int) -> bool: ...

    def record_attempt(
        self, notification_id: str, attempt: DeliveryAttempt, status: NotificationStatus
    ) -> None: ...

    def list_inbox(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Notification], dict[str, Any] | None]: ...

    def mark_read(self, notification_id: str, now: datetime) -> bool: ...


class Directory(Protocol):
    def get_department(self, department_id: str) -> Department | None: ...


class WebhookPoster(Protocol):
    def deliver(
        self, department_id: str, url: str, message_id: str, body: bytes, headers: dict[str, str]
    ) -> SendResult: ...


class SubscriptionSender(Protocol):
    def send(self, notification: Notification) -> SendResult: ...


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> Any: ...


@dataclass(frozen=True)
class DeliveryPolicy:
    base_backoff_seconds: int
    max_receive_count: int  # the queue's redrive: after this many receives, the DLQ
    lease_seconds: int  # longer than one attempt can take


class Outcome(StrEnum):
    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"
    MISSING = "missing"  # no such notification: nothing to deliver, ever
    FAILED = "failed"  # attempt failed: retry after the back-off
    BUSY = "busy"  # another consumer holds the lease: retry after it


@dataclass(frozen=True)
class DeliveryOutcome:
    outcome: Outcome
    notification_id: str
    recipient_kind: RecipientKind | None = None
    attempt: DeliveryAttempt | None = None
    retry_after_seconds: int | None = None
    final: bool = False  # the last attempt the queue will make

    @property
    def should_retry(self) -> bool:
        return self.outcome in (Outcome.FAILED, Outcome.BUSY)


@dataclass(frozen=True)
class Channels:
    directory: Directory
    webhook: WebhookPoster
    subscription: SubscriptionSender


def deliver_notification(
    notification_id: str,
    receive_count: int,
    *,
    store: NotificationStore,
    channels: Channels,
    clock: Clock,
    audit_log: AuditLog,
    policy: DeliveryPolicy,
) -> DeliveryOutcome:
    """Make one delivery attempt for one queued notification."""
    notification = store.get(notification_id)
    if notification is None:
        return DeliveryOutcome(Outcome.MISSING, notification_id)
    if notification.is_delivered:
        return DeliveryOutcome(
            Outcome.ALREADY_DELIVERED, notification_id, notification.recipient_kind
        )
    now = clock.now()
    if not store.claim(notification_id, now, policy.lease_seconds):
        current = store.get(notification_id)
        if current is not None and current.is_delivered:
            return DeliveryOutcome(
                Outcome.ALREADY_DELIVERED, notification_id, notification.recipient_kind
            )
        return DeliveryOutcome(
            Outcome.BUSY,
            notification_id,
            notification.recipient_kind,
            retry_after_seconds=policy.lease_seconds,
        )

    result = _send(notification, channels, now)
    attempt = DeliveryAttempt(
        number=notification.next_attempt_number,
        at=now,
        delivered=result.delivered,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
    )
    if result.delivered:
        store.record_attempt(notification_id, attempt, NotificationStatus.DELIVERED)
        _audit_delivery(audit_log, notification, attempt, NotificationStatus.DELIVERED)
        return DeliveryOutcome(
            Outcome.DELIVERED, notification_id, notification.recipient_kind, attempt
        )

    final = is_last_attempt(receive_count, policy.max_receive_count)
    status = NotificationStatus.FAILED if final else NotificationStatus.RETRYING
    store.record_attempt(notification_id, attempt, status)
    if final:
        _audit_delivery(audit_log, notification, attempt, status)
    return DeliveryOutcome(
        Outcome.FAILED,
        notification_id,
        notification.recipient_kind,
        attempt,
        retry_after_seconds=retry_delay_seconds(policy.base_backoff_seconds, receive_count),
        final=final,
    )


def _send(notification: Notification, channels: Channels, now: datetime) -> SendResult:
    try:
        if notification.recipient_kind is RecipientKind.DEPARTMENT:
            return _send_to_department(notification, channels, now)
        return channels.subscription.send(notification)
    except Exception:
        # A channel's own failure is a failed attempt like any other: stored, retried, DLQ.
        from chalicelib.observability import logger

        logger.exception(
            "notification channel raised", extra={"notification_id": notification.notification_id}
        )
        return SendResult(False, error="channel_error")


def _send_to_department(
    notification: Notification, channels: Channels, now: datetime
) -> SendResult:
    department = channels.directory.get_department(notification.recipient_id)
    if department is None:
        return SendResult(False, error="department_not_found")
    if not department.webhook_url:
        return SendResult(False, error="webhook_not_configured")
    # Signed by the sender with the department's secrets (Standard Webhooks); the id is stable
    # across retries so the department de-duplicates.
    return channels.webhook.deliver(
        department.department_id,
        department.webhook_url,
        notification.notification_id,
        webhook_body(notification),
        {
            "Content-Type": "application/json; charset=utf-8",
            CORRELATION_ID_HEADER: notification.correlation_id,
        },
    )


def _audit_delivery(
    audit_log: AuditLog,
    notification: Notification,
    attempt: DeliveryAttempt,
    status: NotificationStatus,
) -> None:
    action = "notification.delivered" if attempt.delivered else "notification.delivery_failed"
    audit_log.append(
        AuditEntry(
            actor_id=SYSTEM.user_id,
            actor_role=SYSTEM.role.value,
            action=action,
            subject_type="notification",
            subject_id=notification.notification_id,
            before={"status": notification.status.value},
            after={
                "status": status.value,
                "attempt": attempt.number,
                "status_code": attempt.status_code,
                "error": attempt.error,
            },
            correlation_id=notification.correlation_id,
        )
    )


# -- the inbox ------------------------------------------------------------------------------


def list_own_notifications(
    principal: Principal,
    store: NotificationStore,
    limit: int,
    start_key: dict[str, Any] | None,
) -> tuple[list[Notification], dict[str, Any] | None]:
    """One page of the caller's own inbox, newest first."""
    require(principal, Action.READ_OWN_NOTIFICATIONS, Resource(owner_user_id=principal.user_id))
    return store.list_inbox(principal.user_id, limit, start_key)


def mark_notification_read(
    principal: Principal,
    notification_id: str,
    *,
    store: NotificationStore,
    clock: Clock,
    audit_log: AuditLog,
) -> Notification:
    notification = _own_notification(principal, notification_id, store)
    now = clock.now()
    if store.mark_read(notification_id, now):
        audit_log.append(
            AuditEntry(
                actor_id=principal.user_id,
                actor_role=principal.role.value,
                action="notification.read",
                subject_type="notification",
                subject_id=notification_id,
                before={"read_at": None},
                after={"read_at": now.isoformat()},
                correlation_id=notification.correlation_id,
            )
        )
        refreshed = store.get(notification_id)
        return refreshed if refreshed is not None else notification
    return notification


def _own_notification(
    principal: Principal, notification_id: str, store: NotificationStore
) -> Notification:
    """The caller's own inbox notification; someone else's answers exactly like a missing one."""
    not_found = NotFound("未找到该消息", code="notification_not_found")
    if not _NOTIFICATION_ID.match(notification_id):
        raise not_found
    notification = store.get(notification_id)
    if notification is None or notification.inbox_owner_id is None:
        raise not_found
    try:
        require(
            principal,
            Action.READ_OWN_NOTIFICATIONS,
            Resource(owner_user_id=notification.inbox_owner_id),
        )
    except NotFound:
        raise not_found from None
    return notification
