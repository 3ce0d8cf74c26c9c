"""The deadline engine on moto: calendar routes, clocks, their due items in the one due index,
the due sweep climbing their ladder, the calendar-recompute job. Handlers are driven with the
sample events under events/."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.calendar import package_schedule
from chalicelib.domain.clocks import ClockState, Outcome

EVENTS = Path(__file__).resolve().parents[2] / "events"
SWEEP_EVENT = json.loads((EVENTS / "schedule" / "due_sweep.json").read_text())
RECOMPUTE_EVENT = json.loads((EVENTS / "sqs" / "calendar_recompute.json").read_text())


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


class RecordingNotifier:
    """Counts every notify call: a duplicate call is a failure even if the outbox would
    swallow it."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.on_notify = None  # a hook the concurrency tests use to interleave sweeps
        self.fail_keys: set[str] = set()

    def notify(self, request: Any) -> tuple[str, bool]:
        if request.business_key in self.fail_keys:
            raise RuntimeError("notification store unavailable")
        self.calls.append(request)
        if self.on_notify is not None:
            hook, self.on_notify = self.on_notify, None
            hook(request)
        return request.business_key, True

    def keys(self) -> list[str]:
        return [r.business_key for r in self.calls]


class RecordingAuditLog:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    def append(self, entry: Any) -> Any:
        self.entries.append(entry)
        return entry

    def actions(self) -> list[str]:
        return [e.action for e in self.entries]


class Engine:
    """The container with recording fakes, and helpers to drive the deadline handlers."""

    def __init__(self, api, container, clock):
        self.api = api
        self.container = container
        self.clock = clock
        self.notifier = RecordingNotifier()
        self.audit = RecordingAuditLog()
        self.metrics: list[tuple] = []
        container.notifier = self.notifier
        container.audit_log = self.audit

    @property
    def deps(self):
        from chalicelib.service_layer.deadlines import DeadlineDeps

        deps = DeadlineDeps.from_container(self.container)
        deps.metric = lambda *args: self.metrics.append(args)
        return deps

    def start(self, subject_id: str = "T-1", **kw) -> Any:
        from chalicelib.service_layer import deadlines

        kw.setdefault("subject_type", "ticket")
        kw.setdefault("kind", "reply")
        kw.setdefault("limit", 5)
        kw.setdefault("department_id", "dept-scjgj")
        return deadlines.start_clock(self.deps, subject_id=subject_id, **kw)

    def sweep(self) -> dict[str, Any]:
        return self.api.client.lambda_.invoke("sweep_due_items", SWEEP_EVENT).payload

    def recompute(self, body: str) -> dict[str, Any]:
        event = copy.deepcopy(RECOMPUTE_EVENT)
        event["Records"][0]["body"] = body
        return self.api.client.lambda_.invoke("recompute_deadlines", event).payload

    def item(self, clock_id: str) -> Any:
        from chalicelib.adapters.dynamodb.clocks import ClockModel

        return ClockModel.get(clock_id, consistent_read=True)

    def due(self, clock_id: str) -> Any:
        """The clock's item in the one due index (its bucket is None when out of the index)."""
        from chalicelib.adapters.dynamodb.due import DueItemModel

        return DueItemModel.get(f"clock#{clock_id}", consistent_read=True)


@pytest.fixture
def engine(api, container, clock) -> Engine:
    running = Engine(api, container, clock)
    # The due sweep runs every minute: its cursor starts now, as it would in service.
    running.sweep()
    return running


# ---- public calendar routes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "start,days,due",
    [("2026-09-28", 5, "2026-10-10"), ("2026-02-14", 1, "2026-02-24")],
)
def test_due_date_on_the_2026_official_schedule(api, start, days, due):
    result = api.get(f"/calendar/due-date?start={start}&working_days={days}")
    assert result.status == 200, result
    assert result.json == {"due_date": due, "provisional": False}


def test_due_date_is_provisional_for_2027_until_its_schedule_is_loaded(api, engine):
    before = api.get("/calendar/due-date?start=2027-03-01&working_days=5")
    assert before.json["provisional"] is True
    loaded = api.put(
        "/admin/calendar/2027",
        user="u-admin",
        body={"holidays": ["2027-01-01"], "makeup_workdays": [], "reference": "测试"},
    )
    assert loaded.status == 200, loaded
    assert loaded.json["source"] == "official" and loaded.json["version"] == 1
    after = api.get("/calendar/due-date?start=2027-03-01&working_days=5")
    assert after.json == {"due_date": "2027-03-08", "provisional": False}
    assert "calendar.year_loaded" in engine.audit.actions()


def test_working_days_between_two_dates(api):
    result = api.get("/calendar/working-days?from=2026-09-28&to=2026-10-10")
    assert result.status == 200, result
    assert result.json == {
        "from": "2026-09-28",
        "to": "2026-10-10",
        "working_days": 5,
        "provisional": False,
    }


def test_calendar_year_view_lists_make_up_days(api):
    result = api.get("/calendar/years/2026")
    assert result.status == 200, result
    assert "2026-10-10" in result.json["makeup_workdays"]
    assert result.json["provisional"] is False
    assert api.get("/calendar/years/2031").json["provisional"] is True


@pytest.mark.parametrize(
    "query,code",
    [
        ("start=2026-09-28&working_days=-1", "validation_failed"),
        ("start=2026-13-01&working_days=1", "validation_failed"),
        ("working_days=1", "validation_failed"),
        ("start=9999-12-30&working_days=5", "validation_failed"),  # days end with 2199
    ],
)
def test_due_date_rejects_bad_input(api, query, code):
    result = api.get(f"/calendar/due-date?{query}")
    assert result.status == 400, result
    assert result.json["code"] == code


def test_a_year_without_data_does_not_crash(api):
    result = api.get("/calendar/due-date?start=2031-06-02&working_days=10")
    assert result.status == 200, result
    assert result.json["provisional"] is True


# ---- admin: official schedules ----------------------------------------------------------------


def test_loading_a_calendar_needs_an_admin(api):
    body = {"holidays": ["2027-01-01"]}
    assert api.put("/admin/calendar/2027", body=body).status == 401
    assert api.put("/admin/calendar/2027", user="u-supervisor-zhao", body=body).status == 403


def test_loading_a_calendar_validates_the_dates(api, engine):
    result = api.put(
        "/admin/calendar/2027",
        user="u-admin",
        body={
            "holidays": ["2027-01-01", "2026-12-31", "2027-02-06"],
            "makeup_workdays": ["2027-02-06", "2027-02-08"],
        },
    )
    assert result.status == 400, result
    assert result.json["code"] == "invalid_calendar"
    assert {f["type"] for f in result.json["fields"]} == {"year", "overlap", "not_weekend"}
    assert engine.audit.entries == []


# ---- clocks and the due index ---------------------------------------------------------------


def test_clocks_of_a_subject_for_staff_only_their_departments(api, engine):
    engine.start("T-9", department_id="dept-scjgj")
    engine.start("T-9", kind="contact", limit=1, department_id="dept-rsj")
    dispatcher = api.get("/clocks?subject_type=ticket&subject_id=T-9", user="u-dispatcher-chen")
    assert dispatcher.status == 200, dispatcher
    assert {c["kind"] for c in dispatcher.json["items"]} == {"reply", "contact"}
    staff = api.get("/clocks?subject_type=ticket&subject_id=T-9", user="u-dept-scjgj")
    assert [c["department_id"] for c in staff.json["items"]] == ["dept-scjgj"]
    citizen = api.get("/clocks?subject_type=ticket&subject_id=T-9", user="u-citizen-zhang")
    assert citizen.status == 403


def test_clock_detail_is_not_found_for_another_department(api, engine):
    clock = engine.start("T-10", department_id="dept-rsj")
    assert api.get(f"/clocks/{clock.clock_id}", user="u-dept-rsj").status == 200
    other = api.get(f"/clocks/{clock.clock_id}", user="u-dept-scjgj")
    assert other.status == 404


def test_a_running_clock_is_in_the_due_index_and_a_paused_one_is_not(engine, clock):
    from chalicelib.service_layer import deadlines

    started = engine.start("T-12")
    due = engine.due(started.clock_id)
    assert due.due_bucket and due.due_at == engine.item(started.clock_id).next_attention_at

    paused = deadlines.pause_clock(engine.deps, started.clock_id, reason="等待群众补正材料")
    assert paused.state is ClockState.PAUSED
    assert engine.due(started.clock_id).due_bucket is None
    assert engine.item(started.clock_id).next_attention_at is None

    clock.advance(timedelta(days=30))  # far past the original deadline
    engine.sweep()
    assert engine.notifier.calls == []

    resumed = deadlines.resume_clock(engine.deps, started.clock_id)
    assert resumed.due_at > started.due_at + timedelta(days=30)
    assert engine.due(started.clock_id).due_bucket is not None


def test_a_stopped_clock_leaves_the_index_and_counts_as_met(api, engine):
    from chalicelib.service_layer import deadlines

    started = engine.start("T-13")
    stopped = deadlines.stop_clock(engine.deps, started.clock_id, outcome=Outcome.MET)
    assert stopped.state is ClockState.MET
    assert engine.due(started.clock_id).due_bucket is None
    assert engine.item(started.clock_id).open_due_year is None
    figures = api.get("/deadline-reports/figures?month=2026-11", user="u-supervisor-zhao")
    assert figures.status == 200, figures
    row = figures.json["items"][0]
    assert row["counts"] == {"started": 1, "met": 1}
    assert row["on_time_rate"] == 1.0
    assert ("deadline_met", "reply", "dept-scjgj") in engine.metrics
    assert ("deadline_on_time", "reply", "dept-scjgj", 1.0) in engine.metrics


# ---- the sweep and the ladder ---------------------------------------------------------------


def test_sweep_climbs_the_ladder_as_time_moves(api, engine, clock):
    started = engine.start("T-20")  # Thu 2026-11-26 + 5 working days: due Thu 12-03
    assert started.due_date == date(2026, 12, 3)
    engine.sweep()
    assert engine.notifier.calls == []

    clock.set(t(2026, 12, 3, 9, 0))  # past the 80% mark
    engine.sweep()
    assert engine.notifier.keys() == [f"clock:{started.clock_id}:warning"]
    warning = engine.notifier.calls[0]
    assert warning.recipient_id == "dept-scjgj"
    assert "即将到期" in warning.title

    clock.set(t(2026, 12, 5, 9, 0))  # overdue by 1 working day (Fri 12-04)
    engine.sweep()
    assert engine.notifier.keys()[1:] == [
        f"clock:{started.clock_id}:urge",
        f"clock:{started.clock_id}:supervise",
    ]
    supervise = engine.notifier.calls[2]
    assert supervise.recipient_id == "dept-zwb"
    assert "督办" in supervise.title and "青浦区市场监督管理局" in supervise.body

    clock.set(t(2026, 12, 11, 9, 0))  # overdue by 5 working days
    engine.sweep()
    assert engine.notifier.keys()[-1] == f"clock:{started.clock_id}:report"

    detail = api.get(f"/clocks/{started.clock_id}", user="u-supervisor-zhao").json
    assert detail["state"] == "breached" and detail["open"] is True
    assert [s["step"] for s in detail["escalations"]] == ["report", "supervise", "urge", "warning"]
    assert all(s["status"] == "done" for s in detail["escalations"])
    assert detail["next_attention_at"] is None
    assert engine.due(started.clock_id).due_bucket is None  # nothing left to do: out of index

    actions = engine.audit.actions()
    for step in ("warning", "urge", "supervise", "report"):
        assert actions.count(f"clock.escalated.{step}") == 1
    assert actions.count("clock.breached") == 1

    records = api.get(
        "/deadline-reports/escalations?step=supervise&month=2026-12", user="u-supervisor-zhao"
    )
    assert [r["clock_id"] for r in records.json["items"]] == [started.clock_id]
    figures = api.get("/deadline-reports/figures?month=2026-12", user="u-supervisor-zhao").json
    counts = figures["items"][0]["counts"]
    assert counts["breached"] == 1 and counts["escalation_report"] == 1


def test_sweeping_twice_sends_nothing_twice(engine, clock):
    started = engine.start("T-21")
    clock.set(t(2026, 12, 11, 9, 0))
    engine.sweep()
    assert len(engine.notifier.keys()) == 4
    engine.sweep()
    keys = engine.notifier.keys()
    assert len(keys) == len(set(keys)) == 4
    assert all(k.startswith(f"clock:{started.clock_id}:") for k in keys)


def test_two_sweeps_at_once_send_nothing_twice(engine, clock):
    """Sweep B runs entirely while sweep A is between claiming a step and finishing it, and A
    goes on with the clock as it read it before B wrote."""
    started = engine.start("T-22")
    clock.set(t(2026, 12, 5, 9, 0))
    inner: list[dict] = []
    engine.notifier.on_notify = lambda _request: inner.append(engine.sweep())
    outer = engine.sweep()

    keys = engine.notifier.keys()
    assert len(keys) == len(set(keys)) == 3
    assert sorted(k.rsplit(":", 1)[1] for k in keys) == ["supervise", "urge", "warning"]
    assert inner[0]["failures"] == [] and outer["failures"] == []
    final = engine.deps.clocks.get(started.clock_id)
    assert final.steps_done == {"warning", "urge", "supervise"}
    assert engine.audit.actions().count("clock.breached") == 1


def test_a_sweep_that_read_a_stale_clock_takes_no_step_twice(engine, clock):
    from chalicelib.service_layer import deadlines

    started = engine.start("T-23")
    clock.set(t(2026, 12, 5, 9, 0))
    stale = engine.deps.clocks.get(started.clock_id)
    engine.sweep()
    assert len(engine.notifier.calls) == 3
    # A second sweep working from the copy it read before the first one wrote.
    report = deadlines.SweepReport(started_at=clock.now())
    deadlines._attend(engine.deps, stale, clock.now(), engine.deps.calendar(), {}, report)
    assert len(engine.notifier.calls) == 3
    assert report.steps_taken == []


def test_a_failing_clock_is_reported_and_the_others_go_on(engine, clock):
    bad = engine.start("T-24")
    good = engine.start("T-25")
    engine.notifier.fail_keys = {f"clock:{bad.clock_id}:warning"}
    clock.set(t(2026, 12, 3, 9, 0))
    report = engine.sweep()
    assert report["failures"] == [{"kind": "clock", "id": bad.clock_id, "error": "RuntimeError"}]
    assert engine.notifier.keys() == [f"clock:{good.clock_id}:warning"]

    # The next sweep retries it (the cursor stayed behind) once the store answers again.
    engine.notifier.fail_keys = set()
    clock.advance(timedelta(minutes=5))
    retried = engine.sweep()
    assert retried["failures"] == []
    assert engine.notifier.keys()[-1] == f"clock:{bad.clock_id}:warning"


def test_citizen_clock_reminds_the_owner(engine, clock):
    started = engine.start(
        "A-1",
        subject_type="application",
        kind="supplement",
        limit=5,
        department_id=None,
        owner_id="u-citizen-zhang",
    )
    clock.set(t(2026, 12, 20, 9, 0))
    engine.sweep()
    assert [r.recipient_id for r in engine.notifier.calls] == ["u-citizen-zhang"] * 2
    assert engine.notifier.keys()[-1] == f"clock:{started.clock_id}:urge"


def test_a_configured_ladder_applies_to_new_clocks(api, engine, clock):
    ladder = {
        "steps": [
            {
                "name": "early_warning",
                "trigger": "share_used",
                "value": 0.5,
                "title": "提醒：{subject}{kind}已过半",
                "body": "{subject}（{subject_id}）将于 {due} 到期。",
            }
        ]
    }
    assert (
        api.put("/admin/escalation-ladders/reply", body=ladder, user="u-supervisor-zhao").status
        == 403
    )
    saved = api.put("/admin/escalation-ladders/reply", body=ladder, user="u-admin")
    assert saved.status == 200, saved
    assert api.get("/admin/escalation-ladders/reply", user="u-admin").json["configured"] is True
    started = engine.start("T-26")
    clock.set(t(2026, 12, 20, 9, 0))
    engine.sweep()
    assert engine.notifier.keys() == [f"clock:{started.clock_id}:early_warning"]
    assert engine.notifier.calls[0].title == "提醒：办不成事工单答复已过半"


def test_the_engine_never_scans(engine, clock, monkeypatch):
    from botocore.client import BaseClient

    operations: list[str] = []
    original = BaseClient._make_api_call

    def spy(self, operation, params):
        operations.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    engine.start("T-27")
    clock.set(t(2026, 12, 11, 9, 0))
    engine.sweep()
    engine.recompute(json.dumps({"year": 2026, "version": 1}))
    assert "Query" in operations
    assert "Scan" not in operations


# ---- official calendar -> recompute job -----------------------------------------------------


def _receive_jobs() -> list[dict]:
    from chalicelib import topology

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=topology.queue_name("calendar-recompute"))["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


def test_loading_2027_recomputes_open_2027_deadlines(api, engine, clock):
    clock.set(t(2026, 12, 28, 10, 0))
    due_in_2027 = engine.start("T-30", limit=15, owner_id="u-dept-scjgj")
    spanning = engine.start("T-31", limit=15, started_at=t(2027, 12, 20, 10, 0))
    in_2026 = engine.start("T-32", limit=1)
    assert due_in_2027.provisional and due_in_2027.due_date == date(2027, 1, 19)
    assert spanning.provisional and spanning.due_date.year == 2028
    assert not in_2026.provisional

    # A hypothetical official 2027 notice: the package's estimate plus two more days off.
    estimate = package_schedule(2027)
    holidays = sorted({*estimate.holidays, date(2027, 1, 4), date(2027, 12, 27)})
    loaded = api.put(
        "/admin/calendar/2027",
        user="u-admin",
        body={
            "holidays": [d.isoformat() for d in holidays],
            "makeup_workdays": [d.isoformat() for d in estimate.makeup_workdays],
            "reference": "国务院办公厅关于2027年部分节假日安排的通知（测试）",
        },
    )
    assert loaded.status == 200, loaded
    jobs = _receive_jobs()
    assert [json.loads(j)["year"] for j in jobs] == [2027]

    result = engine.recompute(jobs[0])
    assert result == {"batchItemFailures": []}
    moved = engine.deps.clocks.get(due_in_2027.clock_id)
    assert moved.due_date == date(2027, 1, 20) and not moved.provisional
    assert engine.deps.clocks.get(spanning.clock_id).due_date == spanning.due_date + timedelta(
        days=1
    )
    assert engine.deps.clocks.get(in_2026.clock_id).version == in_2026.version

    notes = [n for n in engine.notifier.calls if n.category == "deadline.recomputed"]
    assert {n.business_key for n in notes} == {
        f"clock:{due_in_2027.clock_id}:recomputed:2027:v1",
        f"clock:{spanning.clock_id}:recomputed:2027:v1",
    }
    assert next(n for n in notes if due_in_2027.clock_id in n.business_key).recipient_id == (
        "u-dept-scjgj"
    )
    actions = engine.audit.actions()
    assert actions.count("clock.deadline_recomputed") == 2
    assert actions.count("calendar.recompute_completed") == 1

    # The job is idempotent: the same message again changes and notifies nothing.
    engine.recompute(jobs[0])
    assert len([n for n in engine.notifier.calls if n.category == "deadline.recomputed"]) == 2
    assert engine.audit.actions().count("clock.deadline_recomputed") == 2

    view = api.get("/clocks?subject_type=ticket&subject_id=T-30", user="u-supervisor-zhao")
    assert view.json["items"][0]["provisional"] is False


def test_a_malformed_recompute_message_is_parked_not_retried(engine):
    # It would fail the same way on every delivery: logged and counted, not a batch failure.
    result = engine.recompute("not json")
    assert result == {"batchItemFailures": []}


def test_a_long_recompute_continues_in_a_follow_up_message(api, engine, clock, monkeypatch):
    from chalicelib.service_layer import deadlines

    monkeypatch.setattr(deadlines, "RECOMPUTE_PAGE", 1)
    monkeypatch.setattr(deadlines, "RECOMPUTE_BUDGET", 1)
    clock.set(t(2026, 12, 28, 10, 0))
    started = [engine.start(f"T-4{i}", limit=15, key=f"T-4{i}") for i in range(3)]
    holidays = sorted({*package_schedule(2027).holidays, date(2027, 1, 4)})
    api.put(
        "/admin/calendar/2027",
        user="u-admin",
        body={"holidays": [d.isoformat() for d in holidays]},
    )
    pending, parts = _receive_jobs(), 0
    while pending and parts < 20:
        body = pending.pop()
        assert engine.recompute(body) == {"batchItemFailures": []}
        parts += 1
        pending += _receive_jobs()
    assert parts > 1
    assert all(not engine.deps.clocks.get(c.clock_id).provisional for c in started)
    assert engine.audit.actions().count("calendar.recompute_completed") == 1
