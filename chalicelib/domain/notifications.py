"""Outbound notifications as the rest of the domain asks for them, and the pure rules of their
delivery: identity from the business key, the webhook signature, the retry schedule and the
per-department circuit."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    RETRYING = "retrying"  # at least one attempt failed; next_attempt_at says when again
    DELIVERED = "delivered"  # terminal: never sent again
    FAILED = "failed"  # dead letter: the schedule ran out; re-driven by staff or a recovery


# The department webhook's own header; the Standard Webhooks headers are the sender's.
CORRELATION_ID_HEADER = "X-Correlation-Id"

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
    next_attempt_at: datetime | None = None  # while not delivered nor dead-lettered
    # A re-drive starts a new round of the retry schedule: attempts before it do not count.
    round_base: int = 0  # attempts made before the current round
    round_started_at: datetime | None = None  # None: the round began at created_at
    redrives: int = 0
    dead_at: datetime | None = None

    @property
    def is_delivered(self) -> bool:
        return self.status is NotificationStatus.DELIVERED

    @property
    def next_attempt_number(self) -> int:
        return self.attempts[-1].number + 1 if self.attempts else 1

    @property
    def is_dead_letter(self) -> bool:
        return self.status is NotificationStatus.FAILED

    @property
    def failed_in_round(self) -> int:
        """Failed attempts of the current round of the schedule."""
        return max(self.next_attempt_number - 1 - self.round_base, 0)

    @property
    def round_start(self) -> datetime:
        return self.round_started_at or self.created_at

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


# -- when to try again -----------------------------------------------------------------------

# Seconds to wait after the n-th failed attempt of a round, after Standard Webhooks / Svix:
# immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, with one more 10 h so that even the
# shortest jitter spans more than a day (about 37.6 hours nominal, 9 attempts). Past SQS's
# 12-hour visibility limit, so the schedule lives on the notification, not in the queue.
RETRY_SCHEDULE_SECONDS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)
JITTER = 0.2  # each wait is spread ±20% so retries of one outage do not arrive in a wave
# How long a deferred notification (its department's circuit open) may wait in all: the span of
# the schedule with full jitter. Past it, the notification is dead-lettered like a failed one.
ROUND_SPAN = timedelta(seconds=sum(RETRY_SCHEDULE_SECONDS) * (1 + JITTER))


def jittered(seconds: float, draw: float) -> float:
    """`seconds` spread by ±JITTER; `draw` is a uniform random number in [0, 1)."""
    return seconds * (1 + JITTER * (2 * min(max(draw, 0.0), 1.0) - 1))


def retry_delay(failed_in_round: int, draw: float) -> float | None:
    """Seconds until the next attempt after the n-th failure of a round; None: dead letter."""
    if failed_in_round < 1 or failed_in_round > len(RETRY_SCHEDULE_SECONDS):
        return None
    return jittered(RETRY_SCHEDULE_SECONDS[failed_in_round - 1], draw)


def round_expired(notification: Notification, now: datetime) -> bool:
    """A notification deferred for longer than a whole schedule is given up (dead-lettered)."""
    return now - notification.round_start > ROUND_SPAN


# -- a circuit per department ----------------------------------------------------------------

# Consecutive failed attempts (any notification) after which a department's circuit opens: its
# deliveries then wait for a single probe instead of each paying the endpoint's timeout.
CIRCUIT_FAILURE_THRESHOLD = 3
# Waits before the next probe, after the n-th opening in a row (the last repeats).
PROBE_BACKOFF_SECONDS: tuple[int, ...] = (30, 60, 120, 300, 600)
# Deferred notifications come back spread over this long after the probe time.
DEFERRAL_SPREAD_SECONDS = 30


class CircuitDecision(StrEnum):
    SEND = "send"  # closed: attempt
    PROBE = "probe"  # open and the probe time has come: this attempt is the probe
    DEFER = "defer"  # open: wait for the probe, without an HTTP attempt


@dataclass(frozen=True)
class DepartmentCircuit:
    department_id: str
    consecutive_failures: int = 0
    probe_at: datetime | None = None  # set while open
    openings: int = 0  # openings in a row without a success: the probe back-off grows
    delivered: int = 0  # webhook deliveries that succeeded, ever
    last_delivered_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.probe_at is not None


def circuit_decision(circuit: DepartmentCircuit, now: datetime) -> CircuitDecision:
    if circuit.probe_at is None:
        return CircuitDecision.SEND
    return CircuitDecision.PROBE if now >= circuit.probe_at else CircuitDecision.DEFER


def opens_after(consecutive_failures: int) -> bool:
    return consecutive_failures >= CIRCUIT_FAILURE_THRESHOLD


def probe_delay(openings: int, draw: float) -> float:
    """Seconds from an opening (or a failed probe) to the next probe."""
    index = min(max(openings, 1), len(PROBE_BACKOFF_SECONDS)) - 1
    return jittered(PROBE_BACKOFF_SECONDS[index], draw)


def deferred_until(probe_at: datetime, draw: float) -> datetime:
    """When a deferred notification is tried again: just after the probe, spread out."""
    return probe_at + timedelta(seconds=DEFERRAL_SPREAD_SECONDS * min(max(draw, 0.0), 1.0))
