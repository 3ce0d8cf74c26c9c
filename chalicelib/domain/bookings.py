"""Booking: centres, their services and slots, the booking rules, and the pure decisions on them.

A centre opens on working days (the working-day calendar) in sessions; the gaps between sessions
are its breaks. A service is one item offered at one centre through one channel (counter, video
assistance, home visit) with a slot length, a number of seats per slot and a complexity. Each seat
of each slot is one stored item with a fixed key, so a booking takes a seat with one conditional
write and a slot can never hold more bookings than it has seats.

The rules (DOMAIN.md "Appointments", local practice) are data: `BookingRules` holds the defaults,
an admin may change them. Everything here is pure: the caller passes the instant, the calendar,
the rules and the secret for signed links.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import InvalidInput, RuleViolation


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


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CALLED = "called"
    SERVED = "served"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


STATUS_LABELS = {
    BookingStatus.BOOKED: "已预约",
    BookingStatus.CHECKED_IN: "已签到",
    BookingStatus.CALLED: "已叫号",
    BookingStatus.SERVED: "已办理",
    BookingStatus.CANCELLED: "已取消",
    BookingStatus.NO_SHOW: "爽约",
}


class ReminderKind(StrEnum):
    DAY_BEFORE = "day_before"
    TWO_HOURS = "two_hours"


class JobKind(StrEnum):
    """Timed work the booking job runner does, each once per subject (and booking revision)."""

    REMIND_DAY_BEFORE = "remind_day_before"
    REMIND_TWO_HOURS = "remind_two_hours"
    NO_SHOW = "no_show"
    HELP_PICKUP = "help_pickup"


class GuardOutcome(StrEnum):
    """What taking the one-booking-per-person-per-item-per-day guard answered."""

    TAKEN = "taken"  # newly taken by this booking
    MINE = "mine"  # this booking held it already (a retried request)
    OTHER = "other"  # another booking holds it


@dataclass(frozen=True)
class Job:
    """A timed job: due at `run_at`, done once (per subject, kind and booking revision)."""

    job_id: str
    subject_type: str  # "booking" | "help"
    subject_id: str
    kind: str
    revision: int
    run_at: datetime


def job_id_for(subject_id: str, kind: str, revision: int) -> str:
    return f"{subject_id}#{kind}#r{revision}"


REMINDER_OF_JOB = {
    JobKind.REMIND_DAY_BEFORE: ReminderKind.DAY_BEFORE,
    JobKind.REMIND_TWO_HOURS: ReminderKind.TWO_HOURS,
}

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


# ---- centres and services -------------------------------------------------------------------


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


# ---- the rules --------------------------------------------------------------------------------


# Allowed range of each numeric rule.
_RULE_BOUNDS: dict[str, tuple[int, int]] = {
    "min_working_days_ahead": (0, 30),
    "max_working_days_ahead": (1, 60),
    "cancel_until_minutes_before": (0, 7 * 24 * 60),
    "no_show_grace_minutes": (0, 240),
    "no_show_limit": (1, 20),
    "no_show_window_days": (1, 365),
    "suspension_days": (0, 3 * 365),
    "priority_release_minutes_before": (0, 30 * 24 * 60),
    "check_in_opens_minutes_before": (0, 240),
    "remind_day_before_minutes": (60, 3 * 24 * 60),
    "remind_before_minutes": (10, 24 * 60),
    "wait_target_simple_minutes": (1, 240),
    "wait_target_complex_minutes": (1, 480),
    "wait_window_minutes": (5, 24 * 60),
    "help_pickup_target_seconds": (5, 3600),
    "handling_target_minutes": (1, 480),
}


@dataclass(frozen=True)
class BookingRules:
    """Configurable defaults (DOMAIN.md "Appointments"; targets from the 2023 work plan)."""

    min_working_days_ahead: int = 1
    max_working_days_ahead: int = 5
    one_per_item_per_day: bool = True
    cancel_until_minutes_before: int = 120
    no_show_grace_minutes: int = 15
    no_show_limit: int = 2
    no_show_window_days: int = 30
    suspension_days: int = 90
    priority_tags: tuple[str, ...] = ("elderly", "disabled")
    # Held-back seats open to everybody this long before the slot starts.
    priority_release_minutes_before: int = 24 * 60
    check_in_opens_minutes_before: int = 30
    remind_day_before_minutes: int = 24 * 60
    remind_before_minutes: int = 120
    wait_target_simple_minutes: int = 10
    wait_target_complex_minutes: int = 30
    wait_window_minutes: int = 60
    help_pickup_target_seconds: int = 60
    help_alert_department_id: str = "dept-zwb"
    # Window handling (call → served): 20 minutes in general, per item where it says otherwise.
    handling_target_minutes: int = 20
    handling_item_targets: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = [
            f"{name} 应在 {low} 到 {high} 之间"
            for name, (low, high) in _RULE_BOUNDS.items()
            if not low <= getattr(self, name) <= high
        ]
        if self.min_working_days_ahead > self.max_working_days_ahead:
            problems.append("最早可约天数不能晚于最晚可约天数")
        if self.remind_before_minutes >= self.remind_day_before_minutes:
            problems.append("临近提醒应晚于前一天提醒")
        low, high = _RULE_BOUNDS["handling_target_minutes"]
        problems += [
            f"事项 {item} 的办理时长目标应在 {low} 到 {high} 分钟之间"
            for item, minutes in self.handling_item_targets.items()
            if isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not low <= minutes <= high
        ]
        if problems:
            raise InvalidInput("预约规则有误：" + "；".join(problems), code="invalid_rules")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["priority_tags"] = list(self.priority_tags)
        data["handling_item_targets"] = dict(self.handling_item_targets)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BookingRules:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "priority_tags" in values:
            values["priority_tags"] = tuple(values["priority_tags"])
        if "handling_item_targets" in values:
            values["handling_item_targets"] = {
                str(k): int(v) for k, v in dict(values["handling_item_targets"] or {}).items()
            }
        for name in _RULE_BOUNDS:
            if name in values:
                values[name] = int(values[name])
        return cls(**values)

    def changed(self, changes: Mapping[str, Any]) -> BookingRules:
        return BookingRules.from_dict({**self.to_dict(), **changes})

    def wait_target_minutes(self, complexity: Complexity) -> int:
        if complexity is Complexity.COMPLEX:
            return self.wait_target_complex_minutes
        return self.wait_target_simple_minutes

    def handling_target(self, item_id: str | None) -> int:
        """Minutes from call to served that an item's window handling should not exceed."""
        if item_id is not None and item_id in self.handling_item_targets:
            return self.handling_item_targets[item_id]
        return self.handling_target_minutes


def is_priority(tags: Iterable[str], rules: BookingRules) -> bool:
    """Elderly and disabled people (by directory tag) get held-back seats and go first."""
    return bool(set(tags) & set(rules.priority_tags))


def check_booking_day(
    rules: BookingRules, calendar: WorkingCalendar, now: datetime, day: date
) -> None:
    """A bookable day is a working day 1 to 5 working days after today (defaults)."""
    today = today_of(now)
    if not calendar.is_working_day(day):
        raise RuleViolation(f"{day.isoformat()} 不是工作日，服务中心不开放", code="centre_closed")
    ahead = calendar.working_days_between(today, day)
    if ahead < rules.min_working_days_ahead or ahead > rules.max_working_days_ahead:
        raise RuleViolation(
            f"只能预约{rules.min_working_days_ahead}至{rules.max_working_days_ahead}个工作日后"
            f"的时段（{day.isoformat()} 相距 {ahead} 个工作日）",
            code="outside_booking_window",
        )


def bookable_days(rules: BookingRules, calendar: WorkingCalendar, now: datetime) -> list[date]:
    days, day = [], today_of(now)
    while calendar.working_days_between(today_of(now), day) < rules.max_working_days_ahead:
        day += timedelta(days=1)
        ahead = calendar.working_days_between(today_of(now), day)
        if calendar.is_working_day(day) and ahead >= rules.min_working_days_ahead:
            days.append(day)
    return days


def priority_released(slot: Slot, now: datetime, rules: BookingRules) -> bool:
    return now >= slot.starts_at - timedelta(minutes=rules.priority_release_minutes_before)


def seat_order(
    service: Service, slot: Slot, key: str, priority: bool, now: datetime, rules: BookingRules
) -> list[int]:
    """The seats one booking may take, in the order it tries them.

    General seats come first for everyone but priority people, who try the held-back seats
    first. The order is fixed per booking key (a retried request tries the same seats) and
    rotated by it, so concurrent bookings spread over the seats instead of all fighting for 0."""
    general = list(range(service.general_seats))
    held = list(range(service.general_seats, service.seats))
    if general:
        turn = zlib.crc32(key.encode()) % len(general)
        general = general[turn:] + general[:turn]
    if priority:
        return held + general
    if priority_released(slot, now, rules):
        return general + held
    return general


def staff_for_seat(service: Service, seat: int) -> str | None:
    if service.channel is Channel.HOME_VISIT and seat < len(service.staff):
        return service.staff[seat]
    return None


def check_home_visit(
    center: Center, service: Service, town: str | None, tags: Iterable[str], rules: BookingRules
) -> None:
    """上门办: only for eligible people (elderly, disabled), by a community centre, in its area."""
    if service.channel is not Channel.HOME_VISIT:
        return
    if not is_priority(tags, rules):
        raise RuleViolation(
            "上门办仅面向老年人、残疾人等行动不便的群众", code="home_visit_not_eligible"
        )
    if center.kind is not CenterKind.COMMUNITY:
        raise RuleViolation("上门办由街镇社区事务受理服务中心提供", code="home_visit_not_offered")
    if not town:
        raise InvalidInput("上门办需要填写上门地址", code="address_required")
    if town not in center.area:
        raise RuleViolation(
            f"上门地址不在{center.name}的服务范围内（{'、'.join(center.area)}）",
            code="outside_service_area",
        )


# ---- bookings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoRoom:
    room_id: str
    join_url: str


@dataclass(frozen=True)
class HomeAddress:
    town: str  # 街道或镇
    detail: str


@dataclass(frozen=True)
class Booking:
    booking_id: str
    user_id: str
    person_key: str  # hash of the person (ID number, else account): the per-person rules
    center_id: str
    center_name: str
    item_id: str
    item_name: str
    channel: Channel
    complexity: Complexity
    day: date
    start: time
    end: time
    seat: int
    status: BookingStatus
    created_at: datetime
    priority: bool = False
    revision: int = 0  # +1 per reschedule: reminders and no-show jobs belong to one revision
    video: VideoRoom | None = None
    address: HomeAddress | None = None
    staff_id: str | None = None
    checked_in_at: datetime | None = None
    called_at: datetime | None = None
    called_by: str | None = None
    served_at: datetime | None = None
    cancelled_at: datetime | None = None
    no_show_at: datetime | None = None
    wait_seconds: int | None = None
    handling_seconds: int | None = None
    history: tuple[dict[str, Any], ...] = ()  # earlier slots, oldest first
    version: int | None = None

    @property
    def slot(self) -> Slot:
        return Slot(self.day, self.start, self.end)

    @property
    def starts_at(self) -> datetime:
        return at(self.day, self.start)

    @property
    def ends_at(self) -> datetime:
        return at(self.day, self.end)

    @property
    def service_id(self) -> str:
        return service_id(self.item_id, self.channel)

    @property
    def waiting_since(self) -> datetime | None:
        """An early arrival waits from the booked time: the centre is measured from then."""
        if self.checked_in_at is None:
            return None
        return max(self.checked_in_at, self.starts_at)


def snapshot(booking: Booking) -> dict[str, Any]:
    """What the audit trail keeps of a booking (no address, no personal data)."""
    return {
        "status": booking.status.value,
        "center_id": booking.center_id,
        "item_id": booking.item_id,
        "channel": booking.channel.value,
        "day": booking.day.isoformat(),
        "start": hhmm(booking.start),
        "seat": booking.seat,
        "revision": booking.revision,
        "staff_id": booking.staff_id,
    }


def _require_status(booking: Booking, allowed: set[BookingStatus], code: str, what: str) -> None:
    if booking.status not in allowed:
        raise RuleViolation(
            f"预约当前状态为“{STATUS_LABELS[booking.status]}”，不能{what}", code=code
        )


def check_cancellable(booking: Booking, now: datetime, rules: BookingRules) -> None:
    _require_status(booking, {BookingStatus.BOOKED}, "booking_not_cancellable", "取消或改约")
    cutoff = booking.starts_at - timedelta(minutes=rules.cancel_until_minutes_before)
    if now > cutoff:
        raise RuleViolation(
            f"开始前{_duration(rules.cancel_until_minutes_before)}内不能在线取消或改约",
            code="cancel_window_closed",
        )


def cancel(booking: Booking, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.BOOKED}, "booking_not_cancellable", "取消")
    return replace(booking, status=BookingStatus.CANCELLED, cancelled_at=now)


def move(booking: Booking, slot: Slot, seat: int, staff_id: str | None, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.BOOKED}, "booking_not_cancellable", "改约")
    earlier = {
        "day": booking.day.isoformat(),
        "start": hhmm(booking.start),
        "seat": booking.seat,
        "moved_at": now.isoformat(),
    }
    return replace(
        booking,
        day=slot.day,
        start=slot.start,
        end=slot.end,
        seat=seat,
        staff_id=staff_id,
        revision=booking.revision + 1,
        history=(*booking.history, earlier),
    )


def check_in(booking: Booking, now: datetime, rules: BookingRules) -> Booking:
    if booking.channel is not Channel.COUNTER:
        raise RuleViolation("只有窗口预约需要到场签到", code="not_a_counter_booking")
    _require_status(booking, {BookingStatus.BOOKED}, "check_in_not_allowed", "签到")
    opens = booking.starts_at - timedelta(minutes=rules.check_in_opens_minutes_before)
    closes = booking.starts_at + timedelta(minutes=rules.no_show_grace_minutes)
    if today_of(now) != booking.day or now < opens:
        raise RuleViolation(
            f"签到时间为预约开始前{rules.check_in_opens_minutes_before}分钟起",
            code="check_in_too_early",
        )
    if now > closes:
        raise RuleViolation("已超过签到时间，预约将记为爽约", code="check_in_closed")
    return replace(booking, status=BookingStatus.CHECKED_IN, checked_in_at=now)


def call(booking: Booking, now: datetime, staff_id: str) -> Booking:
    _require_status(booking, {BookingStatus.CHECKED_IN}, "call_not_allowed", "叫号")
    since = booking.waiting_since or now
    waited = max(0, int((now - since).total_seconds()))
    return replace(
        booking,
        status=BookingStatus.CALLED,
        called_at=now,
        called_by=staff_id,
        wait_seconds=waited,
    )


def serve(booking: Booking, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.CALLED}, "serve_not_allowed", "办结")
    called = booking.called_at or now
    return replace(
        booking,
        status=BookingStatus.SERVED,
        served_at=now,
        handling_seconds=max(0, int((now - called).total_seconds())),
    )


def mark_no_show(booking: Booking, now: datetime) -> Booking:
    _require_status(booking, {BookingStatus.BOOKED}, "no_show_not_applicable", "记为爽约")
    return replace(booking, status=BookingStatus.NO_SHOW, no_show_at=now)


def no_show_due(booking: Booking, rules: BookingRules) -> datetime:
    return booking.starts_at + timedelta(minutes=rules.no_show_grace_minutes)


def reminder_times(booking: Booking, now: datetime, rules: BookingRules) -> dict[JobKind, datetime]:
    """When to remind: the day before and 2 hours before; a time already past is skipped."""
    times = {
        JobKind.REMIND_DAY_BEFORE: booking.starts_at
        - timedelta(minutes=rules.remind_day_before_minutes),
        JobKind.REMIND_TWO_HOURS: booking.starts_at
        - timedelta(minutes=rules.remind_before_minutes),
    }
    return {kind: moment for kind, moment in times.items() if moment > now}


def reminder_key(kind: ReminderKind, revision: int) -> str:
    """The reminder's name in its notification key: a rescheduled booking is reminded again."""
    return kind.value if revision == 0 else f"{kind.value}-r{revision}"


def suspension_until(
    no_shows: Iterable[datetime], now: datetime, rules: BookingRules
) -> datetime | None:
    """2 no-shows within 30 days → 90 days without online booking (defaults)."""
    since = now - timedelta(days=rules.no_show_window_days)
    recent = [moment for moment in no_shows if since <= moment <= now]
    if len(recent) < rules.no_show_limit or rules.suspension_days == 0:
        return None
    return now + timedelta(days=rules.suspension_days)


def check_not_suspended(until: datetime | None, now: datetime) -> None:
    if until is not None and now < until:
        raise RuleViolation(
            f"因多次爽约，{until.astimezone(CHINA_TZ):%Y-%m-%d} 前暂停在线预约，"
            "可到服务中心现场办理",
            code="booking_suspended",
        )


# ---- live help (专业人工帮办) -------------------------------------------------------------------


class HelpStatus(StrEnum):
    WAITING = "waiting"
    PICKED_UP = "picked_up"
    RESOLVED = "resolved"
    NOT_RESOLVED = "not_resolved"
    ABANDONED = "abandoned"


class HelpOutcome(StrEnum):
    RESOLVED = "resolved"
    NOT_RESOLVED = "not_resolved"  # with a reason; may become a 办不成事 ticket
    ABANDONED = "abandoned"  # the person left, before or after pick-up


HELP_ENDED = frozenset({HelpStatus.RESOLVED, HelpStatus.NOT_RESOLVED, HelpStatus.ABANDONED})
HELP_RESOLUTION_TARGET = 0.90


@dataclass(frozen=True)
class HelpRequest:
    request_id: str
    user_id: str
    topic: str
    item_id: str | None
    status: HelpStatus
    requested_at: datetime
    picked_at: datetime | None = None
    agent_id: str | None = None
    pickup_seconds: int | None = None
    target_met: bool | None = None
    alerted: bool = False
    room: VideoRoom | None = None
    version: int | None = None
    team: str | None = None  # who answers: the item's department, else the help desk
    ended_at: datetime | None = None
    ended_by: str | None = None
    outcome_reason: str | None = None
    ticket_id: str | None = None  # the 办不成事 ticket a request not resolved became
    # Handed over from the assistant: its conversation and what was said so far.
    conversation_id: str | None = None
    transcript: tuple[str, ...] = ()


def end_help(
    request: HelpRequest, outcome: HelpOutcome, now: datetime, by: str, reason: str = ""
) -> HelpRequest:
    """How a help request ends. Resolved or not needs an agent to have picked it up; a request
    not resolved says why; a person may abandon it before or after the pick-up."""
    if request.status in HELP_ENDED:
        raise RuleViolation("该求助已结束", code="help_already_ended")
    if outcome is not HelpOutcome.ABANDONED and request.status is not HelpStatus.PICKED_UP:
        raise RuleViolation("求助尚未接入，不能登记办理结果", code="help_not_picked_up")
    reason = reason.strip()
    if outcome is HelpOutcome.NOT_RESOLVED and not reason:
        raise InvalidInput("未解决的求助须说明原因", code="reason_required")
    return replace(
        request,
        status=HelpStatus(outcome.value),
        ended_at=now,
        ended_by=by,
        outcome_reason=reason or None,
    )


def pick_up(
    request: HelpRequest, agent_id: str, now: datetime, rules: BookingRules, room: VideoRoom
) -> HelpRequest:
    if request.status is not HelpStatus.WAITING:
        raise RuleViolation("该求助已被其他帮办人员接入", code="help_already_picked_up")
    waited = max(0, int((now - request.requested_at).total_seconds()))
    return replace(
        request,
        status=HelpStatus.PICKED_UP,
        picked_at=now,
        agent_id=agent_id,
        pickup_seconds=waited,
        target_met=waited <= rules.help_pickup_target_seconds,
        room=room,
    )


def help_overdue(request: HelpRequest, now: datetime, rules: BookingRules) -> bool:
    deadline = request.requested_at + timedelta(seconds=rules.help_pickup_target_seconds)
    return request.status is HelpStatus.WAITING and now > deadline


# ---- waits at the centre --------------------------------------------------------------------


@dataclass(frozen=True)
class WaitSample:
    """One call at a centre: how long the person waited, and (once served) the handling."""

    booking_id: str
    complexity: Complexity
    called_at: datetime
    wait_seconds: int
    staff_id: str
    handling_seconds: int | None = None
    item_id: str | None = None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def average_wait_minutes(
    samples: Iterable[WaitSample], complexity: Complexity, now: datetime, rules: BookingRules
) -> float | None:
    """Rolling average wait of one complexity over the rules' window (default 60 minutes)."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    return _mean(
        [
            s.wait_seconds / 60
            for s in samples
            if s.complexity is complexity and since <= s.called_at <= now
        ]
    )


def average_handling_minutes(
    samples: Iterable[WaitSample], item_id: str, now: datetime, rules: BookingRules
) -> float | None:
    """Rolling average handling (call → served) of one item over the rules' window."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    return _mean(
        [
            s.handling_seconds / 60
            for s in samples
            if s.item_id == item_id
            and s.handling_seconds is not None
            and since <= s.called_at <= now
        ]
    )


@dataclass(frozen=True)
class QueueEstimate:
    waiting: int
    waiting_priority: int
    counters: int
    average_wait_minutes: dict[Complexity, float | None]
    targets_minutes: dict[Complexity, int]
    average_handling_minutes: float
    estimated_wait_minutes: int

    @property
    def over_target(self) -> dict[Complexity, bool]:
        return {
            c: (avg is not None and avg > self.targets_minutes[c])
            for c, avg in self.average_wait_minutes.items()
        }


def estimate_queue(
    waiting: int,
    waiting_priority: int,
    samples: list[WaitSample],
    now: datetime,
    rules: BookingRules,
    default_handling_minutes: float,
) -> QueueEstimate:
    """A newcomer waits for everyone ahead, shared among the counters that called recently."""
    since = now - timedelta(minutes=rules.wait_window_minutes)
    recent = [s for s in samples if since <= s.called_at <= now]
    counters = max(1, len({s.staff_id for s in recent}))
    handled = [s.handling_seconds / 60 for s in recent if s.handling_seconds is not None]
    handling = _mean(handled) or default_handling_minutes
    return QueueEstimate(
        waiting=waiting,
        waiting_priority=waiting_priority,
        counters=counters,
        average_wait_minutes={c: average_wait_minutes(samples, c, now, rules) for c in Complexity},
        targets_minutes={c: rules.wait_target_minutes(c) for c in Complexity},
        average_handling_minutes=round(handling, 1),
        estimated_wait_minutes=math.ceil(math.ceil(waiting / counters) * handling),
    )


# ---- identities and signed links ------------------------------------------------------------


def person_key(user_id: str, subject_id: str | None) -> str:
    """The person the per-person rules count, without keeping the ID number in a key."""
    basis = f"subject:{subject_id}" if subject_id else f"user:{user_id}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


# What a signed link or code stands for and until when; the signing itself is the platform's
# one token scheme (adapters/signing.py), with the keys kept out of the domain.
CANCEL_LINK_KIND = "booking-cancel"
CHECK_IN_KIND = "check-in"


def cancel_link_claims(booking: Booking) -> tuple[list[str], datetime]:
    """A cancel link names one revision of one booking (a reschedule sends a new one) and is of
    no use once the booking has started."""
    return [booking.booking_id, str(booking.revision)], booking.starts_at


def check_in_claims(center_id: str, day: date) -> tuple[list[str], datetime]:
    """The code the centre's QR poster carries for one day; scanning it proves presence."""
    return [center_id, day.isoformat()], at(day + timedelta(days=1), time(0))


def _duration(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{minutes // 60}小时"
    return f"{minutes}分钟"


def job_of(item: DueItem) -> Job:
    """The timed job a due-index item stands for."""
    return Job(
        job_id=item.subject_id,
        subject_type=item.data["subject_type"],
        subject_id=item.data["subject_id"],
        kind=item.data["kind"],
        revision=int(item.data.get("revision", 0)),
        run_at=item.due_at,
    )
