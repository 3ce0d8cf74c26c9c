"""The embedded AWS of `make run`: moto's server, single-threaded, durable, with streams that
keep flowing.

- **One request at a time.** moto's `TransactWriteItems` and conditional writes are only atomic
  when no other request runs at the same time, so werkzeug serves one request at a time.
- **Transactions without a table copy.** moto backs up every table a transaction touches with
  `copy.deepcopy` and, when the transaction is cancelled, puts the copy in the table's place:
  the table object changes, and with it its `StreamShard`, while every shard iterator handed
  out before keeps pointing at the old shard, so stream readers see empty pages forever. The
  copy also costs time in proportion to the table. `install_patches` makes that copy a no-op
  for tables and rolls a cancelled transaction back item by item instead (the items it touched
  and the stream records it added), which is exact because nothing else runs meanwhile.
- **Data-plane answers without the shape walk.** moto serialises every answer by walking the
  operation's output shape attribute by attribute; for DynamoDB's item operations that walk was
  more than half of the server's time under load, for an answer that is already JSON (items are
  attribute-value maps). Those answers are dumped as they are (`_FAST_DYNAMODB`); anything else,
  errors included, takes moto's serialiser.
- **Bounded memory.** moto keeps every shard iterator it hands out and every stream record
  forever. A used iterator is dropped (our pumps never reuse one, the next one is in the
  page), and stream records every live iterator has read past are trimmed.
- **Durability that costs per change.** Every acknowledged mutating request is appended to a
  journal and fdatasync'ed before its answer leaves (`Journal`). At start the newest checkpoint
  (moto's backends, pickled) is loaded and the journal after it replayed. Checkpoints are taken
  in the background by a forked child, which pickles the backends from its copy-on-write memory
  while the parent keeps serving; the journal it covers is then dropped. On SIGTERM a last
  checkpoint is taken in-process, so the next start replays nothing.

Requests are replayed as they were received, except SQS sends and deletes: message ids and
receipt handles are random, so the journal keeps the sent message itself and, for a delete,
the ids of the messages deleted. Receives, visibility changes and redrives are not journaled:
after a crash, messages in flight are visible again (at-least-once).

`GET /_local/generation` answers the count of DynamoDB writes, `GET /_local/streams` the last
sequence number of every table's stream, `POST /_local/checkpoint` takes a checkpoint now and
`POST /_local/housekeeping` trims now.

    python -m local.moto_server --port 4566 --data-dir .data/aws
"""

from __future__ import annotations

import argparse
import copy
import copyreg
import gc
import io
import json
import logging
import os
import pickle
import re
import signal
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from local import moto_memory, moto_stats, moto_ttl

GENERATION_PATH = "/_local/generation"
STREAMS_PATH = "/_local/streams"
CHECKPOINT_PATH = "/_local/checkpoint"
HOUSEKEEPING_PATH = "/_local/housekeeping"

# Services whose state is kept across restarts.
STATEFUL_SERVICES = ("dynamodb", "sqs", "secretsmanager", "ssm")
# Actions that change nothing (or only what a crash may lose: receives, visibility).
_READ_PREFIXES = (
    "Get",
    "Query",
    "Scan",
    "Describe",
    "List",
    "BatchGet",
    "TransactGet",
    "Receive",
    "ChangeMessageVisibility",
)
_HOUSEKEEPING_EVERY_SECONDS = 2.0
_SQS_DELETED_HANDLES_KEPT = 10_000

log = logging.getLogger("local.moto_server")


def is_dynamodb_write(target: str) -> bool:
    service, _, action = target.partition(".")
    if not service.startswith("DynamoDB_"):
        return False
    return not action.startswith(_READ_PREFIXES)


# --- moto, patched ---------------------------------------------------------------------------


class _CopyAllButTables:
    """Stands in for the `copy` module inside moto's DynamoDB backend: the per-transaction
    backup of whole tables becomes the table itself (so the "restore" is a no-op), every other
    copy is a real one."""

    def __init__(self, table_type: type):
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


class _TransactionUndo:
    """What a transaction may change, recorded before it runs: the items it names and the
    length of each stream it may add to."""

    def __init__(self, backend: Any, transact_items: list[dict[str, Any]]):
        from moto.dynamodb.models.dynamo_type import DynamoType

        self._items: list[tuple[Any, Any, Any, Any]] = []
        self._streams: list[tuple[Any, int]] = []
        seen: set[int] = set()
        for entry in transact_items:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue
            ((kind, operation),) = entry.items()
            if not isinstance(operation, dict):
                continue
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            key = operation.get("Item") if kind == "Put" else operation.get("Key")
            if not isinstance(key, dict) or table.hash_key_attr not in key:
                continue
            range_attr = table.range_key_attr
            if range_attr is not None and range_attr not in key:
                continue
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[range_attr]) if range_attr is not None else None
            before = copy.deepcopy(table.get_item(hash_key, range_key))
            self._items.append((table, hash_key, range_key, before))
            if id(table) not in seen and table.stream_shard is not None:
                seen.add(id(table))
                self._streams.append((table.stream_shard, len(table.stream_shard.items)))

    def rollback(self) -> None:
        for table, hash_key, range_key, before in reversed(self._items):
            if before is None:
                if range_key is not None:
                    table.items.get(hash_key, {}).pop(range_key, None)
                else:
                    table.items.pop(hash_key, None)
            elif range_key is not None:
                table.items[hash_key][range_key] = before
            else:
                table.items[hash_key] = before
        for shard, length in self._streams:
            del shard.items[length:]


def install_patches() -> None:
    """Patch moto's DynamoDB transactions and streams as described in the module docstring.
    Safe only in a server that runs one request at a time; idempotent."""
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.table import Table
    from moto.dynamodbstreams import models as streams_models

    moto_memory.stop_instance_tracking()
    backend_type = dynamodb_models.DynamoDBBackend
    if getattr(backend_type, "_local_patched", False):
        return
    dynamodb_models.copy = _CopyAllButTables(Table)  # type: ignore[assignment]
    transact = backend_type.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        undo = _TransactionUndo(self, transact_items)
        try:
            transact(self, transact_items)
        except BaseException:
            undo.rollback()
            raise

    backend_type.transact_write_items = transact_write_items  # type: ignore[method-assign]
    backend_type._local_patched = True  # type: ignore[attr-defined]
    _answer_items_as_json()
    from local import moto_dispatch, moto_indexes

    moto_indexes.install()
    moto_dispatch.install()

    streams_type = streams_models.DynamoDBStreamsBackend
    get_records = streams_type.get_records

    def read(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        iterator = self.shard_iterators.get(iterator_arn)
        if iterator is not None:
            # Records trimmed under an old iterator: continue at the oldest one kept.
            shard = iterator.stream_shard
            iterator.sequence_number = max(iterator.sequence_number, shard.starting_sequence_number)
        page = get_records(self, iterator_arn, limit)
        self.shard_iterators.pop(iterator_arn, None)  # used: the next one is in the page
        return page

    streams_type.get_records = read  # type: ignore[method-assign]


# Item operations whose answers are plain JSON already (attribute-value maps, counts, keys).
_FAST_DYNAMODB = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def _answer_items_as_json() -> None:
    from moto.dynamodb.responses import DynamoHandler

    serialized = DynamoHandler.serialized

    def answer(self: Any, action_result: Any) -> Any:
        result = action_result.result
        if isinstance(result, dict) and self._get_action() in _FAST_DYNAMODB:
            try:
                body = json.dumps(result)
            except (TypeError, ValueError):
                return serialized(self, action_result)
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            headers.update(self.response_headers)
            return 200, headers, body
        return serialized(self, action_result)

    DynamoHandler.serialized = answer  # type: ignore[method-assign]


def _dynamodb_backends() -> Iterator[Any]:
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        yield from account.values()


def _streams_backends() -> Iterator[Any]:
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for account in dynamodbstreams_backends.values():
        yield from account.values()


def stream_heads() -> dict[str, dict[str, Any]]:
    """Per table with a stream: its stream ARN and the sequence number of its last record
    (one before the first when it has none)."""
    heads: dict[str, dict[str, Any]] = {}
    for backend in _dynamodb_backends():
        for name, table in backend.tables.items():
            shard = table.stream_shard
            if shard is None:
                continue
            heads[name] = {
                "stream_arn": f"{table.table_arn}/stream/{table.latest_stream_label}",
                "last_sequence": shard.starting_sequence_number + len(shard.items) - 1,
            }
    return heads


def housekeeping() -> None:
    """Trim stream records every live iterator has read, and forget SQS's record of deleted
    receipt handles (kept only to accept a second delete)."""
    readers: dict[int, int] = {}
    for backend in _streams_backends():
        # Every live iterator counts, however old: a pump whose table was quiet for an hour
        # still holds one, and reads as soon as the stream moves.
        for iterator in backend.shard_iterators.values():
            shard_id = id(iterator.stream_shard)
            position = iterator.sequence_number
            readers[shard_id] = min(readers.get(shard_id, position), position)
    for backend in _dynamodb_backends():
        for table in backend.tables.values():
            shard = table.stream_shard
            if shard is None:
                continue
            end = shard.starting_sequence_number + len(shard.items)
            # A stream nobody reads keeps nothing: a new reader starts at LATEST.
            keep_from = readers.get(id(shard), end)
            drop = min(keep_from, end) - shard.starting_sequence_number
            if drop > 0:
                del shard.items[:drop]
                shard.starting_sequence_number += drop
    try:
        from moto.sqs.models import sqs_backends
    except ImportError:  # pragma: no cover
        return
    for account in sqs_backends.values():
        for backend in account.values():
            for queue in backend.queues.values():
                if len(queue.deleted_messages) > _SQS_DELETED_HANDLES_KEPT:
                    queue.deleted_messages.clear()


# --- journal and checkpoints -----------------------------------------------------------------

_HEADER = struct.Struct(">II")  # length, crc32
_JOURNAL = re.compile(r"^journal-(\d{8})\.log$")
_CHECKPOINT = re.compile(r"^checkpoint-(\d{8})\.pickle$")


def _dispatch_table() -> dict[Any, Any]:
    """Locks in moto's objects are pickled as new, unlocked ones."""
    table = copyreg.dispatch_table.copy()
    table[type(threading.Lock())] = lambda lock: (threading.Lock, ())
    table[type(threading.RLock())] = lambda lock: (threading.RLock, ())
    table[threading.Condition] = lambda condition: (threading.Condition, ())
    return table


def dump_state() -> dict[str, Any]:
    """Every stateful service this server has loaded (importing moto's SSM alone costs 3 s)."""
    from moto.backends import get_backend

    return {
        service: {account: dict(regions) for account, regions in get_backend(service).items()}
        for service in STATEFUL_SERVICES
        if f"moto.{service}.models" in sys.modules
    }


def load_state(state: dict[str, Any]) -> None:
    from moto.backends import get_backend

    for service, accounts in state.items():
        backends = get_backend(service)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                dict.__setitem__(backends[account], region, backend)


class Journal:
    """A write-ahead journal of mutating requests plus checkpoints, in one directory.

    `journal-N.log` files hold framed pickles (length, crc32, payload); `checkpoint-N.pickle`
    holds the state after every journal below N. The newest checkpoint wins, so a checkpoint
    child that outlives a killed server cannot put an older state in front of a newer one."""

    def __init__(self, directory: Path, *, checkpoint_every: int = 2000):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.checkpoint_every = checkpoint_every
        self.sequence = 0
        self.entries = 0  # since the last checkpoint started
        self._file: int | None = None
        self._child: tuple[int, int] | None = None  # pid, sequence it covers

    # files

    def _numbered(self, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.iterdir():
            match = pattern.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _journal_path(self, sequence: int) -> Path:
        return self.directory / f"journal-{sequence:08d}.log"

    def _open(self, sequence: int) -> None:
        if self._file is not None:
            os.close(self._file)
        self.sequence = sequence
        self._file = os.open(
            self._journal_path(sequence), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        _fsync_directory(self.directory)

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None

    # start

    def recover(self, replay: Callable[[Any], None]) -> dict[str, int]:
        """Load the newest checkpoint, replay the journal after it, open a new journal file."""
        checkpoints = self._numbered(_CHECKPOINT)
        covered = 0
        replayed = 0
        last = covered - 1
        # Millions of small objects come back at once: the cyclic collector would walk them
        # again and again while they are created. Afterwards they are frozen out of its view.
        gc.disable()
        try:
            if checkpoints:
                covered, path = checkpoints[-1]
                last = covered - 1
                with path.open("rb") as source:
                    load_state(pickle.load(source)["state"])
            for sequence, path in self._numbered(_JOURNAL):
                last = max(last, sequence)
                if sequence < covered:
                    continue
                for entry in read_entries(path):
                    replay(entry)
                    replayed += 1
        finally:
            gc.enable()
            gc.freeze()
        self._open(max(last + 1, covered))
        self.entries = replayed
        self._drop_covered(covered)
        return {"checkpoint": covered, "replayed": replayed}

    # writes

    def append(self, entry: Any) -> None:
        payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        assert self._file is not None
        os.write(self._file, record)
        os.fdatasync(self._file)
        self.entries += 1

    # checkpoints

    def due(self) -> bool:
        return self.entries >= self.checkpoint_every and self._child is None

    def checkpoint_in_background(self) -> bool:
        """Fork; the child writes the state as of now, the parent keeps serving on a new
        journal file. Returns False when a checkpoint is already being written."""
        self.reap()
        if self._child is not None:
            return False
        covered = self.sequence + 1
        self._open(covered)
        self.entries = 0
        pid = os.fork()
        if pid == 0:  # the child: moto's state, frozen at this request boundary
            status = 1
            try:
                self._write_checkpoint(covered)
                status = 0
            finally:
                os._exit(status)
        self._child = (pid, covered)
        return True

    def checkpoint_now(self) -> None:
        """In-process (the server is stopping): wait for a background one, then write."""
        self.wait()
        covered = self.sequence + 1
        self._open(covered)
        self._write_checkpoint(covered)
        self.entries = 0
        self._drop_covered(covered)

    def reap(self) -> None:
        if self._child is None:
            return
        pid, covered = self._child
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            self._finished(covered, status)

    def wait(self) -> None:
        if self._child is not None:
            pid, covered = self._child
            _, status = os.waitpid(pid, 0)
            self._finished(covered, status)

    def _finished(self, covered: int, status: int) -> None:
        self._child = None
        if os.waitstatus_to_exitcode(status) == 0:
            self._drop_covered(covered)
        else:
            log.error("checkpoint %d failed; the journal is kept", covered)

    def _write_checkpoint(self, covered: int) -> None:
        final = self.directory / f"checkpoint-{covered:08d}.pickle"
        temporary = final.with_suffix(".tmp")
        with temporary.open("wb") as out:
            pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.dispatch_table = _dispatch_table()
            pickler.dump({"version": 1, "covers": covered, "state": dump_state()})
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
        _fsync_directory(self.directory)

    def _drop_covered(self, covered: int) -> None:
        for sequence, path in self._numbered(_JOURNAL):
            if sequence < covered:
                path.unlink(missing_ok=True)
        for sequence, path in self._numbered(_CHECKPOINT):
            if sequence < covered:
                path.unlink(missing_ok=True)


def read_entries(path: Path) -> Iterator[Any]:
    """The entries of one journal file, up to the first torn or corrupt record (a write the
    server never acknowledged)."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, checksum = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != checksum:
            log.warning("%s: torn record at byte %d ignored", path.name, offset)
            return
        yield pickle.loads(payload)
        offset = start + length


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- what a request does to the journal -----------------------------------------------------


def _action(environ: dict[str, Any], body: bytes) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rpartition(".")[2]
    for source in (environ.get("QUERY_STRING", ""), body.decode("latin-1")):
        match = re.search(r"(?:^|&)Action=([A-Za-z]+)", source)
        if match:
            return match.group(1)
    return None


def journal_kind(environ: dict[str, Any], body: bytes) -> str | None:
    """None (nothing to keep), "sqs_send", "sqs_delete" or "request" (replayed as is)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDBStreams_"):
        return None
    action = _action(environ, body)
    if action is None:
        method = environ.get("REQUEST_METHOD", "GET")
        return "request" if method in ("POST", "PUT", "DELETE", "PATCH") else None
    if action.startswith(_READ_PREFIXES):
        return None
    if target.startswith("AmazonSQS."):
        if action in ("SendMessage", "SendMessageBatch"):
            return "sqs_send"
        if action in ("DeleteMessage", "DeleteMessageBatch"):
            return "sqs_delete"
    return "request"


def _sqs_queue(environ: dict[str, Any], request: dict[str, Any]) -> tuple[Any, str, str, str]:
    from moto.sqs.models import sqs_backends

    path = request.get("QueueUrl", "").split("://", 1)[-1].split("/")
    account, name = path[-2], path[-1]
    match = re.search(r"Credential=[^/]+/\d+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    region = match.group(1) if match else "us-east-1"
    return sqs_backends[account][region].queues.get(name), account, region, name


def _deleted_ids(environ: dict[str, Any], request: dict[str, Any]) -> list[str]:
    queue, *_ = _sqs_queue(environ, request)
    if queue is None:
        return []
    handles = [request["ReceiptHandle"]] if "ReceiptHandle" in request else []
    handles += [entry.get("ReceiptHandle") for entry in request.get("Entries", [])]
    return [m.id for m in queue._messages if any(m.had_receipt_handle(h) for h in handles)]


def _saved_environ(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if isinstance(v, str) and not k.startswith("wsgi.")}


# --- the WSGI application --------------------------------------------------------------------


class LocalAws:
    """WSGI middleware around moto: counts DynamoDB writes, serves `/_local/*`, journals every
    acknowledged mutating request before answering, and does the housekeeping. The server is
    single-threaded, so nothing here needs a lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]], journal: Journal | None = None):
        self.app = app
        self.journal = journal
        self.generation = 0
        self._housekept_at = time.monotonic()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_local/"):
            return self._local(path, environ, start_response)
        if is_dynamodb_write(environ.get("HTTP_X_AMZ_TARGET", "")):
            self.generation += 1
        self._housekeeping()
        if self.journal is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        kind = journal_kind(environ, body)
        if kind is None:
            return self.app(environ, start_response)

        request = json.loads(body) if kind.startswith("sqs_") and body else {}
        deleted = _deleted_ids(environ, request) if kind == "sqs_delete" else []
        status, headers, answer = self._call(environ)
        if status < 300:
            entry = self._entry(kind, environ, body, request, answer, deleted)
            if entry is not None:
                self.journal.append(entry)
            if self.journal.due():
                self.journal.checkpoint_in_background()
        start_response(headers[0], headers[1])
        return [answer]

    def _call(self, environ: dict[str, Any]) -> tuple[int, tuple[str, list[Any]], bytes]:
        captured: list[Any] = []
        chunks: list[bytes] = []

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            captured[:] = [status, headers]
            return chunks.append

        result = self.app(environ, capture)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status_line, headers = captured
        return int(status_line.split()[0]), (status_line, headers), b"".join(chunks)

    def _entry(
        self,
        kind: str,
        environ: dict[str, Any],
        body: bytes,
        request: dict[str, Any],
        answer: bytes,
        deleted: list[str],
    ) -> tuple[Any, ...] | None:
        if kind == "request":
            return ("request", _saved_environ(environ), body)
        queue, account, region, name = _sqs_queue(environ, request)
        if kind == "sqs_delete":
            return ("sqs_delete", account, region, name, deleted) if deleted else None
        response = json.loads(answer or b"{}")
        ids = {response["MessageId"]} if "MessageId" in response else set()
        ids |= {s["MessageId"] for s in response.get("Successful", [])}
        sent = [m for m in (queue._messages if queue is not None else []) if m.id in ids]
        return ("sqs_send", account, region, name, sent) if sent else None

    def replay(self, entry: tuple[Any, ...]) -> None:
        kind = entry[0]
        if kind == moto_ttl.KIND:
            return moto_ttl.replay(entry)
        if kind == "request":
            _, saved, body = entry
            environ = dict(saved)
            environ.update(
                {
                    "wsgi.input": io.BytesIO(body),
                    "wsgi.errors": sys.stderr,
                    "wsgi.url_scheme": "http",
                    "wsgi.version": (1, 0),
                    "wsgi.multithread": False,
                    "wsgi.multiprocess": False,
                    "wsgi.run_once": False,
                }
            )
            self._call(environ)
            return
        from moto.sqs.models import sqs_backends

        _, account, region, name, payload = entry
        queue = sqs_backends[account][region].queues.get(name)
        if queue is None:
            return
        if kind == "sqs_send":
            queue._messages.extend(payload)
        elif kind == "sqs_delete":
            gone = set(payload)
            queue._messages = [m for m in queue._messages if m.id not in gone]

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._housekept_at >= _HOUSEKEEPING_EVERY_SECONDS:
            self._housekept_at = now
            housekeeping()
            moto_ttl.sweeper(self.journal)
        if self.journal is not None:
            self.journal.reap()

    def _local(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]):
        if path == GENERATION_PATH:
            data: Any = {"generation": self.generation}
        elif path == STREAMS_PATH:
            data = {"streams": stream_heads()}
        elif path == CHECKPOINT_PATH and environ.get("REQUEST_METHOD") == "POST":
            if self.journal is not None:
                self.journal.checkpoint_now()
            data = {"checkpoint": self.journal.sequence if self.journal else None}
        elif path == HOUSEKEEPING_PATH and environ.get("REQUEST_METHOD") == "POST":
            housekeeping()
            data = {"done": True}
        elif path == moto_stats.PATH:
            data = moto_stats.stats(self.journal)
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        body = json.dumps(data).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


# Older name, kept for callers that only want the write count.
WriteCounter = LocalAws


def build_app(journal: Journal | None = None) -> LocalAws:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    install_patches()
    return LocalAws(DomainDispatcherApplication(create_backend_app), journal)


def make_moto_server(host: str, port: int, app: Any = None) -> Any:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    class RequestHandler(MotoRequestHandler):
        # Headers and body leave in two writes: with Nagle the body waited for the client's
        # delayed ACK of the headers, 40 ms on every AWS call.
        disable_nagle_algorithm = True

    return make_server(
        host, port, app or build_app(), threaded=False, request_handler=RequestHandler
    )


def _exit_when_stdin_closes() -> None:
    """The runner holds our stdin open; if it dies without stopping us, don't linger. Every
    acknowledged write is in the journal already."""

    def watch() -> None:
        # os.read, not sys.stdin: a buffered reader's lock held by a daemon thread
        # aborts the interpreter at exit.
        while os.read(descriptor, 4096):
            pass
        os._exit(0)

    descriptor = sys.stdin.fileno()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server, single-threaded, journaled")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--data-dir", help="journal and checkpoints (none: memory only)")
    parser.add_argument("--checkpoint-every", type=int, default=2000, help="journal entries")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="exit when stdin closes (the runner that started this process is gone)",
    )
    args = parser.parse_args(argv)

    os.environ["MOTO_PORT"] = str(args.port)  # moto calls itself on this port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    journal = None
    if args.data_dir:
        journal = Journal(Path(args.data_dir), checkpoint_every=args.checkpoint_every)
    app = build_app(journal)
    if journal is not None:
        started = time.monotonic()
        recovered = journal.recover(app.replay)
        log.info(
            "state restored: checkpoint %d, %d journal entries replayed in %.1f s",
            recovered["checkpoint"],
            recovered["replayed"],
            time.monotonic() - started,
        )
        if recovered["replayed"]:
            # After a crash: what was just replayed would be replayed again by every start until
            # the next checkpoint. A child writes one now, while this process serves.
            journal.checkpoint_in_background()
    try:
        server = make_moto_server(args.host, args.port, app)
    except OSError as exc:
        print(f"moto server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc

    def stop(signum: int, frame: Any) -> None:
        # Let the request being served finish (a transaction half applied must not reach the
        # checkpoint); serve_forever sees the flag at its next poll.
        server._BaseServer__shutdown_request = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:
        _exit_when_stdin_closes()
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    if journal is not None:
        # A second signal while saving must not cut the checkpoint short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        started = time.monotonic()
        journal.checkpoint_now()
        journal.close()
        log.info("checkpoint written in %.1f s", time.monotonic() - started)
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing to clean up beyond the socket; skipping interpreter teardown halves the stop time.
    os._exit(0)


if __name__ == "__main__":
    main()
