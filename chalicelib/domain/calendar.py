"""The working-day calendar (工作日): statutory holidays, 调休 make-up working days, deadlines.

Rules (DOMAIN.md): statutory holidays are not working days; make-up days (weekend days declared
working days) are; the start day is not counted; a deadline is the end of its last working day.

Each year's schedule comes from, in order: an official schedule loaded by staff, the `holidays`
package where it holds the State Council's published schedule, or the package's estimate. Anything
computed on an estimated year is *provisional*. A year nobody knows (e.g. 2200) is weekends only.

Counting is closed-form on weekdays, corrected by each year's exceptions, so long ranges stay cheap;
the unit tests check it against a day-by-day reference.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import lru_cache

from chalicelib.domain.errors import InvalidInput

# China has one time zone; every instant the engine stores or compares is in it.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
END_OF_DAY = time(23, 59, 59)
ONE_DAY = timedelta(days=1)
# Earliest year whose published schedule the `holidays` package was checked against.
_PACKAGE_CHECKED_FROM = 2001


class ScheduleSource(StrEnum):
    OFFICIAL = "official"  # loaded by staff from the State Council notice
    PACKAGE = "package"  # published schedule as held by the `holidays` package
    ESTIMATE = "estimate"  # the package's estimate (or weekends only): provisional


@dataclass(frozen=True)
class YearSchedule:
    """One year's days off and make-up working days."""

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]
    source: ScheduleSource
    reference: str = ""  # e.g. the notice's number; shown to people

    @property
    def official(self) -> bool:
        return self.source is not ScheduleSource.ESTIMATE

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


def validate_year_schedule(
    year: int, holidays: Iterable[date], makeup_workdays: Iterable[date]
) -> tuple[frozenset[date], frozenset[date]]:
    """Check an official schedule before it is loaded; answers the two sets or InvalidInput."""
    if not 1950 <= year <= 2200:
        raise InvalidInput("年份应在1950至2200之间", code="year_out_of_range")
    off, on = frozenset(holidays), frozenset(makeup_workdays)
    problems: list[dict[str, str]] = []
    for name, days in (("holidays", off), ("makeup_workdays", on)):
        for day in sorted(d for d in days if d.year != year):
            problems.append(
                {"field": name, "message": f"{day.isoformat()} 不在 {year} 年内", "type": "year"}
            )
    for day in sorted(off & on):
        problems.append(
            {
                "field": "makeup_workdays",
                "message": f"{day.isoformat()} 不能同时是节假日和调休上班日",
                "type": "overlap",
            }
        )
    for day in sorted(d for d in on if d.weekday() < 5):
        problems.append(
            {
                "field": "makeup_workdays",
                "message": f"{day.isoformat()} 是工作日，调休上班日应为周六或周日",
                "type": "not_weekend",
            }
        )
    if problems:
        raise InvalidInput(
            "节假日安排有误，请检查标注的日期", code="invalid_calendar", fields=problems
        )
    return off, on


@lru_cache(maxsize=512)
def package_schedule(year: int) -> YearSchedule:
    """The year as the `holidays` package (China) knows it: published, or estimated."""
    try:
        import holidays as holidays_lib
        from holidays.countries.china import ChinaStaticHolidays

        days = holidays_lib.China(years=year)  # type: ignore[no-untyped-call]
        off = frozenset(d for d in days if d.year == year)
        on = frozenset(d for d in days.weekend_workdays if d.year == year)
        published = (
            _PACKAGE_CHECKED_FROM <= year <= max(ChinaStaticHolidays.special_public_holidays)
        )
    except Exception:  # a year the package cannot build: weekends only, provisional
        off, on, published = frozenset(), frozenset(), False
    source = ScheduleSource.PACKAGE if published else ScheduleSource.ESTIMATE
    return YearSchedule(year, off, on - off, source, reference="holidays")


class DayEnd(StrEnum):
    """When a deadline day ends: at midnight, or when the service centre closes."""

    END_OF_DAY = "end_of_day"
    CLOSE_OF_SERVICE = "close_of_service"


@dataclass(frozen=True)
class ServiceHours:
    opens: time = time(9, 0)
    closes: time = time(17, 0)

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise InvalidInput("办公时间的开始应早于结束", code="invalid_service_hours")


def at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=CHINA_TZ)


def day_window(day: date, day_end: DayEnd, hours: ServiceHours) -> tuple[datetime, datetime]:
    """The part of a working day that counts towards a limit."""
    if day_end is DayEnd.CLOSE_OF_SERVICE:
        return at(day, hours.opens), at(day, hours.closes)
    return at(day, time(0, 0)), at(day, END_OF_DAY)


def deadline_at(day: date, day_end: DayEnd, hours: ServiceHours) -> datetime:
    """The instant a deadline on `day` passes (end of day, or close of service hours)."""
    return day_window(day, day_end, hours)[1]


# Weekday arithmetic on proleptic ordinals: ordinal 1 (0001-01-01) is a Monday.
def _weekdays_through(ordinal: int) -> int:
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


def _ordinal_of_weekday_count(count: int) -> int:
    weeks, rest = divmod(count, 5)
    return weeks * 7 - 2 if rest == 0 else weeks * 7 + rest


@dataclass
class _YearExceptions:
    schedule: YearSchedule
    off_weekdays: list[date] = field(default_factory=list)  # holidays that fall Mon-Fri
    on_weekends: list[date] = field(default_factory=list)  # make-up days (Sat/Sun)

    @classmethod
    def of(cls, schedule: YearSchedule) -> _YearExceptions:
        return cls(
            schedule,
            sorted(d for d in schedule.holidays if d.weekday() < 5),
            sorted(d for d in schedule.makeup_workdays if d.weekday() >= 5),
        )

    def correction(self, after: date, through: date) -> int:
        """Make-up days minus weekday holidays in (after, through]."""
        gained = bisect.bisect_right(self.on_weekends, through) - bisect.bisect_right(
            self.on_weekends, after
        )
        lost = bisect.bisect_right(self.off_weekdays, through) - bisect.bisect_right(
            self.off_weekdays, after
        )
        return gained - lost


OfficialSource = Callable[[int], YearSchedule | None]


class WorkingCalendar:
    """Working days over any span of years. Years are resolved on first use and kept.

    `official` answers the schedule staff loaded for a year (or None); `base` answers the
    package's view of it. Both are functions, so an adapter can read years lazily.
    """

    MAX_SPAN_DAYS = 3660 * 2

    def __init__(
        self,
        official: OfficialSource | Mapping[int, YearSchedule] | None = None,
        base: Callable[[int], YearSchedule] = package_schedule,
    ):
        if official is None:
            self._official: OfficialSource = lambda _year: None
        elif isinstance(official, Mapping):
            loaded = dict(official)
            self._official = loaded.get
        else:
            self._official = official
        self._base = base
        self._years: dict[int, _YearExceptions] = {}

    def _year(self, year: int) -> _YearExceptions:
        found = self._years.get(year)
        if found is None:
            schedule = self._official(year) or self._base(year)
            found = self._years[year] = _YearExceptions.of(schedule)
        return found

    def schedule(self, year: int) -> YearSchedule:
        return self._year(year).schedule

    def is_provisional(self, year: int) -> bool:
        return not self.schedule(year).official

    def provisional_between(self, first: date, last: date) -> bool:
        """Whether any day in [first, last] lies in an estimated year."""
        return any(self.is_provisional(y) for y in range(first.year, last.year + 1))

    def is_working_day(self, day: date) -> bool:
        return self.schedule(day.year).is_working_day(day)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (the start day is not counted).
        Negative when end is before start: minus the working days in (end, start]."""
        if end < start:
            return -self.working_days_between(end, start)
        if (end - start).days > self.MAX_SPAN_DAYS:
            raise InvalidInput("日期区间过长，最多20年", code="range_too_long")
        count = _weekdays_through(end.toordinal()) - _weekdays_through(start.toordinal())
        for year in range(start.year, end.year + 1):
            count += self._year(year).correction(start, end)
        return count

    def add_working_days(self, start: date, days: int) -> tuple[date, bool]:
        """The `days`-th working day after `start`, and whether it is provisional.
        Zero days: `start` itself if it is a working day, else the next working day."""
        if days < 0:
            raise InvalidInput("工作日数不能为负数", code="negative_working_days")
        if days > self.MAX_SPAN_DAYS // 2:
            raise InvalidInput("工作日数过大", code="range_too_long")
        try:
            due = self._nth_working_day(start, days) if days else self.next_working_day(start)
        except (OverflowError, ValueError) as exc:
            raise InvalidInput("超出可计算的日期范围", code="date_out_of_range") from exc
        return due, self.provisional_between(start + ONE_DAY if days else start, due)

    def window_open_on(self, start: date, working_days: int, day: date) -> bool:
        """Whether a window of `working_days` counted from `start` (not counted) is still open
        on `day`. It ends with its last working day: asked on the weekend or holiday after
        that day it is closed, although no further working day has been used."""
        last, _ = self.add_working_days(start, working_days)
        return day <= last

    def next_working_day(self, day: date) -> date:
        """`day` if it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += ONE_DAY
        return day

    def _nth_working_day(self, start: date, days: int) -> date:
        # Jump by weekdays, then correct for the holidays and make-up days jumped over.
        day, remaining = start, days
        while remaining > 0:
            target = _weekdays_through(day.toordinal()) + remaining
            jump = date.fromordinal(_ordinal_of_weekday_count(target))
            remaining -= self.working_days_between(day, jump)
            day = jump
        # Overshot (make-up days) or landed on a day off: walk back to the n-th working day.
        while remaining < 0 or not self.is_working_day(day):
            if self.is_working_day(day):
                remaining += 1
            day -= ONE_DAY
        return day

    # Service-hours arithmetic, for limits counted in hours (same-day rules).
    def add_service_time(
        self, start: datetime, duration: timedelta, hours: ServiceHours
    ) -> tuple[datetime, bool]:
        """The instant `duration` of service time after `start`: only service hours of working
        days count (a ticket filed at 17:55 on a Friday starts on the next working day)."""
        start = start.astimezone(CHINA_TZ)
        remaining = max(duration, timedelta(0))
        day = start.date()
        moment = start
        while True:
            if self.is_working_day(day):
                opens, closes = day_window(day, DayEnd.CLOSE_OF_SERVICE, hours)
                begin = max(moment, opens)
                if begin <= closes and remaining <= closes - begin:
                    end = begin + remaining
                    return end, self.provisional_between(start.date(), day)
                if begin < closes:
                    remaining -= closes - begin
            day += ONE_DAY
            moment = at(day, time(0, 0))

    def service_time_between(
        self, start: datetime, end: datetime, hours: ServiceHours
    ) -> timedelta:
        """Service time of working days within [start, end]."""
        start, end = start.astimezone(CHINA_TZ), end.astimezone(CHINA_TZ)
        total = timedelta(0)
        day = start.date()
        while day <= end.date():
            if self.is_working_day(day):
                opens, closes = day_window(day, DayEnd.CLOSE_OF_SERVICE, hours)
                begin, finish = max(start, opens), min(end, closes)
                if finish > begin:
                    total += finish - begin
            day += ONE_DAY
        return total
