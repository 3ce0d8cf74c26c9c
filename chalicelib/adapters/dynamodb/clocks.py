"""Clocks and their escalation steps: persistence models and the repositories.

`ClockModel` (table "clocks") has two GSIs:
- `subject_index`: every clock of one subject (`subject_key` = "<type>#<id>").
- `open_year_index` (sparse): open clocks by the year of their deadline, for the recompute job.

A clock's next attention time (its next ladder step, while it is open, running and has steps
left) is filed as a due item of kind "clock" in the one due index ("due-items", domain/due.py),
written in the same transaction as the clock, so the clock and its due item never disagree;
the due sweep hands it to `deadlines.attend_due`. A clock with nothing to attend has its due
item taken out of the index by the same write.

The "escalations" table holds `EscalationStepModel` items keyed (clock_id, step): a step is taken
by a conditional put, so it happens once per clock however many sweeps run. The same table keeps,
under reserved partition keys, the per-month counters and ladder overrides.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, iso, meta, parse_iso
from chalicelib.adapters.dynamodb.due import due_record
from chalicelib.adapters.dynamodb.transaction import Transactions
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.calendar import CHINA_TZ, DayEnd, ServiceHours
from chalicelib.domain.clocks import (
    DUE_KIND,
    Clock,
    ClockState,
    Ladder,
    LimitUnit,
    Pause,
    StepClaim,
    parse_hhmm,
)
from chalicelib.domain.errors import Conflict
from chalicelib.service_layer.ports import Page

YEAR_SHARDS = 4
_LADDER_KEY = "ladder"
_STATS_PREFIX = "stats#"


def _clock_changed() -> Conflict:
    return Conflict("计时已被他人更新，请重试", code="clock_changed")


def _clock_exists() -> Conflict:
    return Conflict("计时已存在", code="clock_exists")


def shard_of(clock_id: str) -> int:
    return zlib.crc32(clock_id.encode()) % YEAR_SHARDS


class SubjectIndex(GlobalSecondaryIndex["ClockModel"]):
    class Meta:
        index_name = "subject_index"
        projection = AllProjection()

    subject_key = UnicodeAttribute(hash_key=True)
    started_at = UnicodeAttribute(range_key=True)


class OpenYearIndex(GlobalSecondaryIndex["ClockModel"]):
    class Meta:
        index_name = "open_year_index"
        projection = AllProjection()

    open_due_year = UnicodeAttribute(hash_key=True)
    started_at = UnicodeAttribute(range_key=True)


class ClockModel(Model):
    Meta = meta("clocks")

    clock_id = UnicodeAttribute(hash_key=True)
    subject_key = UnicodeAttribute()
    subject_type = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    unit = UnicodeAttribute()
    limit = NumberAttribute()
    started_at = UnicodeAttribute()
    ladder = JSONAttribute()
    day_end = UnicodeAttribute()
    service_opens = UnicodeAttribute()
    service_closes = UnicodeAttribute()
    department_id = UnicodeAttribute(null=True)
    owner_id = UnicodeAttribute(null=True)
    label = UnicodeAttribute(null=True)
    state = UnicodeAttribute()
    pauses = JSONAttribute(null=True)
    extension = NumberAttribute(default=0)
    extension_reason = UnicodeAttribute(null=True)
    extended_by = UnicodeAttribute(null=True)
    due_date = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    provisional = BooleanAttribute(default=False)
    steps_done = UnicodeSetAttribute(null=True)
    closed_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    next_attention_at = UnicodeAttribute(null=True)  # its due item's time
    # Index attribute: present only while the clock belongs in the index.
    open_due_year = UnicodeAttribute(null=True)
    version = VersionAttribute()

    subject_index = SubjectIndex()
    open_year_index = OpenYearIndex()


class StepMonthIndex(GlobalSecondaryIndex["EscalationStepModel"]):
    class Meta:
        index_name = "step_month_index"
        projection = AllProjection()

    step_month = UnicodeAttribute(hash_key=True)
    taken_at = UnicodeAttribute(range_key=True)


class EscalationStepModel(Model):
    """One ladder step of one clock (督办 and 通报 items are the supervision records)."""

    Meta = meta("escalations")

    clock_id = UnicodeAttribute(hash_key=True)
    step = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute(null=True)  # started | done
    taken_at = UnicodeAttribute(null=True)
    attempt_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    step_month = UnicodeAttribute(null=True)  # "<step>#<YYYY-MM>", for monthly reports
    details = JSONAttribute(null=True)

    step_month_index = StepMonthIndex()


class DeadlineCounterModel(Model):
    """A monthly counter on the escalations table: ("stats#<YYYY-MM>", "<kind>#<dept>#<name>")."""

    Meta = meta("escalations")

    clock_id = UnicodeAttribute(hash_key=True)
    step = UnicodeAttribute(range_key=True)
    total = NumberAttribute(default=0)


class LadderOverrideModel(Model):
    """An admin's ladder for one clock kind: ("ladder", <kind>)."""

    Meta = meta("escalations")

    clock_id = UnicodeAttribute(hash_key=True)
    step = UnicodeAttribute(range_key=True)
    ladder = JSONAttribute()
    updated_at = UnicodeAttribute()
    updated_by = UnicodeAttribute()


# ---- mapping ----------------------------------------------------------------------------


def _to_model(clock: Clock, now: datetime) -> ClockModel:
    item = ClockModel(
        clock.clock_id,
        subject_key=f"{clock.subject_type}#{clock.subject_id}",
        subject_type=clock.subject_type,
        subject_id=clock.subject_id,
        kind=clock.kind,
        unit=clock.unit.value,
        limit=clock.limit,
        started_at=iso(clock.started_at),
        ladder=clock.ladder.to_dict(),
        day_end=clock.day_end.value,
        service_opens=clock.service_hours.opens.strftime("%H:%M"),
        service_closes=clock.service_hours.closes.strftime("%H:%M"),
        department_id=clock.department_id,
        owner_id=clock.owner_id,
        label=clock.label or None,
        state=clock.state.value,
        pauses=[_pause_dict(p) for p in clock.pauses] or None,
        extension=clock.extension,
        extension_reason=clock.extension_reason or None,
        extended_by=clock.extended_by,
        due_date=clock.due_date.isoformat() if clock.due_date else None,
        due_at=iso(clock.due_at) if clock.due_at else None,
        provisional=clock.provisional,
        steps_done=set(clock.steps_done) or None,
        closed_at=iso(clock.closed_at) if clock.closed_at else None,
        updated_at=iso(now),
    )
    if clock.in_due_index and clock.next_attention_at is not None:
        item.next_attention_at = iso(clock.next_attention_at)
    if clock.is_open and clock.due_date is not None:
        item.open_due_year = f"{clock.due_date.year}#{shard_of(clock.clock_id)}"
    if clock.version is not None:
        item.version = clock.version
    return item


def _pause_dict(pause: Pause) -> dict[str, Any]:
    return {
        "paused_at": iso(pause.paused_at),
        "resumed_at": iso(pause.resumed_at) if pause.resumed_at else None,
        "reason": pause.reason,
    }


def _to_clock(item: ClockModel) -> Clock:
    return Clock(
        clock_id=item.clock_id,
        subject_type=item.subject_type,
        subject_id=item.subject_id,
        kind=item.kind,
        unit=LimitUnit(item.unit),
        limit=int(item.limit),
        started_at=parse_iso(item.started_at),
        ladder=Ladder.from_dict(item.ladder),
        day_end=DayEnd(item.day_end),
        service_hours=ServiceHours(parse_hhmm(item.service_opens), parse_hhmm(item.service_closes)),
        department_id=item.department_id,
        owner_id=item.owner_id,
        label=item.label or "",
        state=ClockState(item.state),
        pauses=tuple(
            Pause(parse_iso(p["paused_at"]), parse_iso(p.get("resumed_at")), p.get("reason", ""))
            for p in item.pauses or ()
        ),
        extension=int(item.extension or 0),
        extension_reason=item.extension_reason or "",
        extended_by=item.extended_by,
        due_date=date.fromisoformat(item.due_date) if item.due_date else None,
        due_at=parse_iso(item.due_at),
        provisional=bool(item.provisional),
        steps_done=frozenset(item.steps_done or ()),
        next_attention_at=parse_iso(item.next_attention_at),
        closed_at=parse_iso(item.closed_at),
        version=item.version,
    )


def _due_of(clock: Clock, now: datetime) -> Model:
    """The clock's due item as it must be stored with this version of the clock."""
    due_at = clock.next_attention_at if clock.in_due_index else None
    return due_record(DUE_KIND, clock.clock_id, due_at, now)


class DynamoClockStore:
    """Clocks by id, by subject and by deadline year; each write also files (or takes out) the
    clock's due item, in the same transaction.

    Reads by key or index query only."""

    shards = YEAR_SHARDS  # deadline years are split this many ways

    def __init__(self, transactions: Transactions | None = None) -> None:
        self._transactions = transactions or Transactions()

    def get(self, clock_id: str) -> Clock | None:
        transaction = current_transaction()
        enlisted = transaction.pending(ClockModel, clock_id) if transaction else None
        if enlisted is not None:
            return _to_clock(enlisted)
        try:
            return _to_clock(ClockModel.get(clock_id, consistent_read=True))
        except ClockModel.DoesNotExist:
            return None

    def create(self, clock: Clock, now: datetime) -> Clock | None:
        """Write a new clock; None if a clock with this id already exists. In an open
        transaction the write is enlisted (an existing clock then fails its commit)."""
        try:
            return self._write(clock, now, new=True)
        except Conflict as error:
            if error.code != "clock_exists":
                raise
            return None

    def save(self, clock: Clock, now: datetime) -> Clock:
        """Write a changed clock if nobody changed it since it was read; else Conflict."""
        return self._write(clock, now, new=False)

    def _write(self, clock: Clock, now: datetime, *, new: bool) -> Clock:
        item = _to_model(clock, now)
        with self._transactions.atomic() as transaction:
            if new:
                transaction.put(
                    item, ClockModel.clock_id.does_not_exist(), on_conflict=_clock_exists
                )
            else:
                transaction.put(item, on_conflict=_clock_changed)
            transaction.put(_due_of(clock, now))
        return _to_clock(item)

    def put_many(self, clocks: Iterable[Clock], now: datetime) -> None:
        """Bulk load (benchmarks, imports): batch writes, no conditions."""
        from chalicelib.adapters.dynamodb.due import DueItemModel

        clocks = list(clocks)
        with ClockModel.batch_write() as batch:
            for clock in clocks:
                batch.save(_to_model(clock, now))
        with DueItemModel.batch_write() as due_batch:
            for clock in clocks:
                due_batch.save(_due_of(clock, now))

    def by_subject(
        self, subject_type: str, subject_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Clock]:
        result = ClockModel.subject_index.query(
            f"{subject_type}#{subject_id}", limit=limit, last_evaluated_key=start_key
        )
        items = [_to_clock(i) for i in result]
        return Page(items, result.last_evaluated_key)

    def open_due_in_year(
        self,
        year: int,
        shard: int,
        started_before: datetime | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> Page[Clock]:
        condition = ClockModel.started_at < iso(started_before) if started_before else None
        result = ClockModel.open_year_index.query(
            f"{year}#{shard}", condition, limit=limit, last_evaluated_key=start_key
        )
        items = [_to_clock(i) for i in result]
        return Page(items, result.last_evaluated_key)


class DynamoEscalationStore:
    """Ladder steps (each once per clock), counters and ladder overrides."""

    @cached_property
    def _read_cache(self) -> Any:
        # Replaced by the container with one on the injected clock.
        from chalicelib.adapters.cache import ReadCache

        return ReadCache()

    def __init__(self, lease: timedelta = timedelta(minutes=2)):
        # A step left "started" longer than this (its sweep died) may be taken over.
        self._lease = lease

    def claim_step(self, clock: Clock, step: str, now: datetime, details: dict[str, Any]) -> str:
        item = EscalationStepModel(
            clock.clock_id,
            step,
            status="started",
            taken_at=iso(now),
            attempt_at=iso(now),
            step_month=f"{step}#{now.astimezone(CHINA_TZ):%Y-%m}",
            details=details,
        )
        try:
            item.save(condition=EscalationStepModel.clock_id.does_not_exist())
            return StepClaim.TAKEN
        except PutError as error:
            if not condition_failed(error):
                raise
        return self._take_over(clock.clock_id, step, now)

    def _take_over(self, clock_id: str, step: str, now: datetime) -> StepClaim:
        existing = EscalationStepModel.get(clock_id, step, consistent_read=True)
        if existing.status == "done":
            return StepClaim.DONE
        if parse_iso(existing.attempt_at) > now - self._lease:
            return StepClaim.BUSY
        try:
            existing.update(
                actions=[EscalationStepModel.attempt_at.set(iso(now))],
                condition=(EscalationStepModel.attempt_at == existing.attempt_at)
                & (EscalationStepModel.status == "started"),
            )
            return StepClaim.TAKEN
        except UpdateError as error:
            if condition_failed(error):
                return StepClaim.BUSY
            raise

    def finish_step(self, clock_id: str, step: str, now: datetime) -> None:
        EscalationStepModel(clock_id, step).update(
            actions=[
                EscalationStepModel.status.set("done"),
                EscalationStepModel.finished_at.set(iso(now)),
            ]
        )

    def steps_of(self, clock_id: str) -> list[dict[str, Any]]:
        return [_step_view(i) for i in EscalationStepModel.query(clock_id)]

    def steps_in_month(
        self, step: str, month: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[dict[str, Any]]:
        result = EscalationStepModel.step_month_index.query(
            f"{step}#{month}", limit=limit, last_evaluated_key=start_key
        )
        return Page([_step_view(i) for i in result], result.last_evaluated_key)

    # Counters: one item per (month, kind, department, name); ADD is atomic.
    def increment(self, month: str, kind: str, department_id: str | None, name: str) -> None:
        key = f"{kind}#{department_id or '-'}#{name}"
        transaction = current_transaction()
        if transaction is not None:
            transaction.add(DeadlineCounterModel, f"{_STATS_PREFIX}{month}", key, {"total": 1})
            return
        DeadlineCounterModel(f"{_STATS_PREFIX}{month}", key).update(
            actions=[DeadlineCounterModel.total.add(1)]
        )

    def counters(self, month: str) -> list[tuple[str, str | None, str, int]]:
        rows = []
        for item in DeadlineCounterModel.query(f"{_STATS_PREFIX}{month}"):
            kind, department, name = item.step.split("#", 2)
            rows.append((kind, None if department == "-" else department, name, int(item.total)))
        return rows

    def get_ladder(self, kind: str) -> Ladder | None:
        return self._read_cache.get(("ladder", kind), lambda: self._ladder(kind))

    def _ladder(self, kind: str) -> Ladder | None:
        try:
            item = LadderOverrideModel.get(_LADDER_KEY, kind, consistent_read=True)
        except LadderOverrideModel.DoesNotExist:
            return None
        return Ladder.from_dict(item.ladder)

    def put_ladder(self, kind: str, ladder: Ladder, by: str, now: datetime) -> None:
        self._read_cache.invalidate(("ladder", kind))
        LadderOverrideModel(
            _LADDER_KEY, kind, ladder=ladder.to_dict(), updated_at=iso(now), updated_by=by
        ).save()


def _step_view(item: EscalationStepModel) -> dict[str, Any]:
    return {
        "clock_id": item.clock_id,
        "step": item.step,
        "status": item.status,
        "taken_at": item.taken_at,
        "finished_at": item.finished_at,
        **(item.details or {}),
    }
