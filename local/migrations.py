"""One-off upgrades of a data directory written by an earlier version, run by the runner at start
before anything else writes. Each runs once per data directory (remembered in `migrations.json`).

They read whole tables: that is acceptable here only, once, on a local data directory; no
request or scheduled path scans (DESIGN.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIGRATIONS_FILE = "migrations.json"


def backfill_notification_work(container: Any) -> int:
    """Notifications written before the `work_index` existed have no `work_key`: the due sweep
    never sees those still pending or retrying, nor the dead-letter list those failed. Give
    each the key it would carry now (due at once; dead since it died)."""
    from chalicelib.adapters.dynamodb.notifications import (
        NotificationModel,
        _text,
        dead_key,
        due_key,
    )
    from chalicelib.domain.notifications import NotificationStatus

    client = container.aws.client("dynamodb")
    now = _text(container.clock.now())
    backfilled = 0
    pages = client.get_paginator("scan").paginate(
        TableName=NotificationModel.Meta.table_name,
        FilterExpression="attribute_not_exists(work_key) AND #s IN (:p, :r, :f)",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":p": {"S": NotificationStatus.PENDING.value},
            ":r": {"S": NotificationStatus.RETRYING.value},
            ":f": {"S": NotificationStatus.FAILED.value},
        },
        ProjectionExpression="notification_id, #s, recipient_kind, recipient_id, dead_at",
    )
    for page in pages:
        for row in page.get("Items", []):
            notification_id = row["notification_id"]["S"]
            if row["status"]["S"] == NotificationStatus.FAILED.value:
                key = dead_key(row["recipient_kind"]["S"], row["recipient_id"]["S"])
                at = row.get("dead_at", {}).get("S") or now
            else:
                key, at = due_key(notification_id), now
            NotificationModel(notification_id).update(
                actions=[NotificationModel.work_key.set(key), NotificationModel.work_at.set(at)],
                condition=NotificationModel.work_key.does_not_exist(),
            )
            backfilled += 1
    return backfilled


def backfill_clock_due_items(container: Any) -> int:
    """Clocks opened before the due-items engine have no due item: file it (an index query per
    deadline year and shard, no Scan; `service_layer/due_backfill.py`)."""
    from chalicelib.service_layer.due_backfill import BackfillDeps
    from chalicelib.service_layer.due_backfill import backfill_clock_due_items as backfill

    return backfill(BackfillDeps.from_container(container)).filed


MIGRATIONS: dict[str, Callable[[Any], int]] = {
    "notification_work_key": backfill_notification_work,
    "clock_due_items": backfill_clock_due_items,
}


def migrate(data_dir: Path, container: Any, *, fresh: bool = False) -> dict[str, int]:
    """Run the migrations this data directory has not had; what each one changed. A `fresh`
    directory (nothing stored yet) needs none: they are only recorded."""
    path = data_dir / MIGRATIONS_FILE
    done: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    ran = {}
    for name, migration in MIGRATIONS.items():
        if name in done:
            continue
        ran[name] = 0 if fresh else migration(container)
        done[name] = ran[name]
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(done), "utf-8")
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.replace(path)
    return ran
