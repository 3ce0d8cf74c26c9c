"""The one due index and its sweep: items run once when due, by kind; failures and crashes
leave them due (at-least-once); the cursor resumes where a sweep stopped; a re-filing made while
an item runs is kept; the sweep reads only its buckets (Query, never Scan)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.due import DueItem

# These tests start from a sweep that never ran, and file items before their clock's start.
pytestmark = pytest.mark.first_sweep


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


class Recorder:
    def __init__(self, answer="done") -> None:
        self.runs: list[tuple[str, datetime]] = []
        self.answer = answer

    def __call__(self, context, item: DueItem, now: datetime):
        self.runs.append((item.subject_id, item.due_at))
        return self.answer(item, now) if callable(self.answer) else self.answer


@pytest.fixture
def due(container, clock):
    from chalicelib.service_layer import due as service

    class Due:
        store = container.due_store

        def file(self, kind: str, subject: str, at: datetime, **data) -> None:
            service.file_due(self.store, clock, DueItem(kind, subject, at, data))

        def sweep(self, kinds: dict, **kw):
            return service.sweep(self.store, clock, container, kinds, **kw)

    return Due()


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """AWS operations made while the test runs."""
    from botocore.client import BaseClient

    counted: Counter = Counter()
    original = BaseClient._make_api_call

    def counting(client, operation, params):
        counted[operation] += 1
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return counted


def test_an_item_runs_once_when_due_and_not_before(due, clock):
    clock.set(t(2026, 11, 26, 10, 0))
    remind = Recorder("reminded")
    due.file("test.remind", "a", t(2026, 11, 26, 12, 30))
    assert due.sweep({"test.remind": remind}).seen == 0
    clock.set(t(2026, 11, 26, 12, 29, 59))
    assert due.sweep({"test.remind": remind}).seen == 0
    clock.set(t(2026, 11, 26, 12, 30))
    assert due.sweep({"test.remind": remind}).outcomes == {"reminded": 1}
    assert due.sweep({"test.remind": remind}).seen == 0
    clock.set(t(2026, 11, 27, 9, 0))
    assert due.sweep({"test.remind": remind}).seen == 0
    assert remind.runs == [("a", t(2026, 11, 26, 12, 30))]
    assert due.store.get("test.remind", "a")["status"] == "reminded"


def test_each_kind_goes_to_its_own_handler(due, clock):
    one, two = Recorder("one"), Recorder("two")
    due.file("test.one", "x", clock.now())
    due.file("test.two", "x", clock.now())
    report = due.sweep({"test.one": one, "test.two": two})
    assert report.outcomes == {"one": 1, "two": 1}
    assert (one.runs, two.runs) == ([("x", clock.now())], [("x", clock.now())])


def test_a_failing_item_stays_due_and_never_stops_the_others(due, clock):
    clock.set(t(2026, 11, 26, 10, 0))
    due.file("test.flaky", "bad", t(2026, 11, 26, 10, 0))
    due.file("test.flaky", "good", t(2026, 11, 26, 10, 0))

    def fail_bad(item, now):
        if item.subject_id == "bad":
            raise RuntimeError("downstream unavailable")
        return "done"

    report = due.sweep({"test.flaky": Recorder(fail_bad)})
    assert report.outcomes == {"done": 1} and [f["id"] for f in report.failures] == ["bad"]
    assert due.store.get("test.flaky", "bad")["status"] == "pending"
    assert due.store.get("test.flaky", "good")["status"] == "done"


def test_the_cursor_stays_at_a_failed_bucket_until_it_succeeds(due, clock):
    clock.set(t(2026, 11, 26, 10, 0))
    due.file("test.flaky", "bad", t(2026, 11, 26, 10, 0))
    failing = Recorder(lambda item, now: (_ for _ in ()).throw(RuntimeError("down")))
    assert due.sweep({"test.flaky": failing}).cursor == "2026-11-26T10"
    clock.set(t(2026, 11, 26, 13, 0))
    assert due.sweep({"test.flaky": failing}).cursor == "2026-11-26T10"
    healed = Recorder()
    report = due.sweep({"test.flaky": healed})
    assert report.outcomes == {"done": 1} and report.cursor == "2026-11-26T13"
    assert healed.runs == [("bad", t(2026, 11, 26, 10, 0))]


def test_a_sweep_that_died_half_way_is_resumed_from_the_cursor(due, clock):
    clock.set(t(2026, 11, 26, 8, 0))
    assert due.sweep({}).cursor == "2026-11-26T08"
    for n in range(3):
        due.file("test.crash", f"i{n}", t(2026, 11, 26, 9, n))

    class Died(BaseException):
        pass

    def die_on_second(item, now):
        if item.subject_id == "i1":
            raise Died()
        return "done"

    clock.set(t(2026, 11, 26, 11, 0))
    with pytest.raises(Died):
        due.sweep({"test.crash": Recorder(die_on_second)})
    assert due.store.get_cursor("due-sweep") == "2026-11-26T08"  # the dead run moved nothing
    again = Recorder()
    report = due.sweep({"test.crash": again})
    assert sorted(s for s, _ in again.runs) == ["i1", "i2"]  # i0 finished before the crash
    assert report.cursor == "2026-11-26T11"


def test_a_re_filing_made_while_the_item_runs_is_kept(due, clock):
    later = clock.now() + timedelta(hours=2)
    due.file("test.move", "b", clock.now())

    def moved_meanwhile(item, now):
        if item.due_at < later:
            due.file("test.move", "b", later)  # e.g. the booking was rescheduled meanwhile
        return "done"

    handler = Recorder(moved_meanwhile)
    due.sweep({"test.move": handler})
    assert due.store.get("test.move", "b")["status"] == "pending"
    clock.set(later)
    due.sweep({"test.move": handler})
    assert [at for _, at in handler.runs] == [later - timedelta(hours=2), later]


def test_a_handler_may_ask_to_run_again_later(due, clock):
    start = clock.now()
    due.file("test.again", "c", start)
    handler = Recorder(
        lambda item, now: now + timedelta(minutes=90) if len(handler.runs) == 1 else "ok"
    )
    assert due.sweep({"test.again": handler}).outcomes == {"again": 1}
    clock.set(start + timedelta(minutes=89))
    assert due.sweep({"test.again": handler}).seen == 0
    clock.set(start + timedelta(minutes=90))
    assert due.sweep({"test.again": handler}).outcomes == {"ok": 1}


def test_a_cancelled_item_never_runs(due, clock):
    from chalicelib.service_layer.due import cancel_due

    due.file("test.cancel", "d", clock.now() + timedelta(minutes=5))
    cancel_due(due.store, clock, "test.cancel", "d")
    cancel_due(due.store, clock, "test.cancel", "never-filed")
    clock.set(clock.now() + timedelta(hours=1))
    handler = Recorder()
    assert due.sweep({"test.cancel": handler}).seen == 0 and handler.runs == []


def test_the_sweep_reads_only_its_buckets_and_catches_up_after_downtime(due, clock, calls):
    start = t(2026, 11, 26, 10, 0)
    clock.set(start)
    due.sweep({})
    for hour in range(6):
        due.file("test.bulk", f"h{hour}", start + timedelta(hours=hour, minutes=10))
    clock.set(start + timedelta(days=1))  # a day without sweeps
    calls.clear()
    handler = Recorder()
    report = due.sweep({"test.bulk": handler})
    assert report.outcomes == {"done": 6} and report.buckets == 25
    assert "Scan" not in calls
    assert calls["Query"] == 25  # one per hour bucket from the cursor to now
    calls.clear()
    assert due.sweep({"test.bulk": handler}).seen == 0
    assert dict(calls) == {"GetItem": 1, "Query": 1, "PutItem": 1}  # an idle minute: 3 calls


def test_filing_and_finishing_cost_one_write_each(due, clock, calls):
    calls.clear()
    due.file("test.cost", "e", clock.now())
    assert dict(calls) == {"PutItem": 1}
    calls.clear()
    due.sweep({"test.cost": Recorder()})
    assert calls["UpdateItem"] == 1 and "Scan" not in calls
