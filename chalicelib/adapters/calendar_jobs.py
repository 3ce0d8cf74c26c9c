"""Sends calendar-recompute jobs to their SQS queue (topology: "calendar-recompute")."""

from __future__ import annotations

import json
from typing import Any

QUEUE = "calendar-recompute"


class SqsRecomputeQueue:
    def __init__(self, aws: Any):
        self._aws = aws

    def send(self, job: dict[str, Any]) -> None:
        self._aws.client("sqs").send_message(
            QueueUrl=self._aws.queue_url(QUEUE),
            MessageBody=json.dumps(job, ensure_ascii=False, sort_keys=True),
        )
