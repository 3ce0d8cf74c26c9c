"""Backfill of the due index for clocks opened before the due-items engine existed: each open
clock that needs attention gets its due item, found through the deadline-year index (never a
Scan); a second run files nothing; the due sweep then attends the backfilled clock."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.clocks import ClockState

pytestmark = pytest.mark.integration
EVENTS = Path(__file__).resolve().parents[2] / "events"


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


@pytest.fixture
def calls(monkeypatch) -> Counter:
    from botocore.client import BaseClient

    counted: Counter = Counter()
    original = BaseClient._make_api_call

    def counting(client, operation, params):
        counted[operation] += 1
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return counted


def deadline_deps(container):
    from chalicelib.service_layer.deadlines import DeadlineDeps

    deps = DeadlineDeps.from_container(container)
    deps.metric = lambda *args: None
    return deps


def start(container, subject_id: str):
    from chalicelib.service_layer import deadlines

    return deadlines.start_clock(
        deadline_deps(container),
        subject_type="ticket",
        subject_id=subject_id,
        kind="reply",
        limit=5,
        department_id="dept-scjgj",
    )


def forget_due_item(clock_id: str) -> None:
    """What a clock written before the due index looks like: no due item at all."""
    from chalicelib.adapters.dynamodb.due import DueItemModel

    DueItemModel(f"clock#{clock_id}").delete()


def backfill(container, **kw):
    from chalicelib.service_layer.due_backfill import BackfillDeps, backfill_clock_due_items

    return backfill_clock_due_items(BackfillDeps.from_container(container), **kw)


def test_open_clocks_without_a_due_item_get_one_once(container, clock, calls):
    from chalicelib.service_layer import deadlines

    clock.set(t(2026, 11, 26, 10, 0))
    old = start(container, "T-OLD")
    paused = start(container, "T-PAUSED")
    closed = start(container, "T-CLOSED")
    recent = start(container, "T-RECENT")  # filed its own due item: kept as it is
    deadlines.pause_clock(deadline_deps(container), paused.clock_id, reason="等待补正")
    deadlines.stop_clock(deadline_deps(container), closed.clock_id)
    for c in (old, paused, closed):
        forget_due_item(c.clock_id)
    recent_before = container.due_store.get("clock", recent.clock_id)

    calls.clear()
    report = backfill(container)

    assert calls["Scan"] == 0 and calls["Query"] >= len(report.years) * 4
    assert (report.filed, report.already_filed, report.nothing_due) == (1, 1, 1)
    filed = container.due_store.get("clock", old.clock_id)
    assert filed["status"] == "pending"
    assert datetime.fromisoformat(filed["due_at"]) == old.next_attention_at
    assert container.due_store.get("clock", paused.clock_id) is None
    assert container.due_store.get("clock", closed.clock_id) is None
    assert container.due_store.get("clock", recent.clock_id) == recent_before

    again = backfill(container)
    assert (again.filed, again.already_filed) == (0, 2)


def test_the_due_sweep_attends_a_backfilled_clock(api, container, clock):
    from chalicelib.adapters.dynamodb.clocks import ClockModel

    sweep_event = json.loads((EVENTS / "schedule" / "due_sweep.json").read_text())
    clock.set(t(2026, 11, 26, 10, 0))
    api.client.lambda_.invoke("sweep_due_items", sweep_event)  # the sweep's cursor starts now
    old = start(container, "T-OLD")
    forget_due_item(old.clock_id)
    assert backfill(container).filed == 1

    clock.set(old.due_at + timedelta(minutes=1))
    api.client.lambda_.invoke("sweep_due_items", sweep_event)
    stored = ClockModel.get(old.clock_id, consistent_read=True)
    assert stored.state == ClockState.BREACHED.value


def test_the_command_reports_what_it_filed(container, clock, monkeypatch):
    from local import backfill_due

    clock.set(t(2026, 11, 26, 10, 0))
    forget_due_item(start(container, "T-OLD").clock_id)
    monkeypatch.setattr(backfill_due, "_configure", lambda endpoint_url: None)
    out = StringIO()
    assert backfill_due.main(["--year", "2026", "--year", "2027", "--json"], out) == 0
    summary = json.loads(out.getvalue())
    assert summary["filed"] == 1 and summary["years"] == [2026, 2027]


def test_an_older_data_directory_is_backfilled_once_at_start(container, clock, tmp_path):
    from local.migrations import migrate

    clock.set(t(2026, 11, 26, 10, 0))
    old = start(container, "T-OLD")
    forget_due_item(old.clock_id)
    assert migrate(tmp_path, container)["clock_due_items"] == 1
    assert container.due_store.get("clock", old.clock_id)["status"] == "pending"
    assert migrate(tmp_path, container) == {}  # once per data directory
