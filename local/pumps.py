"""Local event pumps: deliver SQS messages, DynamoDB stream records and schedules to the same
Chalice-registered handlers Lambda runs, with Lambda's event shapes and failure semantics. A
queue whose topology entry names a `function` ("module:function" under functions/) is pumped
into that Lambda handler instead.

Bindings come from the Chalice app (`app.event_sources`, `app.handler_map`) and from the
topology (`STREAMS` names each stream's table, `SCHEDULES` their rates). Each pump does one step
per `run_once()`, so tests drive it step by step; the runner loops it in a thread.

- SQS: receive up to the batch size, call the handler, delete what succeeded and leave the
  `batchItemFailures` in the queue, so visibility timeouts and redrive to the DLQ work as in
  Lambda. No long polling: the embedded server is single-threaded and a waiting receive would
  hold every other request.
- Streams: read each shard after the last record delivered before the stop or crash (the
  runner keeps each pump's position in its data directory, `StreamPositions`: at least once,
  as Lambda's event source mapping; the handlers are idempotent), or from LATEST for a stream
  never read; one batch is read at a time, so what was read and not yet delivered is at most
  the batch in the handler; on `batchItemFailures` retry from the
  first failed sequence number, at most `max_retries` times per record, then skip it with an
  error log. Given the stream's head (`head`: the last sequence number the table's stream
  holds, from the embedded AWS), a pump reads only when there is something new.
- Every pump reports its lag (`status()`), which the runner shows in `GET /health`: a pump
  behind its source that has not moved for STALL_SECONDS is reported stalled.
- Schedules: fire an EventBridge "Scheduled Event" every `rate` on the injected clock, so moving
  the demo clock fires them. Periods missed by a jump fire once, not once per period.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib import topology
from chalicelib.settings import Settings
from local.snapshot import encode_item

log = logging.getLogger("local.pumps")

# A pump behind its source that has not moved for this long is reported as stalled.
STALL_SECONDS = 30.0

ACCOUNT_ID = "000000000000"
Handler = Callable[[dict[str, Any], Any], Any]


# --- bindings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqsBinding:
    handler_name: str
    handler: Handler
    queue_name: str  # physical
    batch_size: int
    timeout_seconds: int


@dataclass(frozen=True)
class StreamBinding:
    handler_name: str
    handler: Handler
    table_name: str  # physical
    batch_size: int


@dataclass(frozen=True)
class ScheduleBinding:
    name: str
    handler_name: str
    handler: Handler
    rate: timedelta


@dataclass
class Bindings:
    sqs: list[SqsBinding] = field(default_factory=list)
    streams: list[StreamBinding] = field(default_factory=list)
    schedules: list[ScheduleBinding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    functions: list[SqsBinding] = field(default_factory=list)  # queues of functions/ Lambdas


def discover(app: Any, settings: Settings) -> Bindings:
    """Every event binding of `app`, checked against the topology."""
    from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

    bindings = Bindings()
    sources = list(app.event_sources)
    for source in sources:
        if isinstance(source, SQSEventConfig):
            bindings.sqs.append(_sqs_binding(app, source, settings))
        elif isinstance(source, ScheduledEventConfig):
            binding = _schedule_binding(app, source)
            if binding is None:
                bindings.warnings.append(
                    f"schedule {source.name}: only rate() expressions are pumped locally"
                )
            else:
                bindings.schedules.append(binding)

    stream_sources = {s.name: s for s in sources if isinstance(s, DynamoDBEventConfig)}
    for spec in topology.STREAMS:
        source = stream_sources.pop(spec.consumer, None)
        if source is None:
            bindings.warnings.append(f"stream of {spec.table}: handler {spec.consumer} missing")
            continue
        bindings.streams.append(
            StreamBinding(
                spec.consumer,
                app.handler_map[spec.consumer],
                topology.table_name(spec.table, settings),
                source.batch_size or spec.batch_size,
            )
        )
    for source in stream_sources.values():
        table = _table_from_stream_arn(source.stream_arn)
        if table is None:
            bindings.warnings.append(f"stream handler {source.name}: cannot tell its table")
            continue
        bindings.streams.append(
            StreamBinding(source.name, app.handler_map[source.name], table, source.batch_size)
        )

    for queue in topology.QUEUES:
        if queue.function:
            bindings.functions.append(_function_binding(queue, settings))
    registered = set(app.handler_map)
    for queue in topology.QUEUES:
        if queue.consumer not in registered and not queue.function:
            bindings.warnings.append(f"queue {queue.name}: handler {queue.consumer} missing")
    for schedule in topology.SCHEDULES:
        if schedule.consumer not in registered:
            bindings.warnings.append(
                f"schedule {schedule.name}: handler {schedule.consumer} missing"
            )
    return bindings


def _sqs_binding(app: Any, source: Any, settings: Settings) -> SqsBinding:
    name = source.queue or source.queue_arn.rsplit(":", 1)[-1]
    spec = next((q for q in topology.QUEUES if settings.resource_name(q.name) == name), None)
    return SqsBinding(
        handler_name=source.name,
        handler=app.handler_map[source.name],
        queue_name=name,
        batch_size=source.batch_size or (spec.batch_size if spec else 1),
        timeout_seconds=spec.consumer_timeout_seconds if spec else 60,
    )


def _function_binding(spec: topology.QueueSpec, settings: Settings) -> SqsBinding:
    """A queue consumed by a functions/ Lambda ("module:function"), not by a Chalice handler."""
    import importlib

    module, _, name = (spec.function or "").partition(":")
    return SqsBinding(
        handler_name=spec.consumer,
        handler=getattr(importlib.import_module(module), name),
        queue_name=settings.resource_name(spec.name),
        batch_size=spec.batch_size,
        timeout_seconds=spec.consumer_timeout_seconds,
    )


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT = {"minute": 1, "hour": 60, "day": 24 * 60}


def _schedule_binding(app: Any, source: Any) -> ScheduleBinding | None:
    spec = next((s for s in topology.SCHEDULES if s.consumer == source.name), None)
    if spec is not None:
        minutes = spec.rate_minutes
        name = spec.name
    else:
        expression = source.schedule_expression
        text = expression if isinstance(expression, str) else expression.to_string()
        match = _RATE.match(text.strip())
        if not match:
            return None
        minutes = int(match.group(1)) * _UNIT[match.group(2).rstrip("s")]
        name = source.name
    return ScheduleBinding(
        name, source.name, app.handler_map[source.name], timedelta(minutes=minutes)
    )


def _table_from_stream_arn(arn: str | None) -> str | None:
    match = re.search(r":table/([^/]+)/stream/", arn or "")
    return match.group(1) if match else None


def lambda_context(function_name: str, timeout_seconds: int) -> Any:
    from chalice.local import LambdaContext

    return LambdaContext(function_name, memory_size=512, max_runtime_ms=timeout_seconds * 1000)


def _failed_identifiers(response: Any) -> list[str] | None:
    """The identifiers a handler reported as failed; None when the response says nothing."""
    if not isinstance(response, dict) or "batchItemFailures" not in response:
        return None
    return [str(item.get("itemIdentifier", "")) for item in response["batchItemFailures"] or []]


@dataclass(frozen=True)
class PumpStatus:
    """What `GET /health` shows of one pump on the local stage."""

    name: str
    kind: str  # "stream" or "queue"
    lag: int  # records or messages not yet delivered
    idle_seconds: float  # since the pump last made progress (or was caught up)
    stalled: bool
    in_flight: int = 0


# --- SQS -------------------------------------------------------------------------------------


@dataclass
class SqsStep:
    received: int = 0
    deleted: int = 0
    failed: int = 0


class SqsPump:
    def __init__(
        self,
        binding: SqsBinding,
        sqs: Any,
        *,
        region: str = "us-east-1",
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.binding = binding
        self._sqs = sqs
        self._region = region
        self._url: str | None = None
        self._arn: str | None = None
        # Messages this pump left invisible after a failure: released when the runner stops.
        self._held: dict[str, str] = {}
        self._monotonic = monotonic
        self.progress_at = monotonic()  # last receive that emptied the queue or took some

    def status(self, now: float | None = None) -> PumpStatus:
        """Lag: messages waiting visible in the queue; stalled when some wait and the pump has
        taken none for STALL_SECONDS."""
        now = self._monotonic() if now is None else now
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._resolve(),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = int(attributes.get("ApproximateNumberOfMessages", 0))
        idle = max(0.0, now - self.progress_at)
        return PumpStatus(
            self.name,
            "queue",
            lag=waiting,
            in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            idle_seconds=round(idle, 1),
            stalled=waiting > 0 and idle > STALL_SECONDS,
        )

    @property
    def name(self) -> str:
        return f"sqs:{self.binding.queue_name}"

    def _resolve(self) -> str:
        if self._url is None:
            self._url = self._sqs.get_queue_url(QueueName=self.binding.queue_name)["QueueUrl"]
            self._arn = self._sqs.get_queue_attributes(
                QueueUrl=self._url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        return self._url

    def run_once(self) -> SqsStep:
        url = self._resolve()
        messages = self._receive(url)
        self.progress_at = self._monotonic()
        step = SqsStep(received=len(messages))
        if not messages:
            return step
        for message in messages:
            self._held.pop(message["MessageId"], None)
        event = {"Records": [self._record(m) for m in messages]}
        context = lambda_context(self.binding.handler_name, self.binding.timeout_seconds)
        try:
            failed = _failed_identifiers(self.binding.handler(event, context))
        except Exception:
            log.exception("%s: handler %s raised", self.name, self.binding.handler_name)
            failed = [m["MessageId"] for m in messages]
        failed_ids = set(failed or ())
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        for message in messages:
            if message["MessageId"] in failed_ids:
                self._held[message["MessageId"]] = message["ReceiptHandle"]
        self._delete(url, done)
        step.deleted, step.failed = len(done), len(messages) - len(done)
        return step

    def _receive(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.binding.batch_size:
            batch = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, self.binding.batch_size - len(messages)),
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return messages

    def _delete(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            result = self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            for failure in result.get("Failed", []):
                log.error("%s: could not delete a message: %s", self.name, failure)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "0",
            "SenderId": ACCOUNT_ID,
            "ApproximateFirstReceiveTimestamp": "0",
            **message.get("Attributes", {}),
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": {
                name: _lambda_message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": self._region,
        }

    def release_held(self) -> int:
        """Make the messages this pump failed visible again (so a final snapshot sees them)."""
        if not self._held or self._url is None:
            return 0
        released = 0
        for receipt in self._held.values():
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
                released += 1
            except Exception:  # received again meanwhile: its old receipt is stale
                log.debug("%s: stale receipt handle", self.name)
        self._held.clear()
        return released


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    import base64

    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType", "String"),
    }


# --- DynamoDB streams ------------------------------------------------------------------------


class StreamPositions:
    """The sequence number each stream pump has delivered through, per stream and shard, in a
    file of the data directory. Replaced whole on each change (a crash keeps the previous
    file: some records are delivered again, which the handlers allow)."""

    def __init__(self, path: Path):
        self._path = path
        self._lock = threading.Lock()
        try:
            self._saved: dict[str, dict[str, int]] = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            self._saved = {}

    def get(self, stream_arn: str, shard_id: str) -> int | None:
        with self._lock:
            return self._saved.get(stream_arn, {}).get(shard_id)

    def put(self, stream_arn: str, shard_id: str, sequence: int) -> None:
        with self._lock:
            self._saved.setdefault(stream_arn, {})[shard_id] = sequence
            partial = self._path.with_name(self._path.name + ".partial")
            partial.write_text(json.dumps(self._saved), encoding="utf-8")
            os.replace(partial, self._path)


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    quiet_at: int | None = None  # write generation at the last read that found nothing
    position: int | None = None  # sequence number of the last record read


@dataclass
class StreamStep:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0


class StreamPump:
    def __init__(
        self,
        binding: StreamBinding,
        dynamodb: Any,
        streams: Any,
        *,
        max_retries: int = 3,
        read_limit: int = 1000,
        generation: Callable[[], int | None] | None = None,
        head: Callable[[str], int | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        positions: StreamPositions | None = None,
    ):
        self.binding = binding
        self._positions = positions
        # moto keeps every shard iterator it hands out; when the embedded server reports no
        # write since the last empty read, there is nothing new and no read is made.
        self._generation = generation
        # The last sequence number of the table's stream, from the embedded server.
        self._head = head
        self._dynamodb = dynamodb
        self._streams = streams
        self.max_retries = max_retries
        self._read_limit = read_limit
        self._stream_arn: str | None = None
        self._shards: list[_Shard] | None = None
        self._attempts: dict[str, int] = {}
        self._monotonic = monotonic
        self.progress_at = monotonic()  # last delivery, or last time it was caught up

    @property
    def name(self) -> str:
        return f"stream:{self.binding.table_name}"

    def start(self) -> None:
        """Position after the last record delivered, if a position was kept for the shard;
        else at LATEST: records written from now on are delivered."""
        head = self._head(self.binding.table_name) if self._head else None
        self._shards = []
        for shard_id, first in self._open_stream():
            kept = (
                self._positions.get(self._stream_arn or "", shard_id) if self._positions else None
            )
            if kept is None:
                shard = _Shard(shard_id, self._iterator(shard_id, "LATEST"), position=head)
            elif first is not None and kept + 1 < first:
                log.error(
                    "%s: records %d to %d were trimmed before they were delivered",
                    self.name,
                    kept + 1,
                    first - 1,
                )
                shard = _Shard(shard_id, self._iterator(shard_id, "TRIM_HORIZON"), position=None)
            else:
                iterator = self._iterator(shard_id, "AFTER_SEQUENCE_NUMBER", after=kept)
                shard = _Shard(shard_id, iterator, position=kept)
            self._shards.append(shard)

    def _open_stream(self) -> list[tuple[str, int | None]]:
        """(shard id, its first sequence number still held) of each shard."""
        table = self._dynamodb.describe_table(TableName=self.binding.table_name)["Table"]
        self._stream_arn = table.get("LatestStreamArn")
        if not self._stream_arn:
            raise RuntimeError(f"table {self.binding.table_name} has no stream")
        shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"][
            "Shards"
        ]
        found = []
        for shard in shards:
            first = shard.get("SequenceNumberRange", {}).get("StartingSequenceNumber")
            found.append((shard["ShardId"], int(first) if first is not None else None))
        return found

    def _delivered(self, shard: _Shard, record: dict[str, Any]) -> None:
        if self._positions is not None and self._stream_arn:
            self._positions.put(self._stream_arn, shard.shard_id, int(_sequence(record)))

    def _iterator(self, shard_id: str, kind: str, after: int | None = None) -> str:
        arguments: dict[str, Any] = {
            "StreamArn": self._stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": kind,
        }
        if after is not None:
            arguments["SequenceNumber"] = str(after)
        return self._streams.get_shard_iterator(**arguments)["ShardIterator"]

    def run_once(self) -> StreamStep:
        if self._shards is None:
            self.start()
        step = StreamStep()
        for shard in self._shards or []:
            self._fill(shard)
            if shard.buffer:
                self._deliver(shard, step)
            step.pending += len(shard.buffer)
        return step

    def lag(self) -> int:
        """Records not yet delivered: read and waiting, plus those past the last read."""
        shards = self._shards or []
        waiting = sum(len(shard.buffer) for shard in shards)
        head = self._head(self.binding.table_name) if self._head else None
        positions = [shard.position for shard in shards if shard.position is not None]
        if head is not None and positions:
            waiting += max(0, head - min(positions))
        return waiting

    def status(self, now: float | None = None) -> PumpStatus:
        now = self._monotonic() if now is None else now
        lag = self.lag()
        idle = max(0.0, now - self.progress_at)
        return PumpStatus(
            f"{self.name} → {self.binding.handler_name}",
            "stream",
            lag=lag,
            idle_seconds=round(idle, 1),
            stalled=lag > 0 and idle > STALL_SECONDS,
        )

    def _fill(self, shard: _Shard) -> None:
        if shard.buffer or shard.iterator is None:
            return
        head = self._head(self.binding.table_name) if self._head else None
        if head is not None and shard.position is not None and head <= shard.position:
            self.progress_at = self._monotonic()  # caught up
            return
        generation = self._generation() if self._generation and head is None else None
        if generation is not None and generation == shard.quiet_at:
            return
        page = self._streams.get_records(ShardIterator=shard.iterator, Limit=self._read_limit)
        records = page.get("Records", [])
        shard.buffer.extend(records)
        shard.iterator = page.get("NextShardIterator")
        shard.quiet_at = generation if not records else None
        if records:
            shard.position = int(_sequence(records[-1]))

    def _deliver(self, shard: _Shard, step: StreamStep) -> None:
        batch = shard.buffer[: self.binding.batch_size]
        event = {"Records": [self._record(r) for r in batch]}
        context = lambda_context(self.binding.handler_name, 60)
        try:
            failed = _failed_identifiers(self.binding.handler(event, context))
        except Exception:
            log.exception("%s: handler %s raised", self.name, self.binding.handler_name)
            failed = [""]
        self.progress_at = self._monotonic()
        if not failed:
            del shard.buffer[: len(batch)]
            step.delivered += len(batch)
            for record in batch:
                self._attempts.pop(_sequence(record), None)
            self._delivered(shard, batch[-1])
            return
        sequences = [_sequence(r) for r in batch]
        known = [sequences.index(f) for f in failed if f in sequences]
        # An unknown identifier means the whole batch failed, as Lambda reads it.
        first = min(known) if len(known) == len(failed) else 0
        del shard.buffer[:first]
        step.delivered += first
        if first:
            self._delivered(shard, batch[first - 1])
        sequence = sequences[first]
        self._attempts[sequence] = self._attempts.get(sequence, 0) + 1
        step.failed += 1
        if self._attempts[sequence] > self.max_retries:
            log.error(
                "%s: record %s failed %d times: skipped",
                self.name,
                sequence,
                self._attempts.pop(sequence),
            )
            self._delivered(shard, shard.buffer[0])
            del shard.buffer[:1]
            step.skipped += 1

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        body = dict(record["dynamodb"])
        created = body.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            body["ApproximateCreationDateTime"] = int(created.timestamp())
        for image in ("Keys", "NewImage", "OldImage"):
            if image in body:
                body[image] = encode_item(body[image])
        event = {
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", "us-east-1"),
            "dynamodb": body,
            "eventSourceARN": self._stream_arn,
        }
        identity = record.get("userIdentity")
        if identity:  # a TTL deletion, as Lambda shows it
            event["userIdentity"] = {
                "type": identity.get("Type"),
                "principalId": identity.get("PrincipalId"),
            }
        return event


def _sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


# --- schedules -------------------------------------------------------------------------------


class SchedulePump:
    """Fires each schedule every `rate` of the injected clock, first one `rate` after start."""

    def __init__(self, bindings: list[ScheduleBinding], clock: Any, *, region: str = "us-east-1"):
        self.bindings = bindings
        self._clock = clock
        self._region = region
        start = clock.now()
        self._next_due = {b.name: start + b.rate for b in bindings}

    name = "schedules"

    def next_due(self, schedule: str) -> datetime:
        return self._next_due[schedule]

    def run_once(self) -> list[str]:
        now = self._clock.now()
        fired: list[str] = []
        for binding in self.bindings:
            due = self._next_due[binding.name]
            if now < due:
                continue
            missed = (now - due) // binding.rate
            self._next_due[binding.name] = due + binding.rate * (missed + 1)
            self._fire(binding, now)
            fired.append(binding.name)
        return fired

    def _fire(self, binding: ScheduleBinding, now: datetime) -> None:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [f"arn:aws:events:{self._region}:{ACCOUNT_ID}:rule/{binding.name}"],
            "detail": {},
        }
        try:
            binding.handler(event, lambda_context(binding.handler_name, 300))
        except Exception:
            log.exception("schedule %s: handler %s raised", binding.name, binding.handler_name)


# --- running in threads ----------------------------------------------------------------------


def _did_work(result: Any) -> bool:
    if isinstance(result, SqsStep):
        return result.received > 0
    if isinstance(result, StreamStep):
        return result.delivered > 0 or result.failed > 0 or result.pending > 0
    return bool(result)


class PumpThread(threading.Thread):
    """Loops one pump until stopped; waits only when a step found nothing: `idle_seconds`
    after work, doubling while the pump stays idle up to `max_idle_seconds`. Every idle poll
    is a request to the single-threaded embedded AWS: quiet queues polled four times a second
    each took a share of the capacity the API's requests wait for. `wake` ends an idle wait
    at once (the demo clock moved: the schedules may be due now, not a second later)."""

    def __init__(
        self,
        pump: Any,
        stop: threading.Event,
        *,
        idle_seconds: float = 0.25,
        max_idle_seconds: float = 1.0,
    ):
        super().__init__(name=f"pump-{pump.name}", daemon=True)
        self.pump = pump
        self._stop_event = stop
        self._woken = threading.Event()
        self._idle = idle_seconds
        self._max_idle = max(idle_seconds, max_idle_seconds)

    def wake(self) -> None:
        self._woken.set()

    def run(self) -> None:
        wait = self._idle
        while not self._stop_event.is_set():
            try:
                busy = _did_work(self.pump.run_once())
            except Exception:
                log.exception("pump %s failed a step", self.pump.name)
                busy = False
            if busy:
                wait = self._idle
            elif self._woken.wait(wait):
                self._woken.clear()
                wait = self._idle
            else:
                wait = min(wait * 2, self._max_idle)


def drain(pump: Any, *, max_steps: int = 100) -> int:
    """Run a pump until a step finds nothing to do (bounded); returns the steps taken."""
    for step in range(max_steps):
        if not _did_work(pump.run_once()):
            return step
    return max_steps


def build_pumps(
    bindings: Bindings,
    clients: Any,
    clock: Any,
    settings: Settings,
    generation: Callable[[], int | None] | None = None,
    head: Callable[[str], int | None] | None = None,
    positions: StreamPositions | None = None,
) -> tuple[list[SqsPump], list[StreamPump], SchedulePump]:
    region = settings.aws_region
    sqs = [
        SqsPump(b, clients.client("sqs"), region=region)
        for b in (*bindings.sqs, *bindings.functions)
    ]
    streams = [
        StreamPump(
            b,
            clients.client("dynamodb"),
            clients.client("dynamodbstreams"),
            generation=generation,
            head=head,
            positions=positions,
            # With kept positions, one batch is read at a time: the embedded AWS trims what
            # every reader has read, so a larger read would leave records read but not
            # delivered that a crash loses.
            **({"read_limit": b.batch_size} if positions is not None else {}),
        )
        for b in bindings.streams
    ]
    return sqs, streams, SchedulePump(bindings.schedules, clock, region=region)
