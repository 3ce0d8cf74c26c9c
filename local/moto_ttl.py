"""Time to live for the embedded AWS: moto stores a table's TTL setting but never deletes an
expired item, so idempotency records, submission keys and audit facts pile up for ever.

`expire` does what DynamoDB's TTL process does: an item whose TTL attribute is a Number (epoch
seconds) at or before now is deleted, and the table's stream gets a REMOVE record whose
`userIdentity` names the TTL service (`{"Type": "Service", "PrincipalId":
"dynamodb.amazonaws.com"}` in the Streams API; the pump hands it to the Lambda handler as
`{"type": ..., "principalId": ...}`), so a consumer can tell an expiry from a user's delete. As in
DynamoDB, a value more than five years in the past is not an expiry time and is left alone.

Deletions are journaled like any acknowledged write (one entry per sweep, replayed by `replay`),
so an item expired before a crash does not come back after it. The sweep walks each TTL table
at most every `EVERY_SECONDS` and deletes at most `BUDGET` items per run: it is housekeeping,
not a request path, and DynamoDB itself gives no promise on how soon an expired item goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

KIND = "ttl_expire"
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
EVERY_SECONDS = 30.0
BUDGET = 5_000
_FIVE_YEARS = 5 * 365 * 24 * 3600

# A TTL key as journaled: (hash key JSON, range key JSON or None).
Key = tuple[dict[str, Any], dict[str, Any] | None]


def _ttl_tables() -> Iterator[tuple[str, str, Any, str]]:
    from moto.dynamodb.models import dynamodb_backends

    for account, regions in dynamodb_backends.items():
        for region, backend in regions.items():
            for table in backend.tables.values():
                ttl = table.ttl or {}
                if ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName"):
                    yield account, region, table, ttl["AttributeName"]


def _expired(table: Any, attribute: str, now: float, budget: int) -> list[Any]:
    found = []
    for partition in list(table.items.values()):
        rows = partition.values() if table.range_key_attr else (partition,)
        for item in rows:
            value = item.attrs.get(attribute)
            if value is None or value.type != "N":
                continue
            try:
                expires = float(value.value)
            except (TypeError, ValueError):
                continue
            if now - _FIVE_YEARS <= expires <= now:
                found.append(item)
                if len(found) >= budget:
                    return found
    return found


def _delete(table: Any, hash_key: Any, range_key: Any) -> bool:
    """Delete one item as the TTL service: its REMOVE record carries the service identity."""
    shard = table.stream_shard
    before = len(shard.items) if shard is not None else 0
    if table.delete_item(hash_key, range_key) is None:
        return False
    if shard is not None and len(shard.items) > before:
        shard.items[-1].record["userIdentity"] = dict(TTL_IDENTITY)
    return True


def expire(now: float | None = None, budget: int = BUDGET) -> list[tuple[Any, ...]]:
    """Delete what has expired; the journal entries that replay it (one per table touched)."""
    now = time.time() if now is None else now
    entries: list[tuple[Any, ...]] = []
    for account, region, table, attribute in _ttl_tables():
        if budget <= 0:
            break
        keys: list[Key] = []
        for item in _expired(table, attribute, now, budget):
            if _delete(table, item.hash_key, item.range_key):
                range_json = item.range_key.to_json() if item.range_key is not None else None
                keys.append((item.hash_key.to_json(), range_json))
        if keys:
            budget -= len(keys)
            entries.append((KIND, account, region, table.name, keys))
    return entries


def replay(entry: tuple[Any, ...]) -> None:
    """Apply a journaled sweep again (start after a crash)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    _, account, region, name, keys = entry
    table = dynamodb_backends[account][region].tables.get(name)
    if table is None:
        return
    for hash_json, range_json in keys:
        range_key = DynamoType(range_json) if range_json is not None else None
        _delete(table, DynamoType(hash_json), range_key)


class TtlSweeper:
    """Runs `expire` at most every `every` seconds from the server's housekeeping and journals
    what it deleted before the next request is answered."""

    def __init__(
        self,
        every: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.every = every
        self._clock = clock
        self._monotonic = monotonic
        self._last: float | None = None
        self.expired = 0

    def __call__(self, journal: Any) -> int:
        now = self._monotonic()
        if self._last is not None and now - self._last < self.every:
            return 0
        self._last = now
        entries = expire(self._clock())
        for entry in entries:
            if journal is not None:
                journal.append(entry)
        deleted = sum(len(entry[4]) for entry in entries)
        self.expired += deleted
        return deleted


sweeper = TtlSweeper()
