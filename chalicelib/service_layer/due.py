"""The one due sweep: every due item of every kind, from the cursor's bucket to now.

Capabilities file items (`file_due`, `cancel_due`) and declare, per kind, the handler that runs
one (topology.DUE_KINDS, loaded on first use). A handler answers an outcome (the item is done),
a datetime (run it again then) or None (busy elsewhere: leave it due). At-least-once: an item is
taken out of the index only after its handler succeeded, so a crash or a failure means it runs
again, and handlers are idempotent on their business key. A failing item never stops the others;
the cursor stays at the first bucket still holding failed or unread items.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.due import BUCKET, DueItem, bucket_of, buckets_between
from chalicelib.service_layer.ports import TimeSource
from chalicelib.service_layer.ports.due import DueStore

SWEEP_NAME = "due-sweep"
FIRST_RUN_LOOKBACK = timedelta(days=7)
ITEM_BUDGET = 500  # items one run handles at most; the rest wait for the next run

Handler = Callable[[Any, DueItem, datetime], "str | datetime | None"]


def file_due(store: DueStore, clock: TimeSource, item: DueItem) -> None:
    store.file(item, clock.now())


def cancel_due(store: DueStore, clock: TimeSource, kind: str, subject_id: str) -> None:
    store.cancel(kind, subject_id, clock.now())


def handlers() -> dict[str, Handler]:
    from chalicelib import topology

    found = {}
    for spec in topology.DUE_KINDS:
        module, _, name = spec.handler.partition(":")
        found[spec.kind] = getattr(importlib.import_module(module), name)
    return found


@dataclass
class SweepReport:
    started_at: datetime
    buckets: int = 0
    seen: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    cursor: str | None = None

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {
            "buckets": self.buckets,
            "seen": self.seen,
            "outcomes": self.outcomes,
            "failures": self.failures,
            "cursor": self.cursor,
        }


def sweep(
    store: DueStore,
    clock: TimeSource,
    context: Any,
    kinds: dict[str, Handler] | None = None,
    *,
    name: str = SWEEP_NAME,
    budget: int = ITEM_BUDGET,
) -> SweepReport:
    """Run every item due by now. `context` is handed to the handlers (the container)."""
    from chalicelib.observability import logger

    kinds = handlers() if kinds is None else kinds
    now = clock.now()
    report = SweepReport(started_at=now)
    current = bucket_of(now)
    first = store.get_cursor(name) or bucket_of(now - FIRST_RUN_LOOKBACK)
    retry_from: str | None = None
    for bucket in buckets_between(min(first, current), current):
        report.buckets += 1
        for item in store.due_in_bucket(bucket, now):
            if report.seen >= budget:
                retry_from = retry_from or bucket
                break
            report.seen += 1
            try:
                outcome = _run(kinds, context, item, now)
            except Exception as error:
                logger.exception(
                    "due item failed", extra={"kind": item.kind, "id": item.subject_id}
                )
                report.failures.append(
                    {
                        "kind": item.kind,
                        "id": item.subject_id,
                        "error": getattr(error, "code", type(error).__name__),
                    }
                )
                retry_from = retry_from or bucket
                continue
            if outcome is None:
                report.count("busy")
                retry_from = retry_from or bucket
            elif isinstance(outcome, datetime):
                store.file(DueItem(item.kind, item.subject_id, outcome, item.data), now)
                report.count("again")
            else:
                store.finish(item, outcome, now)
                report.count(outcome)
        if report.seen >= budget:
            break
    report.cursor = min(retry_from or current, current)
    store.set_cursor(name, report.cursor, now)
    return report


def _run(kinds: dict[str, Handler], context: Any, item: DueItem, now: datetime) -> Any:
    handler = kinds.get(item.kind)
    if handler is None:
        raise LookupError(f"no handler for due items of kind {item.kind}")
    return handler(context, item, now)


__all__ = ["BUCKET", "DueItem", "SweepReport", "cancel_due", "file_due", "handlers", "sweep"]
