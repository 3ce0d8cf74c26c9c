"""Mini-program subscription messages to citizens and enterprises.

The platform's channel (随申办 subscription messages) needs the user's open id and an approved
template per category; until that adapter exists every stage uses the inbox implementation,
which is also what `GET /me/notifications` reads.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.notifications import Notification, SendResult


class SubscriptionMessageSender(Protocol):
    def send(self, notification: Notification) -> SendResult: ...


class InboxSubscriptionSender:
    """Delivers by placing the notification in its recipient's inbox. Idempotent."""

    def __init__(self, store: Any):
        self._store = store

    def send(self, notification: Notification) -> SendResult:
        self._store.place_in_inbox(notification.notification_id, notification.recipient_id)
        return SendResult(True)
