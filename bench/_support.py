"""Shared by the benchmarks: an in-process environment and a counter of AWS calls.

`make bench` skips files starting with an underscore, so this module is never run on its own.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


def use_in_process_aws(**extra: str) -> None:
    """Settings for a bench on in-process moto; call before importing any project module."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.update(
        {
            "QPHB_STAGE": "local",
            "QPHB_RESOURCE_PREFIX": "qphb-bench",
            "QPHB_AWS_REGION": "us-east-1",
            "QPHB_LOG_LEVEL": "WARNING",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **extra,
        }
    )
    for name in ("AWS_ENDPOINT_URL", "QPHB_AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)


def short_table(table: str) -> str:
    return table.removeprefix("qphb-bench-")


class CallCounter:
    """Counts AWS calls by operation (refused ones too), and the DynamoDB items read (by table
    and index) and written (by table) by the calls that succeeded."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        self.active = False

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client, operation, params):
            if not counter.active:
                return original(client, operation, params)
            counter.calls[operation] += 1
            response = original(client, operation, params)
            counter.record(operation, params, response)
            return response

        BaseClient._make_api_call = counted

    def record(self, operation: str, params: dict, response: dict) -> None:
        self._record_reads(operation, params, response)
        self._record_writes(operation, params)

    def _record_reads(self, operation: str, params: dict, response: dict) -> None:
        read = 0
        if operation in ("Query", "Scan"):
            read = response.get("ScannedCount", response.get("Count", 0))
        elif operation == "GetItem":
            read = 1 if response.get("Item") else 0
        elif operation == "BatchGetItem":
            read = sum(len(v) for v in response.get("Responses", {}).values())
        if read:
            table = params.get("TableName", "")
            index = params.get("IndexName")
            self.items[f"{table}{'/' + index if index else ''}"] += read

    def _record_writes(self, operation: str, params: dict) -> None:
        if operation in _WRITES:
            self.written[short_table(params.get("TableName", ""))] += 1
        elif operation == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                for kind, request in item.items():
                    if kind != "ConditionCheck":
                        self.written[short_table(request.get("TableName", ""))] += 1
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                self.written[short_table(table)] += len(requests)

    def reset(self) -> None:
        self.calls.clear()
        self.items.clear()
        self.written.clear()
