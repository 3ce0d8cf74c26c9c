"""What the embedded AWS holds, counted: `GET /_local/stats`.

Memory that grows under a steady load is either data (items, messages: expected, in proportion
to what was written) or something kept that should not be (stream records nobody will read,
shard iterators, deleted receipt handles, expired items). These counts let a benchmark tell the
two apart: the RSS growth per stored item against the items and buffers added.
"""

from __future__ import annotations

import sys
from typing import Any

from local import moto_memory, moto_ttl

PATH = "/_local/stats"


_traced: list[Any] = []  # the previous tracemalloc snapshot


def allocation_growth(top: int = 15) -> list[dict[str, Any]]:
    """With the server started under PYTHONTRACEMALLOC (a diagnosis, it is slow): the lines
    whose live allocations grew most since the previous call."""
    import tracemalloc

    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    previous, _traced[:] = (_traced[0] if _traced else None), [snapshot]
    if previous is None:
        return []
    return [
        {
            "where": str(stat.traceback),
            "kb": round(stat.size_diff / 1024, 1),
            "count": stat.count_diff,
        }
        for stat in snapshot.compare_to(previous, "lineno")[:top]
    ]


def stats(journal: Any = None) -> dict[str, Any]:
    tables: dict[str, dict[str, int]] = {}
    iterators = 0
    if "moto.dynamodb.models" in sys.modules:
        from moto.dynamodb.models import dynamodb_backends

        for account in dynamodb_backends.values():
            for backend in account.values():
                for name, table in backend.tables.items():
                    shard = table.stream_shard
                    tables[name] = {
                        "items": sum(
                            len(p) if table.range_key_attr else 1 for p in table.items.values()
                        ),
                        "stream_records": len(shard.items) if shard is not None else 0,
                    }
    if "moto.dynamodbstreams.models" in sys.modules:
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        for account in dynamodbstreams_backends.values():
            for streams in account.values():
                iterators += len(streams.shard_iterators)
    queues: dict[str, dict[str, int]] = {}
    if "moto.sqs.models" in sys.modules:
        from moto.sqs.models import sqs_backends

        for account in sqs_backends.values():
            for backend in account.values():
                for name, queue in backend.queues.items():
                    queues[name] = {
                        "messages": len(queue._messages),
                        "deleted_handles": len(queue.deleted_messages),
                    }
    return {
        "items": sum(t["items"] for t in tables.values()),
        "stream_records": sum(t["stream_records"] for t in tables.values()),
        "shard_iterators": iterators,
        "sqs_messages": sum(q["messages"] for q in queues.values()),
        "sqs_deleted_handles": sum(q["deleted_handles"] for q in queues.values()),
        "journal_entries_since_checkpoint": journal.entries if journal is not None else None,
        "ttl_expired": moto_ttl.sweeper.expired,
        "moto_tracked_instances": moto_memory.tracked_instances(),
        "allocation_growth": allocation_growth(),
        "tables": tables,
        "queues": queues,
    }
