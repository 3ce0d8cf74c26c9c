"""The booking rules (data an admin may change) and the decisions they make on a booking."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.domain.bookings.centres import (
    Center,
    CenterKind,
    Channel,
    Complexity,
    Service,
    Slot,
    today_of,
)
from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.errors import InvalidInput, RuleViolation

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
