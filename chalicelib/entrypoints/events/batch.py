"""Partial-batch processing shared by every SQS and stream consumer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def process_batch(event: Any, record_handler: Callable[[Any], Any], *, stream: bool = False):
    """Run `record_handler` on each record of a Chalice SQS or DynamoDB-stream event and report
    the failed ones (ReportBatchItemFailures), item by item even when all of them failed.

    One processor per invocation: the local runner may call handlers from several threads."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    kind = EventType.DynamoDBStreams if stream else EventType.SQS
    return process_partial_response(
        event=event.to_dict(),
        record_handler=record_handler,
        processor=BatchProcessor(kind, raise_on_entire_batch_failure=False),
        context=event.context,
    )
