"""Partial-batch processing shared by every SQS and stream consumer.

A record fails for one of two reasons. A transient one (AWS, the network, a write conflict, a
dependency down) is reported as a batch item failure and retried; after the queue's last receive
it lands in the DLQ. A data one (a message or a stored value that cannot be processed: a
validation or domain error) would fail the same way on every delivery, so it is not retried: it
is logged (masked, like every line), counted (`UnprocessableRecords`), the district office is
told, and the consumer's `on_data_error` moves the subject to a state people see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

# Exceptions raised by these libraries are about the call, not the data: always retried.
_TRANSIENT_MODULES = ("botocore", "boto3", "urllib3", "requests", "pynamodb", "socket", "ssl")


def is_data_error(error: BaseException) -> bool:
    """True when processing the same record again cannot succeed."""
    from chalicelib.domain import errors as e

    if isinstance(error, e.DependencyUnavailable | e.Conflict):
        return False
    if isinstance(error, e.DomainError):
        return True
    if type(error).__module__.split(".")[0] in _TRANSIENT_MODULES:
        return False
    return isinstance(error, ValueError | KeyError | TypeError | ArithmeticError | IndexError)


def process_batch(
    event: Any,
    record_handler: Callable[[Any], Any],
    *,
    stream: bool = False,
    consumer: str | None = None,
    on_data_error: Callable[[Any, BaseException], None] | None = None,
    alert_office: bool = True,
):
    """Run `record_handler` on each record of a Chalice SQS or DynamoDB-stream event and report
    the failed ones (ReportBatchItemFailures), item by item even when all of them failed.

    Data errors are parked, not reported (see the module docstring). `alert_office` is off for
    the notification consumers themselves: an alert about an alert would loop.

    One processor per invocation: the local runner may call handlers from several threads."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    name = consumer or getattr(record_handler, "__module__", "consumer").rsplit(".", 1)[-1]

    def guarded(record: Any) -> Any:
        try:
            return record_handler(record)
        except Exception as error:
            if not is_data_error(error):
                raise
            park(record, error, consumer=name, on_data_error=on_data_error, alert=alert_office)
            return None

    kind = EventType.DynamoDBStreams if stream else EventType.SQS
    return process_partial_response(
        event=event.to_dict(),
        record_handler=guarded,
        processor=BatchProcessor(kind, raise_on_entire_batch_failure=False),
        context=event.context,
    )


def record_id(record: Any) -> str:
    """The record's own id (SQS message id, stream event id), or a digest of its content."""
    raw = getattr(record, "raw_event", None) or {}
    for key in ("messageId", "eventID"):
        if raw.get(key):
            return str(raw[key])
    for attr in ("message_id", "event_id"):
        value = getattr(record, attr, None)
        if value:
            return str(value)
    return hashlib.sha256(repr(raw or record).encode()).hexdigest()[:32]


def park(
    record: Any,
    error: BaseException,
    *,
    consumer: str,
    on_data_error: Callable[[Any, BaseException], None] | None = None,
    alert: bool = True,
) -> None:
    """Everything that makes a record that cannot be processed visible; each step is keyed
    on the record, so a redelivery (the previous attempt died half-way) repeats none of it."""
    from chalicelib.observability import emit_metric, logger

    rid = record_id(record)
    code = getattr(error, "code", None) or type(error).__name__
    logger.error(
        "record not processable: parked, not retried",
        extra={"consumer": consumer, "record_id": rid, "code": code, "reason": str(error)[:500]},
    )
    emit_metric("UnprocessableRecords", consumer=consumer)
    if on_data_error is not None:
        try:
            on_data_error(record, error)
        except Exception as hook_error:
            if not is_data_error(hook_error):
                raise  # the subject could not be moved yet: retry the whole record later
            logger.error(
                "subject of an unprocessable record could not be moved",
                extra={"consumer": consumer, "record_id": rid, "code": type(hook_error).__name__},
            )
    if alert:
        _alert_office(consumer, rid, code, error)


def _alert_office(consumer: str, rid: str, code: str, error: BaseException) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID as OFFICE
    from chalicelib.domain.notifications import RecipientKind
    from chalicelib.domain.personal_data import mask_text
    from chalicelib.service_layer.notify import notify

    notify(
        container().notifier,
        f"unprocessable:{consumer}:{rid}:{OFFICE}",
        RecipientKind.DEPARTMENT,
        OFFICE,
        "system.unprocessable_record",
        "后台任务遇到无法处理的数据",
        f"{consumer} 无法处理记录 {rid}（{code}）：{mask_text(str(error))[:300]}。"
        "该记录不再重试，请人工核查。",
        {"consumer": consumer, "record_id": rid, "code": code},
    )
