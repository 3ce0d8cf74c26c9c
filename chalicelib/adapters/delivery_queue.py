"""The notification delivery queue (SQS): one message is one delivery attempt."""

from __future__ import annotations

import json
from typing import Any

QUEUE = "notification-delivery"
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


class SqsDeliveryQueue:
    def __init__(self, aws: Any):
        self._aws = aws

    def enqueue(self, notification_id: str, correlation_id: str | None, delay_seconds: int) -> None:
        self._aws.client("sqs").send_message(
            QueueUrl=self._aws.queue_url(QUEUE),
            MessageBody=json.dumps(
                {"notification_id": notification_id, "correlation_id": correlation_id}
            ),
            DelaySeconds=max(0, min(int(delay_seconds), MAX_DELAY_SECONDS)),
        )
