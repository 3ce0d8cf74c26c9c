"""The notification outbox: one item per business key, streamed to the delivery queue.

The table is the transactional outbox (a notification is written once, with a conditional put;
its INSERT stream record enqueues the delivery, so nothing is lost between "decided to notify"
and "queued"), the delivery log (attempts are stored on the item) and, through the sparse
`inbox` index, the users' inbox that `GET /me/notifications` reads.

The sparse `work_index` holds what still needs doing, never a Scan:
- `work_key` = "due#<shard>", `work_at` = when the sweep should (re-)enqueue it: every
  notification from its write until it is delivered or dead-lettered (so a lost enqueue, a long
  retry wait or a deferral behind an open circuit is picked up by the due sweep);
- `work_key` = "dead#<recipient kind>#<recipient id>", `work_at` = when it was dead-lettered.
Department circuits share the table as items "circuit#<department_id>".
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
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
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.clock import CHINA_TZ, Clock
from chalicelib.adapters.dynamodb.base import condition_failed, meta
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import SYSTEM
from chalicelib.domain.notifications import (
    DeliveryAttempt,
    DepartmentCircuit,
    Notification,
    NotificationRequest,
    NotificationStatus,
    RecipientKind,
    check_request,
    new_notification,
)

# Older attempts are dropped beyond this many: an item must stay far below 400 KB.
_MAX_STORED_ATTEMPTS = 50
DUE_SHARDS = 4
CIRCUIT_PREFIX = "circuit#"


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


class WorkIndex(GlobalSecondaryIndex["NotificationModel"]):
    """Sparse: due work ("due#<shard>") and dead letters ("dead#<kind>#<recipient>")."""

    class Meta:
        index_name = "work_index"
        projection = AllProjection()

    work_key = UnicodeAttribute(hash_key=True)
    work_at = UnicodeAttribute(range_key=True)


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
    next_attempt_at = UnicodeAttribute(null=True)
    round_base = NumberAttribute(null=True)
    round_started_at = UnicodeAttribute(null=True)
    redrives = NumberAttribute(null=True)
    dead_at = UnicodeAttribute(null=True)
    # Index attributes: present only while there is work (see the module docstring).
    work_key = UnicodeAttribute(null=True)
    work_at = UnicodeAttribute(null=True)

    inbox = InboxIndex()
    work_index = WorkIndex()


class CircuitModel(Model):
    """One department's delivery circuit, in the notifications table."""

    Meta = meta("notifications", stream_view_type="NEW_AND_OLD_IMAGES")

    notification_id = UnicodeAttribute(hash_key=True)  # "circuit#<department_id>"
    consecutive_failures = NumberAttribute(default=0)
    probe_at = UnicodeAttribute(null=True)
    openings = NumberAttribute(default=0)
    delivered = NumberAttribute(null=True)
    last_delivered_at = UnicodeAttribute(null=True)


def due_key(notification_id: str) -> str:
    return f"due#{zlib.crc32(notification_id.encode()) % DUE_SHARDS}"


def dead_key(recipient_kind: str, recipient_id: str) -> str:
    return f"dead#{recipient_kind}#{recipient_id}"


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
        next_attempt_at=_moment(item.next_attempt_at),
        round_base=int(item.round_base or 0),
        round_started_at=_moment(item.round_started_at),
        redrives=int(item.redrives or 0),
        dead_at=_moment(item.dead_at),
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
        next_attempt_at=_text(notification.created_at),
        work_key=due_key(notification.notification_id),
        # The stream enqueues it at once; the sweep only if that was lost.
        work_at=_text(notification.created_at + OUTBOX_GRACE),
    )


# How long after an enqueue the due sweep enqueues a notification again if no attempt was made
# (a lost stream record or message): longer than the queue normally takes.
OUTBOX_GRACE = timedelta(minutes=5)

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

    def __init__(self, clock: Clock):
        # The "created" audit fact comes from the outbox's own stream record, so the outbox
        # needs no audit log of its own.
        self._clock = clock

    # -- writing a notification -------------------------------------------------------------

    def prepare(self, request: NotificationRequest) -> NotificationModel:
        """The notification as `notify` would write it, unsaved: for a caller writing it in the
        same transaction as the change it reports (its business key makes it one per change)."""
        from chalicelib.observability import get_correlation_id

        check_request(request)
        return _to_item(
            new_notification(request, now=self._clock.now(), correlation_id=get_correlation_id())
        )

    def notify(self, request: NotificationRequest) -> tuple[str, bool]:
        """Write the notification once. Returns (notification_id, created); a second call with
        the same business key writes nothing and returns the first call's id."""
        from chalicelib.observability import get_correlation_id

        check_request(request)
        notification = new_notification(
            request, now=self._clock.now(), correlation_id=get_correlation_id()
        )
        item = _to_item(notification)
        transaction = current_transaction()
        if transaction is not None:
            # Written with the change that asks for it: already stored means applied before.
            transaction.put(item, NotificationModel.notification_id.does_not_exist())
            return notification.notification_id, True
        try:
            item.save(condition=NotificationModel.notification_id.does_not_exist())
        except PutError as exc:
            if not condition_failed(exc):
                raise
            return notification.notification_id, False
        # Its "created" audit fact is derived from the item's INSERT stream record
        # (created_fact), so the put is the only call here.
        return notification.notification_id, True

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
        self,
        notification_id: str,
        attempt: DeliveryAttempt,
        status: NotificationStatus,
        *,
        next_attempt_at: datetime | None = None,
        sweep_at: datetime | None = None,
    ) -> None:
        """Store one attempt and the resulting status, and release the lease. A retry keeps the
        item in the due index (the sweep enqueues it at `sweep_at`); a dead letter moves it to
        its recipient's dead letters; a delivery leaves the index."""
        actions: list[Action] = [
            NotificationModel.attempts.set(
                (NotificationModel.attempts | []).append([_attempt_to_item(attempt)])
            ),
            NotificationModel.status.set(status.value),
            NotificationModel.lease_until.remove(),
        ]
        if attempt.delivered:
            actions += [
                NotificationModel.delivered_at.set(_text(attempt.at)),
                NotificationModel.next_attempt_at.remove(),
                NotificationModel.work_key.remove(),
                NotificationModel.work_at.remove(),
            ]
        elif status is NotificationStatus.FAILED:
            actions += self._dead_letter_actions(notification_id, attempt.at)
        else:
            when = next_attempt_at or attempt.at
            actions += [
                NotificationModel.next_attempt_at.set(_text(when)),
                NotificationModel.work_key.set(due_key(notification_id)),
                NotificationModel.work_at.set(_text(sweep_at or when)),
            ]
        NotificationModel(notification_id).update(
            actions=actions, condition=NotificationModel.notification_id.exists()
        )
        if attempt.number > _MAX_STORED_ATTEMPTS:
            self._trim_attempts(notification_id)

    def _dead_letter_actions(self, notification_id: str, now: datetime) -> list[Any]:
        item = self._load(notification_id)
        kind, recipient = (item.recipient_kind, item.recipient_id) if item else ("", "")
        return [
            NotificationModel.dead_at.set(_text(now)),
            NotificationModel.next_attempt_at.remove(),
            NotificationModel.work_key.set(dead_key(kind, recipient)),
            NotificationModel.work_at.set(_text(now)),
        ]

    def defer(
        self, notification_id: str, until: datetime, sweep_at: datetime, now: datetime
    ) -> bool:
        """Put the next attempt off without an attempt (the department's circuit is open)."""
        try:
            NotificationModel(notification_id).update(
                actions=[
                    NotificationModel.next_attempt_at.set(_text(until)),
                    NotificationModel.work_key.set(due_key(notification_id)),
                    NotificationModel.work_at.set(_text(sweep_at)),
                ],
                condition=NotificationModel.notification_id.exists()
                & NotificationModel.status.is_in(
                    NotificationStatus.PENDING.value, NotificationStatus.RETRYING.value
                ),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True

    def dead_letter(self, notification_id: str, now: datetime) -> bool:
        """Give a notification up without an attempt (deferred past its whole schedule)."""
        try:
            NotificationModel(notification_id).update(
                actions=[
                    NotificationModel.status.set(NotificationStatus.FAILED.value),
                    *self._dead_letter_actions(notification_id, now),
                    NotificationModel.lease_until.remove(),
                ],
                condition=NotificationModel.status.is_in(
                    NotificationStatus.PENDING.value, NotificationStatus.RETRYING.value
                ),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True

    # -- the due sweep, dead letters and re-drives -------------------------------------------

    def due(self, shard: int, now: datetime, limit: int) -> list[tuple[str, str, str]]:
        """(notification id, correlation id, work_at) of due work in one shard, oldest first:
        a Query on the sparse work index, reading only what is due."""
        result = NotificationModel.work_index.query(
            f"due#{shard}", NotificationModel.work_at <= _text(now), limit=limit
        )
        return [(i.notification_id, i.correlation_id, i.work_at) for i in result]

    def mark_enqueued(self, notification_id: str, seen_work_at: str, sweep_at: datetime) -> bool:
        """After the sweep enqueued it: look again only if no attempt happens by `sweep_at`."""
        try:
            NotificationModel(notification_id).update(
                actions=[NotificationModel.work_at.set(_text(sweep_at))],
                condition=NotificationModel.work_at == seen_work_at,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True

    def dead_letters(
        self, recipient_kind: str, recipient_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[Notification], dict[str, Any] | None]:
        """One page of a recipient's dead letters, oldest first."""
        key = dead_key(recipient_kind, recipient_id)
        if start_key is not None:
            stored = start_key.get("work_key")
            if set(start_key) != {"notification_id", "work_key", "work_at"} or (
                not isinstance(stored, dict) or stored.get("S") != key
            ):
                raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor")
        result = NotificationModel.work_index.query(
            key, limit=limit, page_size=limit, last_evaluated_key=start_key
        )
        items = [to_domain(item) for item in result]
        return items, result.last_evaluated_key

    def outstanding(self, limit: int) -> list[Notification]:
        """Notifications still to be delivered (written, retrying or deferred), at most `limit`:
        Queries on the due keys of the sparse work index, which hold nothing delivered or
        dead-lettered."""
        found: list[Notification] = []
        for shard in range(DUE_SHARDS):
            wanted = limit - len(found)
            if wanted <= 0:
                break
            result = NotificationModel.work_index.query(
                f"due#{shard}", limit=wanted, page_size=wanted
            )
            found += [to_domain(item) for item in result]
        return found

    def redrive(self, notification_id: str, now: datetime, sweep_at: datetime) -> bool:
        """A dead letter starts a new round of the schedule, due now. False if it is not (or no
        longer) a dead letter: a second re-drive changes nothing."""
        item = self._load(notification_id)
        if item is None or item.status != NotificationStatus.FAILED.value:
            return False
        last = max((int(a.number) for a in item.attempts or ()), default=0)
        try:
            NotificationModel(notification_id).update(
                actions=[
                    NotificationModel.status.set(NotificationStatus.RETRYING.value),
                    NotificationModel.round_base.set(last),
                    NotificationModel.round_started_at.set(_text(now)),
                    NotificationModel.redrives.add(1),
                    NotificationModel.dead_at.remove(),
                    NotificationModel.next_attempt_at.set(_text(now)),
                    NotificationModel.work_key.set(due_key(notification_id)),
                    NotificationModel.work_at.set(_text(sweep_at)),
                ],
                condition=NotificationModel.status == NotificationStatus.FAILED.value,
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True

    # -- department circuits -----------------------------------------------------------------

    def circuit(self, department_id: str) -> DepartmentCircuit:
        try:
            item = CircuitModel.get(CIRCUIT_PREFIX + department_id, consistent_read=True)
        except CircuitModel.DoesNotExist:
            return DepartmentCircuit(department_id)
        return DepartmentCircuit(
            department_id,
            consecutive_failures=int(item.consecutive_failures or 0),
            probe_at=_moment(item.probe_at),
            openings=int(item.openings or 0),
            delivered=int(item.delivered or 0),
            last_delivered_at=_moment(item.last_delivered_at),
        )

    def circuit_failed(
        self, department_id: str, threshold: int, probe_at: Any
    ) -> DepartmentCircuit:
        """Count a failed attempt; at the threshold open the circuit (or, after a failed probe,
        keep it open) until `probe_at(openings)`."""
        key = CIRCUIT_PREFIX + department_id
        item = CircuitModel(key)
        item.update(actions=[CircuitModel.consecutive_failures.add(1)])
        failures = int(item.consecutive_failures or 0)
        if failures < threshold:
            return self.circuit(department_id)
        openings = int(item.openings or 0) + 1
        CircuitModel(key).update(
            actions=[
                CircuitModel.probe_at.set(_text(probe_at(openings))),
                CircuitModel.openings.set(openings),
            ]
        )
        return self.circuit(department_id)

    def circuit_succeeded(self, department_id: str, now: datetime) -> None:
        """Close the circuit and count the delivery, in the one update a success costs."""
        CircuitModel(CIRCUIT_PREFIX + department_id).update(
            actions=[
                CircuitModel.consecutive_failures.set(0),
                CircuitModel.openings.set(0),
                CircuitModel.probe_at.remove(),
                CircuitModel.delivered.add(1),
                CircuitModel.last_delivered_at.set(_text(now)),
            ]
        )

    def claim_probe(self, department_id: str, now: datetime, lease_until: datetime) -> bool:
        """One consumer at a time probes an open circuit: the probe time moves past the lease."""
        try:
            CircuitModel(CIRCUIT_PREFIX + department_id).update(
                actions=[CircuitModel.probe_at.set(_text(lease_until))],
                condition=CircuitModel.probe_at <= _text(now),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            return False
        return True

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


def created_fact(notification_id: str, image: dict[str, Any]) -> tuple[AuditEntry, str]:
    """The audit fact of a notification's creation, from its stream image, with a fact id
    derived from the notification (a replayed stream record is the same fact)."""
    entry = AuditEntry(
        actor_id=SYSTEM.user_id,
        actor_role=SYSTEM.role.value,
        action="notification.created",
        subject_type="notification",
        subject_id=notification_id,
        after={
            "recipient_kind": image.get("recipient_kind"),
            "recipient_id": image.get("recipient_id"),
            "category": image.get("category"),
            "business_key": image.get("business_key"),
        },
        correlation_id=image.get("correlation_id"),
    )
    return entry, f"notification.created:{notification_id}"
