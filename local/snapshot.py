"""A JSON snapshot of every topology table and queue: the data format of earlier versions of
the local runner, and an export.

The embedded AWS keeps its own state now (journal and checkpoints, `local/moto_server.py`);
the runner only imports a `DATA_DIR/snapshot.json` left by an earlier version, once, into a
fresh embedded AWS. `save` (a Scan of every table, never on a request path) remains as an
export of the data in a readable form.

Items are kept in DynamoDB's typed JSON; binary values are base64 text. The item encoding is
also the one the stream pumps give handlers (Lambda's base64 for binary values).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib import topology
from chalicelib.settings import Settings

log = logging.getLogger("local.snapshot")

FORMAT_VERSION = 1
SNAPSHOT_FILE = "snapshot.json"
_BATCH_WRITE_MAX = 25
_UNPROCESSED_ROUNDS = 10


# --- attribute values: boto3 (bytes) <-> JSON (base64 text) -------------------------------------


def encode_value(value: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB AttributeValue as boto3 returns it, with bytes turned into base64 text."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(v) for v in inner]}
    if kind == "M":
        return {"M": encode_item(inner)}
    if kind == "L":
        return {"L": [encode_value(v) for v in inner]}
    return {kind: inner}


def decode_value(value: dict[str, Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": decode_item(inner)}
    if kind == "L":
        return {"L": [decode_value(v) for v in inner]}
    return {kind: inner}


def encode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: encode_value(value) for name, value in item.items()}


def decode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: decode_value(value) for name, value in item.items()}


def _b64(data: bytes | bytearray | str) -> str:
    if isinstance(data, str):
        return data
    return base64.b64encode(bytes(data)).decode("ascii")


# --- tables ----------------------------------------------------------------------------------


def dump_tables(dynamodb: Any, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    paginator = dynamodb.get_paginator("scan")
    for spec in topology.TABLES:
        name = topology.table_name(spec.name, settings)
        items: list[dict[str, Any]] = []
        for page in paginator.paginate(TableName=name, ConsistentRead=True):
            items.extend(encode_item(item) for item in page.get("Items", []))
        tables[spec.name] = items
    return tables


def restore_tables(
    dynamodb: Any, settings: Settings, tables: dict[str, list[dict[str, Any]]]
) -> dict[str, int]:
    known = {spec.name for spec in topology.TABLES}
    restored: dict[str, int] = {}
    for logical, items in tables.items():
        if logical not in known:
            log.warning("snapshot table %s is no longer in the topology: skipped", logical)
            continue
        name = topology.table_name(logical, settings)
        for start in range(0, len(items), _BATCH_WRITE_MAX):
            chunk = items[start : start + _BATCH_WRITE_MAX]
            _batch_put(dynamodb, name, [decode_item(item) for item in chunk])
        restored[logical] = len(items)
    return restored


def _batch_put(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    request = {table: [{"PutRequest": {"Item": item}} for item in items]}
    for _ in range(_UNPROCESSED_ROUNDS):
        unprocessed = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems")
        if not unprocessed:
            return
        request = unprocessed
    raise RuntimeError(f"could not restore every item of {table}")


# --- queues ----------------------------------------------------------------------------------


def queue_names() -> list[str]:
    """Logical names of every queue and DLQ of the topology."""
    names: list[str] = []
    for spec in topology.QUEUES:
        names += [spec.name, spec.dlq_name]
    return names


def drain_queues(sqs: Any, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Take every visible message out of every queue (the pumps are stopped by then).

    Messages a consumer holds invisible are not seen: the runner releases the ones its pumps
    left behind before calling this."""
    saved: dict[str, list[dict[str, Any]]] = {}
    for logical in queue_names():
        url = sqs.get_queue_url(QueueName=settings.resource_name(logical))["QueueUrl"]
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=600,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            for message in batch:
                messages.append(
                    {
                        "body": message["Body"],
                        "message_attributes": _encode_message_attributes(
                            message.get("MessageAttributes", {})
                        ),
                    }
                )
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        saved[logical] = messages
    return saved


def restore_queues(
    sqs: Any, settings: Settings, queues: dict[str, list[dict[str, Any]]]
) -> dict[str, int]:
    known = set(queue_names())
    restored: dict[str, int] = {}
    for logical, messages in queues.items():
        if logical not in known:
            log.warning("snapshot queue %s is no longer in the topology: skipped", logical)
            continue
        url = sqs.get_queue_url(QueueName=settings.resource_name(logical))["QueueUrl"]
        for message in messages:
            arguments: dict[str, Any] = {"QueueUrl": url, "MessageBody": message["body"]}
            attributes = _decode_message_attributes(message.get("message_attributes") or {})
            if attributes:
                arguments["MessageAttributes"] = attributes
            sqs.send_message(**arguments)
        restored[logical] = len(messages)
    return restored


def _encode_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    encoded = {}
    for name, value in attributes.items():
        item = {k: v for k, v in value.items() if k in ("DataType", "StringValue")}
        if "BinaryValue" in value:
            item["BinaryValue"] = _b64(value["BinaryValue"])
        encoded[name] = item
    return encoded


def _decode_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    decoded = {}
    for name, value in attributes.items():
        item = dict(value)
        if "BinaryValue" in item:
            item["BinaryValue"] = base64.b64decode(item["BinaryValue"])
        decoded[name] = item
    return decoded


# --- the file --------------------------------------------------------------------------------


def write_snapshot(path: Path, data: dict[str, Any]) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_snapshot(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported snapshot version {data.get('version')!r}")
    return data


@dataclass
class RestoreResult:
    tables: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    clock_offset_seconds: int = 0

    @property
    def items(self) -> int:
        return sum(self.tables.values())

    @property
    def messages(self) -> int:
        return sum(self.queues.values())


class Snapshotter:
    """Saves (exports) and restores (imports) one data directory's snapshot file."""

    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        dynamodb: Any,
        sqs: Any,
        clock: Any = None,
    ):
        self.settings = settings
        self._clock = clock
        self.path = Path(data_dir) / SNAPSHOT_FILE
        self._dynamodb = dynamodb
        self._sqs = sqs

    def save(self, *, include_queues: bool = False) -> None:
        data: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "saved_at": datetime.now(UTC).isoformat(),
            "resource_prefix": self.settings.resource_prefix,
            "tables": dump_tables(self._dynamodb, self.settings),
            "queues": drain_queues(self._sqs, self.settings) if include_queues else {},
        }
        if self._clock is not None:
            # How far the demo clock was moved ahead of real time, so a restart keeps it there.
            offset = self._clock.now() - datetime.now(self._clock.now().tzinfo)
            data["clock_offset_seconds"] = max(0, round(offset.total_seconds()))
        write_snapshot(self.path, data)

    def restore(self) -> RestoreResult:
        data = read_snapshot(self.path)
        result = RestoreResult()
        if data is not None:
            result.tables = restore_tables(self._dynamodb, self.settings, data.get("tables", {}))
            result.queues = restore_queues(self._sqs, self.settings, data.get("queues", {}))
            result.clock_offset_seconds = int(data.get("clock_offset_seconds") or 0)
        return result
