"""Notification pipeline: the outbox table's stream enqueues, the delivery queue delivers.

`enqueue_notifications` turns each newly written notification (stream INSERT) into a message on
"notification-delivery"; `deliver_notifications` makes one attempt per message. The retry
schedule is kept on the notification: a failed attempt whose wait fits SQS's 15-minute delay is
re-enqueued as a delayed message, a longer wait (up to 10 hours) is picked up by
`sweep_notifications`, which also re-enqueues deferred, re-driven and lost notifications. The
queue's own redrive to its DLQ is left for messages whose handling crashes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

QUEUE = "notification-delivery"
_SWEEP = next(s for s in topology.SCHEDULES if s.consumer == "sweep_notifications")
_NOTIFICATION_ID = re.compile(r"^[0-9a-f]{32}$")


class RetryLater(Exception):
    """Reported as a batch item failure: the queue delivers the message again later."""


@bp.on_dynamodb_record(
    stream_arn=topology.stream_arn("notifications"),
    name="enqueue_notifications",
    batch_size=100,
    # An outbox must not skip records written before the trigger was enabled.
    starting_position="TRIM_HORIZON",
)
def enqueue_notifications(event: Any) -> dict[str, Any]:
    return process_batch(
        event,
        _enqueue_record,
        stream=True,
        consumer="enqueue_notifications",
        on_data_error=_give_up_enqueued,
        alert_office=False,
    )


def _enqueue_record(record: Any) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id

    if record.event_name is None or record.event_name.name != "INSERT":
        return  # delivery bookkeeping and reads modify the item: nothing new to send
    image = record.dynamodb.new_image or {}
    notification_id = str(image.get("notification_id", ""))
    if notification_id.startswith("circuit#"):
        return  # a department's delivery circuit shares the table
    correlation_id = set_correlation_id(image.get("correlation_id"))
    if not _NOTIFICATION_ID.match(notification_id):
        # Retrying cannot fix it, and a failing stream record would hold up its whole shard.
        logger.error("stream record without a notification id", extra={"event_id": record.event_id})
        return
    from chalicelib.adapters.dynamodb.notifications import created_fact

    entry, fact_id = created_fact(notification_id, image)
    container().audit_log.append(entry, fact_id=fact_id)
    aws = container().aws
    aws.client("sqs").send_message(
        QueueUrl=aws.queue_url(QUEUE),
        MessageBody=json.dumps(
            {"notification_id": notification_id, "correlation_id": correlation_id}
        ),
    )
    logger.info(
        "notification enqueued",
        extra={
            "notification_id": notification_id,
            "recipient_kind": image.get("recipient_kind"),
            "category": image.get("category"),
        },
    )


@bp.on_sqs_message(
    queue=topology.queue_name(QUEUE),
    batch_size=topology.queue(QUEUE).batch_size,
    name="deliver_notifications",
)
def deliver_notifications(event: Any) -> dict[str, Any]:
    return process_batch(
        event,
        _deliver_record,
        consumer="deliver_notifications",
        on_data_error=_give_up_delivery,
        alert_office=False,
    )


# A notification that cannot be processed for a data reason is given up at once: it shows in
# its recipient's dead letters (GET /notifications/dead-letters), where staff see it and may
# re-drive it. No alert is sent about it: an alert is a notification, and could loop.


def _give_up_enqueued(record: Any, error: BaseException) -> None:
    image = record.dynamodb.new_image or {}
    _dead_letter(str(image.get("notification_id", "")))


def _give_up_delivery(record: Any, error: BaseException) -> None:
    try:
        notification_id, _ = _parse_message(record.body)
    except ValueError:
        return  # no notification named: the log line and the metric are all there is
    _dead_letter(notification_id)


def _dead_letter(notification_id: str) -> None:
    from chalicelib.bootstrap import container

    if _NOTIFICATION_ID.match(notification_id):
        c = container()
        c.notifier.dead_letter(notification_id, c.clock.now())


def _deliver_record(record: Any) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.observability import set_correlation_id
    from chalicelib.service_layer.notifications import deliver_notification

    notification_id, correlation_id = _parse_message(record.body)
    set_correlation_id(correlation_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    c = container()
    outcome = deliver_notification(
        notification_id,
        store=c.notifier,
        channels=_channels(c),
        clock=c.clock,
        audit_log=c.audit_log,
        policy=_policy(c),
    )
    _log_outcome(outcome, receive_count)
    if outcome.requeue_after_seconds is not None:
        # If this send is lost the due sweep enqueues it a few minutes later.
        _queue(c).enqueue(notification_id, correlation_id, outcome.requeue_after_seconds)
    if outcome.should_retry:
        _delay(record.receipt_handle, outcome.retry_after_seconds or 0)
        raise RetryLater(
            f"delivery {outcome.outcome.value}; retry in {outcome.retry_after_seconds}s"
        )


@bp.schedule(_SWEEP.expression, name=_SWEEP.consumer, description=_SWEEP.description)
def sweep_notifications(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.notifications import sweep_due

    set_correlation_id(getattr(event, "event_id", None))
    c = container()
    summary = sweep_due(store=c.notifier, queue=_queue(c), clock=c.clock)
    result = {"enqueued": summary.enqueued, "budget_exhausted": summary.budget_exhausted}
    (logger.warning if summary.budget_exhausted else logger.info)(
        "notification sweep finished", extra=result
    )
    return result


def _queue(c: Any) -> Any:
    from chalicelib.adapters.delivery_queue import SqsDeliveryQueue

    return SqsDeliveryQueue(c.aws)


def _parse_message(body: str) -> tuple[str, str | None]:
    """A malformed message cannot succeed: it fails until the redrive parks it in the DLQ."""
    message = json.loads(body)
    notification_id = message.get("notification_id") if isinstance(message, dict) else None
    if not isinstance(notification_id, str) or not _NOTIFICATION_ID.match(notification_id):
        raise ValueError("delivery message without a valid notification_id")
    correlation_id = message.get("correlation_id")
    return notification_id, correlation_id if isinstance(correlation_id, str) else None


def _channels(c: Any) -> Any:
    from chalicelib.service_layer.notifications import Channels

    return Channels(
        directory=c.directory, webhook=c.webhook_sender, subscription=c.subscription_sender
    )


def _policy(c: Any) -> Any:
    import random

    from chalicelib.service_layer.notifications import DeliveryPolicy

    spec = topology.queue(QUEUE)
    return DeliveryPolicy(
        lease_seconds=int(c.settings.webhook_timeout_seconds) + spec.consumer_timeout_seconds,
        # Tests put a fixed source on the container; Lambda uses the process's generator.
        draw=getattr(c, "random", None) or random.random,
    )


def _delay(receipt_handle: str, seconds: int) -> None:
    """Push the next receive out by the back-off. If this fails the queue's own visibility
    timeout applies instead: the retry still happens, only sooner."""
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger

    aws = container().aws
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=aws.queue_url(QUEUE),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )
    except Exception as exc:
        logger.warning("could not change message visibility", extra={"error": type(exc).__name__})


def _log_outcome(outcome: Any, receive_count: int) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from chalicelib.observability import logger, metrics
    from chalicelib.service_layer.notifications import Outcome

    attempt = outcome.attempt
    fields: dict[str, Any] = {
        "notification_id": outcome.notification_id,
        "outcome": outcome.outcome.value,
        "recipient_kind": outcome.recipient_kind.value if outcome.recipient_kind else None,
        "receive_count": receive_count,
    }
    if attempt is not None:
        fields.update(
            attempt=attempt.number,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )
    if outcome.retry_after_seconds is not None or outcome.final:
        fields.update(retry_after_seconds=outcome.retry_after_seconds, final=outcome.final)
    if outcome.redriven:
        fields.update(redriven=outcome.redriven)
    noteworthy = outcome.should_retry or outcome.outcome in (
        Outcome.MISSING,
        Outcome.FAILED,
        Outcome.DEFERRED,
    )
    (logger.warning if noteworthy else logger.info)("notification delivery attempt", extra=fields)
    metrics.add_metric(
        name=f"Notification{outcome.outcome.value.title().replace('_', '')}",
        unit=MetricUnit.Count,
        value=1,
    )
