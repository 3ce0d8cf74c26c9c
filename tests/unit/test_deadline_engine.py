"""The deadline use cases on in-memory stores (tests/fakes): starting clocks idempotently.
The due sweep climbing a clock's ladder runs on its due items in DynamoDB, and so do the
conditional claims under concurrent sweeps: tests/integration/test_deadlines.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from chalicelib.adapters.clock import CHINA_TZ, ManualClock
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


@pytest.fixture
def engine() -> Engine:
    return Engine()


def test_starting_with_the_same_key_answers_the_same_clock(engine):
    first = engine.start("T-11", key="T-11:reply")
    second = engine.start("T-11", key="T-11:reply")
    assert first.clock_id == second.clock_id
    assert engine.audit.actions().count("clock.started") == 1
