"""Centres, their services through each channel, and the slots of a day."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput


class Channel(StrEnum):
    COUNTER = "counter"  # 窗口办理
    VIDEO = "video"  # 视频帮办
    HOME_VISIT = "home_visit"  # 上门办


CHANNEL_LABELS = {
    Channel.COUNTER: "窗口办理",
    Channel.VIDEO: "视频帮办",
    Channel.HOME_VISIT: "上门办",
}


class Complexity(StrEnum):
    SIMPLE = "simple"
    COMPLEX = "complex"


COMPLEXITY_LABELS = {Complexity.SIMPLE: "简易", Complexity.COMPLEX: "复杂"}


class CenterKind(StrEnum):
    DISTRICT = "district"  # 区政务服务中心
    SUB_CENTER = "sub_centre"  # 分中心
    COMMUNITY = "community"  # 街镇社区事务受理服务中心


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def parse_hhmm(value: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise InvalidInput("时间格式应为 HH:MM", code="invalid_time")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def hhmm(moment: time) -> str:
    return moment.strftime("%H:%M")


def at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=CHINA_TZ)


def today_of(now: datetime) -> date:
    return now.astimezone(CHINA_TZ).date()


@dataclass(frozen=True)
class Session:
    """One opening period of a day; the gaps between a centre's sessions are its breaks."""

    opens: time
    closes: time

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise InvalidInput("开放时段的开始应早于结束", code="invalid_session")


@dataclass(frozen=True)
class Center:
    center_id: str
    name: str
    kind: CenterKind
    address: str
    phone: str
    sessions: tuple[Session, ...]
    # Towns and streets (街镇) whose residents the centre visits at home.
    area: tuple[str, ...] = ()
    manager_id: str | None = None  # user alerted when waits run over target

    def __post_init__(self) -> None:
        ordered = sorted(self.sessions, key=lambda s: s.opens)
        if not ordered:
            raise InvalidInput("服务中心至少要有一个开放时段", code="invalid_sessions")
        for before, after in itertools.pairwise(ordered):
            if after.opens < before.closes:
                raise InvalidInput("开放时段不能重叠", code="invalid_sessions")
        object.__setattr__(self, "sessions", tuple(ordered))

    @property
    def breaks(self) -> tuple[Session, ...]:
        return tuple(
            Session(before.closes, after.opens)
            for before, after in itertools.pairwise(self.sessions)
            if before.closes < after.opens
        )


@dataclass(frozen=True)
class Service:
    """One item offered at one centre through one channel."""

    center_id: str
    item_id: str
    item_name: str
    channel: Channel
    slot_minutes: int
    seats: int
    complexity: Complexity
    priority_seats: int = 0  # the last seats of each slot, held back for priority people
    staff: tuple[str, ...] = ()  # home visits: seat n is visited by staff[n]
    department_id: str | None = None  # answers for the service (reviews); None: 区政务办

    def __post_init__(self) -> None:
        problems = []
        if not 5 <= self.slot_minutes <= 240:
            problems.append("时段长度应在5到240分钟之间")
        if not 1 <= self.seats <= 50:
            problems.append("每个时段的名额应在1到50之间")
        if not 0 <= self.priority_seats < self.seats:
            problems.append("保留名额应少于时段名额")
        if self.channel is Channel.HOME_VISIT and len(self.staff) < self.seats:
            problems.append("上门办的每个名额都要有对应的工作人员")
        if problems:
            raise InvalidInput("；".join(problems), code="invalid_service")

    @property
    def service_id(self) -> str:
        return service_id(self.item_id, self.channel)

    @property
    def general_seats(self) -> int:
        return self.seats - self.priority_seats


def service_id(item_id: str, channel: Channel | str) -> str:
    return f"{item_id}.{Channel(channel).value}"


@dataclass(frozen=True)
class Slot:
    day: date
    start: time
    end: time

    @property
    def starts_at(self) -> datetime:
        return at(self.day, self.start)

    @property
    def ends_at(self) -> datetime:
        return at(self.day, self.end)

    @property
    def label(self) -> str:
        return hhmm(self.start)


def slots_of(center: Center, service: Service, day: date) -> list[Slot]:
    """The slots of a day: each session cut into slot-length pieces; a piece that would run into
    a break or past closing is not offered."""
    length = timedelta(minutes=service.slot_minutes)
    slots = []
    for session in center.sessions:
        start = at(day, session.opens)
        closes = at(day, session.closes)
        while start + length <= closes:
            slots.append(Slot(day, start.time(), (start + length).time()))
            start += length
    return slots


def find_slot(center: Center, service: Service, day: date, start: str) -> Slot:
    wanted = parse_hhmm(start)
    for slot in slots_of(center, service, day):
        if slot.start == wanted:
            return slot
    raise InvalidInput(
        f"{center.name}没有 {start} 开始的{service.item_name}时段，请先查询可预约时段",
        code="unknown_slot",
    )
