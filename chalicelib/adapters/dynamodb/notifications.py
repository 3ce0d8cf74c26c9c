"""The notification outbox: one item per business key, streamed to the delivery queue.

The table is the transactional outbox (a notification is written once, with a conditional put;
its INSERT stream record enqueues the delivery, so nothing is lost between "decided to notify"
and "queued"), the delivery log (attempts are stored on the item) and, through the sparse
`inbox` index, the users' inbox that `GET /me/notifications` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.clock import CHINA_TZ, Clock
from chalicelib.adapters.dynamodb.base import condition_failed, meta
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import SYSTEM
from chalicelib.domain.notifications import (
    DeliveryAttempt,
    Notification,
    NotificationRequest,
    NotificationStatus,
    RecipientKind,
    check_request,
    new_notification,
)

# Older attempts are dropped beyond this many: an item must stay far below 400 KB.
_MAX_STORED_ATTEMPTS = 50


class AttemptAttribute(MapAttribute):
    number = NumberAttribute()
    at = UnicodeAttribute()
    delivered = BooleanAttribute()
    status_code = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    duration_ms = NumberAttribute(null=True)


class InboxIndex(GlobalSecondaryIndex["NotificationModel"]):
    """Sparse: only notifications delivered to a user's inbox carry `inbox_user_id`."""

    class Meta:
        index_name = "inbox"
        projection = AllProjection()

    inbox_user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class NotificationModel(Model):
    Meta = meta("notifications", stream_view_type="NEW_AND_OLD_IMAGES")

    notification_id = UnicodeAttribute(hash_key=True)
    business_key = UnicodeAttribute()
    recipient_kind = UnicodeAttribute()
    recipient_id = UnicodeAttribute()
    category = UnicodeAttribute()
    title = UnicodeAttribute()
    body = UnicodeAttribute()
    data = JSONAttribute(null=True)
    correlation_id = UnicodeAttribute()
    # ISO 8601 in China time with microseconds: sorts as text in the inbox index.
    created_at = UnicodeAttribute()
    status = UnicodeAttribute()
    attempts = ListAttribute(of=AttemptAttribute, null=True)
    delivered_at = UnicodeAttribute(null=True)
    read_at = UnicodeAttribute(null=True)
    # Epoch seconds until which one consumer holds the delivery (two consumers never send at once).
    lease_until = NumberAttribute(null=True)
    inbox_user_id = UnicodeAttribute(null=True)
    audited = BooleanAttribute(null=True)

    inbox = InboxIndex()


def _text(moment: datetime) -> str:
    # One offset for every stored time, so that text order is time order.
    return moment.astimezone(CHINA_TZ).isoformat(timespec="microseconds")


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _attempt_to_item(attempt: DeliveryAttempt) -> AttemptAttribute:
    return AttemptAttribute(
        number=attempt.number,
        at=_text(attempt.at),
        delivered=attempt.delivered,
        status_code=attempt.status_code,
        error=attempt.error,
        duration_ms=attempt.duration_ms,
    )


def _attempt_from_item(item: AttemptAttribute) -> DeliveryAttempt:
    return DeliveryAttempt(
        number=int(item.number),
        at=datetime.fromisoformat(item.at),
        delivered=bool(item.delivered),
        status_code=int(item.status_code) if item.status_code is not None else None,
        error=item.error,
        duration_ms=int(item.duration_ms) if item.duration_ms is not None else None,
    )


def to_domain(item: NotificationModel) -> Notification:
    return Notification(
        notification_id=item.notification_id,
        business_key=item.business_key,
        recipient_kind=RecipientKind(item.recipient_kind),
        recipient_id=item.recipient_id,
        category=item.category,
        title=item.title,
        body=item.body,
        data=dict(item.data or {}),
        correlation_id=item.correlation_id,
        created_at=datetime.fromisoformat(item.created_at),
        status=NotificationStatus(item.status),
        attempts=tuple(_attempt_from_item(a) for a in item.attempts or ()),
        delivered_at=_moment(item.delivered_at),
        read_at=_moment(item.read_at),
        in_inbox=item.inbox_user_id is not None,
    )


def _to_item(notification: Notification) -> NotificationModel:
    return NotificationModel(
        notification.notification_id,
        business_key=notification.business_key,
        recipient_kind=notification.recipient_kind.value,
        recipient_id=notification.recipient_id,
        category=notification.category,
        title=notification.title,
        body=notification.body,
        data=notification.data or None,
        correlation_id=notification.correlation_id,
        created_at=_text(notification.created_at),
        status=notification.status.value,
        attempts=[],
        audited=False,
    )


_INBOX_KEY_NAMES = {"notification_id", "inbox_user_id", "created_at"}


def _check_start_key(user_id: str, start_key: dict[str, Any] | None) -> None:
    """A cursor is signed, but it must also be one of this user's own pages."""
    if start_key is None:
        return
    owner = start_key.get("inbox_user_id")
    owner_id = owner.get("S") if isinstance(owner, dict) else None
    if set(start_key) != _INBOX_KEY_NAMES or owner_id != user_id:
        raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor")


class DynamoNotificationOutbox:
    """The notifier every capability uses, and the store the delivery and inbox use cases use."""

    def __init__(
        self,
        clock: Clock,
        audit_log: Any | None = None,
        *,
        audit_log_from: Callable[[], Any] | None = None,
    ):
        self._clock = clock
        self._audit_log = audit_log
        # Looked up on use: a test may replace the container's audit log after this is built.
        self._audit_log_from = audit_log_from

    # -- writing a notification -------------------------------------------------------------

    def notify(self, request: NotificationRequest) -> tuple[str, bool]:
        """Write the notification once. Returns (notification_id, created); a second call with
        the same business key writes nothing and returns the first call's id."""
        from chalicelib.observability import get_correlation_id

        check_request(request)
        notification = new_notification(
            request, now=self._clock.now(), correlation_id=get_correlation_id()
        )
        item = _to_item(notification)
        try:
            item.save(condition=NotificationModel.notification_id.does_not_exist())
        except PutError as exc:
            if not condition_failed(exc):
                raise
            self._finish_audit(notification.notification_id)
            return notification.notification_id, False
        self._audit_created(notification)
        return notification.notification_id, True

    def _finish_audit(self, notification_id: str) -> None:
        """A caller retrying after a crash between the put and the audit append still gets
        its notification audited."""
        existing = self._load(notification_id)
        if existing is not None and not existing.audited:
            self._audit_created(to_domain(existing))

    def _audit_created(self, notification: Notification) -> None:
        self._audit().append(
            AuditEntry(
                actor_id=SYSTEM.user_id,
                actor_role=SYSTEM.role.value,
                action="notification.created",
                subject_type="notification",
                subject_id=notification.notification_id,
                after={
                    "recipient_kind": notification.recipient_kind.value,
                    "recipient_id": notification.recipient_id,
                    "category": notification.category,
                    "business_key": notification.business_key,
                },
                correlation_id=notification.correlation_id,
            )
        )
        NotificationModel(notification.notification_id).update(
            actions=[NotificationModel.audited.set(True)]
        )

    def _audit(self) -> Any:
        if self._audit_log is not None:
            return self._audit_log
        if self._audit_log_from is None:
            raise RuntimeError("DynamoNotificationOutbox needs audit_log or audit_log_from")
        return self._audit_log_from()

    # -- reading --------------------------------------------------------------------------

    def _load(self, notification_id: str) -> NotificationModel | None:
        try:
            return NotificationModel.get(notification_id, consistent_read=True)
        except NotificationModel.DoesNotExist:
            return None

    def get(self, notification_id: str) -> Notification | None:
        item = self._load(notification_id)
        return to_domain(item) if item is not None else None

    def list_inbox(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Notification], dict[str, Any] | None]:
        """One page of a user's inbox, newest first (a Query on the sparse inbox index)."""
        _check_start_key(user_id, start_key)
        results = NotificationModel.inbox.query(
            user_id,
            scan_index_forward=False,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start_key,
        )
        items = [to_domain(item) for item in results]
        return items, results.last_evaluated_key

    # -- delivery bookkeeping ---------------------------------------------------------------

    def claim(self, notification_id: str, now: datetime, lease_seconds: int) -> bool:
        """Take the delivery lease: False if delivered already or another consumer holds it."""
        epoch = int(now.timestamp())
        condition = (NotificationModel.status != NotificationStatus.DELIVERED.value) & (
            NotificationModel.lease_until.does_not_exist() | (NotificationModel.lease_until < epoch)
        )
        try:
            NotificationModel(notification_id).update(
                actions=[NotificationModel.lease_until.set(epoch + lease_seconds)],
                condition=NotificationModel.notification_id.exists() & condition,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True

    def record_attempt(
        self, notification_id: str, attempt: DeliveryAttempt, status: NotificationStatus
    ) -> None:
        """Store one attempt and the resulting status, and release the lease."""
        actions = [
            NotificationModel.attempts.set(
                (NotificationModel.attempts | []).append([_attempt_to_item(attempt)])
            ),
            NotificationModel.status.set(status.value),
            NotificationModel.lease_until.remove(),
        ]
        if attempt.delivered:
            actions.append(NotificationModel.delivered_at.set(_text(attempt.at)))
        NotificationModel(notification_id).update(
            actions=actions, condition=NotificationModel.notification_id.exists()
        )
        if attempt.number > _MAX_STORED_ATTEMPTS:
            self._trim_attempts(notification_id)

    def _trim_attempts(self, notification_id: str) -> None:
        item = self._load(notification_id)
        if item is not None and item.attempts and len(item.attempts) > _MAX_STORED_ATTEMPTS:
            item.update(
                actions=[NotificationModel.attempts.set(item.attempts[-_MAX_STORED_ATTEMPTS:])]
            )

    def place_in_inbox(self, notification_id: str, user_id: str) -> None:
        """The local subscription-message channel: the item becomes visible in the inbox."""
        NotificationModel(notification_id).update(
            actions=[NotificationModel.inbox_user_id.set(user_id)],
            condition=NotificationModel.notification_id.exists(),
        )

    def mark_read(self, notification_id: str, now: datetime) -> bool:
        """Set read_at once; False when it was read before."""
        try:
            NotificationModel(notification_id).update(
                actions=[NotificationModel.read_at.set(_text(now))],
                condition=NotificationModel.notification_id.exists()
                & NotificationModel.read_at.does_not_exist(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True
