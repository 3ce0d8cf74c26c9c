"""The deadline use cases on in-memory stores (tests/fakes): starting clocks idempotently, the
sweep's ladder steps taken once, failures isolated and retried, citizen reminders. What depends
on DynamoDB itself (the due index on the table, conditional claims under concurrent sweeps,
the never-scan rule) stays in tests/integration/test_deadlines.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.clock import CHINA_TZ, ManualClock
from chalicelib.domain.clocks import ClockState
from chalicelib.domain.directory import Department
from chalicelib.service_layer import deadlines
from tests.fakes.common import InMemoryDirectory, RecordingAuditLog, RecordingNotifier
from tests.fakes.deadlines import (
    InMemoryCalendarStore,
    InMemoryClockStore,
    InMemoryEscalationStore,
    RecordingQueue,
)


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


class Engine:
    def __init__(self) -> None:
        self.clock = ManualClock(t(2026, 11, 26, 10, 0))
        self.notifier = RecordingNotifier()
        self.audit = RecordingAuditLog(self.clock.now)
        self.metrics: list[tuple[Any, ...]] = []
        self.deps = deadlines.DeadlineDeps(
            clocks=InMemoryClockStore(),
            escalations=InMemoryEscalationStore(),
            calendars=InMemoryCalendarStore(),
            notifier=self.notifier,
            audit_log=self.audit,
            clock=self.clock,
            jobs=RecordingQueue(),
            directory=InMemoryDirectory(
                departments={"dept-scjgj": Department("dept-scjgj", "青浦区市场监督管理局")}
            ),
            metric=lambda *args: self.metrics.append(args),
        )

    def start(self, subject_id: str = "T-1", **kw: Any) -> Any:
        kw.setdefault("subject_type", "ticket")
        kw.setdefault("kind", "reply")
        kw.setdefault("limit", 5)
        kw.setdefault("department_id", "dept-scjgj")
        return deadlines.start_clock(self.deps, subject_id=subject_id, **kw)

    def sweep(self) -> dict[str, Any]:
        return deadlines.sweep(self.deps).summary()


@pytest.fixture
def engine() -> Engine:
    return Engine()


def test_starting_with_the_same_key_answers_the_same_clock(engine):
    first = engine.start("T-11", key="T-11:reply")
    second = engine.start("T-11", key="T-11:reply")
    assert first.clock_id == second.clock_id
    assert engine.audit.actions().count("clock.started") == 1


def test_sweeping_twice_sends_nothing_twice(engine):
    started = engine.start("T-21")
    engine.clock.set(t(2026, 12, 11, 9, 0))
    first = engine.sweep()
    second = engine.sweep()
    assert first["steps_taken"] == 4 and second["steps_taken"] == 0
    keys = engine.notifier.keys()
    assert len(keys) == len(set(keys)) == 4
    assert all(k.startswith(f"clock:{started.clock_id}:") for k in keys)
    assert engine.deps.clocks.get(started.clock_id).state is ClockState.BREACHED


def test_a_failing_clock_is_reported_and_the_others_go_on(engine):
    bad = engine.start("T-24")
    good = engine.start("T-25")
    engine.notifier.fail_keys = {f"clock:{bad.clock_id}:warning"}
    engine.clock.set(t(2026, 12, 3, 9, 0))
    report = engine.sweep()
    assert report["failures"] == [{"clock_id": bad.clock_id, "error": "RuntimeError"}]
    assert engine.notifier.keys() == [f"clock:{good.clock_id}:warning"]

    # The next sweep retries it (the cursor stayed behind) once the store answers again.
    engine.notifier.fail_keys = set()
    engine.clock.advance(timedelta(minutes=5))
    retried = engine.sweep()
    assert retried["failures"] == []
    assert engine.notifier.keys()[-1] == f"clock:{bad.clock_id}:warning"


def test_citizen_clock_reminds_the_owner(engine):
    started = engine.start(
        "A-1",
        subject_type="application",
        kind="supplement",
        limit=5,
        department_id=None,
        owner_id="u-citizen-zhang",
    )
    engine.clock.set(t(2026, 12, 20, 9, 0))
    engine.sweep()
    assert [r.recipient_id for r in engine.notifier.calls] == ["u-citizen-zhang"] * 2
    assert engine.notifier.keys()[-1] == f"clock:{started.clock_id}:urge"
