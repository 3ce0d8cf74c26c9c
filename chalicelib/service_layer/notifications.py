"""Notification use cases: deliver one notification (one attempt), the due sweep's re-enqueue,
dead letters and their re-drive, read and mark the inbox.

Delivery is at-least-once and idempotent: a delivered notification is never sent again, a
lease keeps two consumers of a duplicated message from sending at the same time, a message that
arrives before the notification's next attempt time does nothing, and every attempt is stored on
the notification whatever its outcome. The retry schedule (about 28 hours) is kept on the
notification; a circuit per department defers its deliveries while its endpoint is down, so a
dead or hanging endpoint costs one probe, not one timeout per message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import InvalidInput, NotFound
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import (
    CIRCUIT_FAILURE_THRESHOLD,
    CORRELATION_ID_HEADER,
    CircuitDecision,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
    RecipientKind,
    SendResult,
    circuit_decision,
    deferred_until,
    probe_delay,
    retry_delay,
    round_expired,
    webhook_body,
)
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.ports import Directory
from chalicelib.service_layer.ports.notifications import (
    DeliveryQueue,
    SubscriptionSender,
    WebhookPoster,
)
from chalicelib.service_layer.ports.notifications import NotificationOutbox as NotificationStore

_NOTIFICATION_ID = re.compile(r"^[0-9a-f]{32}$")


class Clock(Protocol):
    def now(self) -> datetime: ...


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> Any: ...


# SQS delays a message by at most 15 minutes: shorter waits ride on a delayed message, longer
# ones on the due sweep.
MAX_QUEUE_DELAY_SECONDS = 900
# After a message for a notification is queued, the sweep looks again only this much later.
QUEUED_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class DeliveryPolicy:
    lease_seconds: int  # longer than one attempt can take
    # Uniform random numbers in [0, 1) for the jitter; injected so tests are exact.
    draw: Callable[[], float] = field(default=lambda: 0.5)
    circuit_threshold: int = CIRCUIT_FAILURE_THRESHOLD


class Outcome(StrEnum):
    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"
    MISSING = "missing"  # no such notification: nothing to deliver, ever
    NOT_DUE = "not_due"  # a duplicate or early message: the schedule says later
    DEAD_LETTER = "dead_letter"  # already given up: re-driven by staff or a recovered endpoint
    FAILED = "failed"  # attempt failed: the next one is scheduled (or it is dead-lettered)
    DEFERRED = "deferred"  # the department's circuit is open: no attempt, wait for its probe
    BUSY = "busy"  # another consumer holds the lease: retry after it


@dataclass(frozen=True)
class DeliveryOutcome:
    outcome: Outcome
    notification_id: str
    recipient_kind: RecipientKind | None = None
    attempt: DeliveryAttempt | None = None
    retry_after_seconds: int | None = None
    final: bool = False  # dead-lettered by this call
    # Set when a delayed queue message must carry the next attempt (the wait fits SQS's delay).
    requeue_after_seconds: int | None = None
    redriven: int = 0  # dead letters re-driven because this attempt closed the circuit

    @property
    def should_retry(self) -> bool:
        """The queue must deliver this very message again (only while another consumer works)."""
        return self.outcome is Outcome.BUSY


@dataclass(frozen=True)
class Channels:
    directory: Directory
    webhook: WebhookPoster
    subscription: SubscriptionSender


def deliver_notification(
    notification_id: str,
    *,
    store: NotificationStore,
    channels: Channels,
    clock: Clock,
    audit_log: AuditLog,
    policy: DeliveryPolicy,
) -> DeliveryOutcome:
    """Make one delivery attempt for one queued notification, if it is due and its
    department's circuit lets it through."""
    notification = store.get(notification_id)
    if notification is None:
        return DeliveryOutcome(Outcome.MISSING, notification_id)
    kind = notification.recipient_kind
    if notification.is_delivered:
        return DeliveryOutcome(Outcome.ALREADY_DELIVERED, notification_id, kind)
    if notification.is_dead_letter:
        return DeliveryOutcome(Outcome.DEAD_LETTER, notification_id, kind)
    now = clock.now()
    if notification.next_attempt_at is not None and notification.next_attempt_at > now:
        return DeliveryOutcome(Outcome.NOT_DUE, notification_id, kind)

    probing = False
    if kind is RecipientKind.DEPARTMENT:
        circuit = store.circuit(notification.recipient_id)
        decision = circuit_decision(circuit, now)
        if decision is CircuitDecision.PROBE:
            lease_until = now + timedelta(seconds=policy.lease_seconds)
            probing = store.claim_probe(notification.recipient_id, now, lease_until)
            if not probing:
                circuit = store.circuit(notification.recipient_id)
                decision = CircuitDecision.DEFER
        if decision is CircuitDecision.DEFER and circuit.probe_at is not None:
            return _defer(notification, circuit.probe_at, store, audit_log, policy, now)

    if not store.claim(notification_id, now, policy.lease_seconds):
        current = store.get(notification_id)
        if current is not None and current.is_delivered:
            return DeliveryOutcome(Outcome.ALREADY_DELIVERED, notification_id, kind)
        return DeliveryOutcome(
            Outcome.BUSY, notification_id, kind, retry_after_seconds=policy.lease_seconds
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
        redriven = 0
        if kind is RecipientKind.DEPARTMENT:
            store.circuit_succeeded(notification.recipient_id, now)
            if probing:
                redriven = redrive_dead_letters(
                    notification.recipient_id, store=store, clock=clock, audit_log=audit_log
                )
        return DeliveryOutcome(Outcome.DELIVERED, notification_id, kind, attempt, redriven=redriven)

    if kind is RecipientKind.DEPARTMENT and _counts_against_endpoint(result):
        store.circuit_failed(
            notification.recipient_id,
            policy.circuit_threshold,
            lambda openings: now + timedelta(seconds=probe_delay(openings, policy.draw())),
        )
    delay = retry_delay(notification.failed_in_round + 1, policy.draw())
    if delay is None:
        store.record_attempt(notification_id, attempt, NotificationStatus.FAILED)
        _audit_delivery(audit_log, notification, attempt, NotificationStatus.FAILED)
        return DeliveryOutcome(Outcome.FAILED, notification_id, kind, attempt, final=True)
    next_at = now + timedelta(seconds=delay)
    requeue = math.ceil(delay) if delay <= MAX_QUEUE_DELAY_SECONDS else None
    store.record_attempt(
        notification_id,
        attempt,
        NotificationStatus.RETRYING,
        next_attempt_at=next_at,
        sweep_at=next_at + QUEUED_LEASE if requeue is not None else next_at,
    )
    return DeliveryOutcome(
        Outcome.FAILED,
        notification_id,
        kind,
        attempt,
        retry_after_seconds=math.ceil(delay),
        requeue_after_seconds=requeue,
    )


def _counts_against_endpoint(result: SendResult) -> bool:
    """Only the endpoint's own failures open its circuit, not a missing configuration."""
    return result.error not in (
        "department_not_found",
        "webhook_not_configured",
        "webhook_secret_missing",
    )


def _defer(
    notification: Notification,
    probe_at: datetime,
    store: NotificationStore,
    audit_log: AuditLog,
    policy: DeliveryPolicy,
    now: datetime,
) -> DeliveryOutcome:
    """Wait for the department's probe, without an HTTP attempt; give up past the schedule."""
    nid, kind = notification.notification_id, notification.recipient_kind
    if round_expired(notification, now):
        if store.dead_letter(nid, now):
            _audit_dead_letter(audit_log, notification, "circuit_open")
        return DeliveryOutcome(Outcome.DEFERRED, nid, kind, final=True)
    until = max(deferred_until(probe_at, policy.draw()), now)
    wait = math.ceil((until - now).total_seconds())
    requeue = wait if wait <= MAX_QUEUE_DELAY_SECONDS else None
    store.defer(nid, until, until + QUEUED_LEASE if requeue is not None else until, now)
    return DeliveryOutcome(
        Outcome.DEFERRED, nid, kind, retry_after_seconds=wait, requeue_after_seconds=requeue
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


def _audit_dead_letter(audit_log: AuditLog, notification: Notification, reason: str) -> None:
    audit_log.append(
        AuditEntry(
            actor_id=SYSTEM.user_id,
            actor_role=SYSTEM.role.value,
            action="notification.dead_lettered",
            subject_type="notification",
            subject_id=notification.notification_id,
            before={"status": notification.status.value},
            after={"status": NotificationStatus.FAILED.value, "reason": reason},
            correlation_id=notification.correlation_id,
        )
    )


# -- the due sweep ----------------------------------------------------------------------------

SWEEP_SHARDS = 4
SWEEP_BUDGET = 500  # notifications enqueued per run; the rest wait for the next run


@dataclass(frozen=True)
class SweepSummary:
    enqueued: int
    budget_exhausted: bool


def sweep_due(
    *, store: NotificationStore, queue: DeliveryQueue, clock: Clock, budget: int = SWEEP_BUDGET
) -> SweepSummary:
    """Enqueue every notification whose work is due: a retry whose wait outlasted the queue's
    delay, a deferral behind an open circuit, a re-drive, or an enqueue that was lost between
    the outbox write and the queue. Reads only due items (a Query per shard, never a Scan).
    The message is sent before the item is marked, so a crash between the two sends it twice;
    delivery is idempotent."""
    now = clock.now()
    enqueued = 0
    for shard in range(SWEEP_SHARDS):
        for notification_id, correlation_id, work_at in store.due(shard, now, budget - enqueued):
            queue.enqueue(notification_id, correlation_id, 0)
            store.mark_enqueued(notification_id, work_at, now + QUEUED_LEASE)
            enqueued += 1
        if enqueued >= budget:
            return SweepSummary(enqueued, True)
    return SweepSummary(enqueued, False)


# -- dead letters ------------------------------------------------------------------------------

REDRIVE_PAGE = 100
REDRIVE_BUDGET = 1000  # per recovery; the rest are re-driven by staff or the next recovery


def list_dead_letters(
    principal: Principal,
    department_id: str,
    store: NotificationStore,
    limit: int,
    start_key: dict[str, Any] | None,
) -> tuple[list[Notification], dict[str, Any] | None]:
    """One page of a department's dead-lettered notifications, oldest first."""
    if not department_id.strip():
        raise InvalidInput("请指定部门", code="department_required")
    require(principal, Action.READ_DEAD_LETTERS, Resource(department_id=department_id))
    return store.dead_letters(RecipientKind.DEPARTMENT.value, department_id, limit, start_key)


# Outstanding and dead-lettered work is normally a handful; past these bounds the figures are
# marked incomplete rather than read on.
_HEALTH_OUTSTANDING = 1000
_HEALTH_DEAD_PAGES = 10
_HEALTH_PAGE = 100


@dataclass(frozen=True)
class DeliveryHealth:
    department_id: str
    pending: int  # written, no attempt yet (or deferred behind an open circuit)
    retrying: int  # at least one attempt failed, another is scheduled
    dead_lettered: int  # every attempt of the schedule failed: waiting for a re-drive
    circuit_open: bool  # the department's endpoint is being given a rest
    delivered: int  # deliveries that succeeded, ever
    last_delivered_at: datetime | None
    complete: bool  # False when a bound was reached: the counts are lower bounds


def delivery_health(
    principal: Principal, department_id: str, store: NotificationStore
) -> DeliveryHealth:
    """How a department's webhook deliveries stand now: what is waiting, retrying and
    dead-lettered, read from the outbox's work index (never a Scan)."""
    if not department_id.strip():
        raise InvalidInput("请指定部门", code="department_required")
    require(principal, Action.READ_DEAD_LETTERS, Resource(department_id=department_id))
    outstanding = store.outstanding(_HEALTH_OUTSTANDING + 1)
    complete = len(outstanding) <= _HEALTH_OUTSTANDING
    own = [
        n
        for n in outstanding[:_HEALTH_OUTSTANDING]
        if n.recipient_kind is RecipientKind.DEPARTMENT and n.recipient_id == department_id
    ]
    dead = 0
    start_key: dict[str, Any] | None = None
    for _ in range(_HEALTH_DEAD_PAGES):
        page, start_key = store.dead_letters(
            RecipientKind.DEPARTMENT.value, department_id, _HEALTH_PAGE, start_key
        )
        dead += len(page)
        if start_key is None:
            break
    else:
        complete = False
    circuit = store.circuit(department_id)
    return DeliveryHealth(
        department_id=department_id,
        pending=sum(1 for n in own if n.status is NotificationStatus.PENDING),
        retrying=sum(1 for n in own if n.status is NotificationStatus.RETRYING),
        dead_lettered=dead,
        circuit_open=circuit.is_open,
        delivered=circuit.delivered,
        last_delivered_at=circuit.last_delivered_at,
        complete=complete,
    )


@dataclass(frozen=True)
class RedriveResult:
    notification: Notification
    redriven: bool  # False: it was not a dead letter (a second re-drive changes nothing)


def redrive_notification(
    principal: Principal,
    notification_id: str,
    *,
    store: NotificationStore,
    queue: DeliveryQueue | None,
    clock: Clock,
    audit_log: AuditLog,
) -> RedriveResult:
    """Staff start a new round of the schedule for a dead letter, sent at once."""
    not_found = NotFound("未找到该通知", code="notification_not_found")
    if not _NOTIFICATION_ID.match(notification_id):
        raise not_found
    notification = store.get(notification_id)
    if notification is None or notification.recipient_kind is not RecipientKind.DEPARTMENT:
        raise not_found
    require(
        principal, Action.REDRIVE_NOTIFICATION, Resource(department_id=notification.recipient_id)
    )
    now = clock.now()
    if not store.redrive(notification_id, now, now + QUEUED_LEASE):
        return RedriveResult(notification, redriven=False)
    _audit_redrive(audit_log, principal, notification, "staff")
    if queue is not None:
        queue.enqueue(notification_id, notification.correlation_id, 0)
    refreshed = store.get(notification_id)
    return RedriveResult(refreshed or notification, redriven=True)


def redrive_dead_letters(
    department_id: str,
    *,
    store: NotificationStore,
    clock: Clock,
    audit_log: AuditLog,
    budget: int = REDRIVE_BUDGET,
) -> int:
    """The department's endpoint answers again: every dead letter starts a new round, due now
    (the due sweep enqueues them within a minute)."""
    now = clock.now()
    redriven = 0
    start_key: dict[str, Any] | None = None
    while redriven < budget:
        page, start_key = store.dead_letters(
            RecipientKind.DEPARTMENT.value, department_id, REDRIVE_PAGE, start_key
        )
        for notification in page:
            if store.redrive(notification.notification_id, now, now):
                _audit_redrive(audit_log, SYSTEM, notification, "endpoint_recovered")
                redriven += 1
        if start_key is None or not page:
            break
    return redriven


def _audit_redrive(
    audit_log: AuditLog, actor: Principal, notification: Notification, reason: str
) -> None:
    audit_log.append(
        AuditEntry(
            actor_id=actor.user_id,
            actor_role=actor.role.value,
            action="notification.redriven",
            subject_type="notification",
            subject_id=notification.notification_id,
            before={"status": NotificationStatus.FAILED.value},
            after={"status": NotificationStatus.RETRYING.value, "reason": reason},
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
