"""Official year schedules (holidays and 调休 make-up days) that staff load, one item per year."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import meta
from chalicelib.domain.calendar import CHINA_TZ, ScheduleSource, WorkingCalendar, YearSchedule
from chalicelib.service_layer.ports.calendar import LoadedYear


class CalendarYearModel(Model):
    Meta = meta("calendar")

    year = NumberAttribute(hash_key=True)
    # PynamoDB types `of` as the element's Python type; at runtime it is the attribute class.
    holidays = ListAttribute[str](of=UnicodeAttribute)  # type: ignore[arg-type]
    makeup_workdays = ListAttribute[str](of=UnicodeAttribute)  # type: ignore[arg-type]
    reference = UnicodeAttribute(null=True)
    loaded_at = UnicodeAttribute()
    loaded_by = UnicodeAttribute()
    version = VersionAttribute()


class DynamoCalendarStore:
    """Official years are read by every deadline computation: cached for a short age."""

    def __init__(self, cache: Any = None):
        from chalicelib.adapters.cache import ReadCache

        self._cache = cache or ReadCache()

    def get(self, year: int) -> LoadedYear | None:
        try:
            item = CalendarYearModel.get(year, consistent_read=True)
        except CalendarYearModel.DoesNotExist:
            return None
        schedule = YearSchedule(
            year=int(item.year),
            holidays=frozenset(date.fromisoformat(d) for d in item.holidays or ()),
            makeup_workdays=frozenset(date.fromisoformat(d) for d in item.makeup_workdays or ()),
            source=ScheduleSource.OFFICIAL,
            reference=item.reference or "",
        )
        return LoadedYear(schedule, int(item.version or 0), item.loaded_at, item.loaded_by)

    def official_schedule(self, year: int) -> YearSchedule | None:
        loaded = self._cache.get(("year", year), lambda: self.get(year))
        return loaded.schedule if loaded else None

    def put(self, schedule: YearSchedule, by: str, now: datetime) -> int:
        """Store (or replace) a year's official schedule; answers its new version."""
        self._cache.invalidate(("year", schedule.year))
        try:
            current = CalendarYearModel.get(schedule.year, consistent_read=True)
        except CalendarYearModel.DoesNotExist:
            current = CalendarYearModel(schedule.year)
        current.holidays = sorted(d.isoformat() for d in schedule.holidays)
        current.makeup_workdays = sorted(d.isoformat() for d in schedule.makeup_workdays)
        current.reference = schedule.reference or None
        current.loaded_at = now.astimezone(CHINA_TZ).isoformat(timespec="seconds")
        current.loaded_by = by
        current.save()  # version-conditional: concurrent loads of one year cannot interleave
        return int(current.version)

    def calendar(self) -> WorkingCalendar:
        """A calendar that reads each year it needs once (official first, then the package)."""
        return WorkingCalendar(official=self.official_schedule)
