"""Centres, their services and the seats still free in each slot of a day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from chalicelib.domain.bookings.centres import (
    CHANNEL_LABELS,
    Center,
    Channel,
    Service,
    Slot,
    service_id,
    slots_of,
)
from chalicelib.domain.bookings.rules import BookingRules, check_booking_day, priority_released
from chalicelib.domain.errors import InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import Principal, Role
from chalicelib.service_layer.bookings.common import BookingDeps, Page, _check_id


def list_centers(
    deps: BookingDeps, kind: str | None, limit: int, start_key: dict[str, Any] | None
) -> Page:
    page = deps.store.list_centers(kind, limit, start_key)
    return Page(page.items, page.last_key)


# Centres are a short catalogue (district, sub-centres, communities): a few pages at most.
_MANAGED_PAGE = 100
_MANAGED_PAGES = 10


def centres_managed_by(deps: BookingDeps, principal: Principal) -> list[str]:
    """The centres whose manager (值班长) `principal` is: window staff only, a bounded walk of
    the catalogue."""
    if principal.role is not Role.WINDOW_STAFF:
        return []
    managed: list[str] = []
    start_key: dict[str, Any] | None = None
    for _ in range(_MANAGED_PAGES):
        page = deps.store.list_centers(None, _MANAGED_PAGE, start_key)
        managed += [c.center_id for c in page.items if c.manager_id == principal.user_id]
        start_key = page.last_key
        if start_key is None:
            break
    return managed


def get_center(deps: BookingDeps, center_id: str) -> Center:
    _check_id(center_id, "center_not_found", "服务中心不存在")
    center = deps.store.get_center(center_id)
    if center is None:
        raise NotFound("服务中心不存在", code="centre_not_found")
    return center


def center_detail(deps: BookingDeps, center_id: str) -> tuple[Center, list[Service]]:
    center = get_center(deps, center_id)
    return center, deps.store.services_of(center_id)


def _center_and_service(
    deps: BookingDeps, center_id: str, item_id: str, channel: Channel
) -> tuple[Center, Service]:
    center = get_center(deps, center_id)
    service = deps.store.get_service(center_id, service_id(item_id, channel))
    if service is None:
        _refuse_unknown_item(deps, item_id)
        raise NotFound(
            f"{center.name}不提供该事项的{CHANNEL_LABELS[Channel(channel)]}预约",
            code="service_not_offered",
        )
    return center, service


def _refuse_unknown_item(deps: BookingDeps, code: str) -> None:
    """An item the guide does not know is a bad request, not a service the centre lacks."""
    if deps.items is not None and deps.items.latest_item(code) is None:
        raise InvalidInput(
            f"办事事项 {code} 不存在，请填写办事指南中的事项编码", code="item_not_found"
        )


@dataclass(frozen=True)
class SlotAvailability:
    slot: Slot
    seats: int
    free_general: int
    free_held: int  # held back for elderly and disabled people
    held_released: bool  # held-back seats are open to everybody now

    def free_for(self, priority: bool) -> int:
        if priority or self.held_released:
            return self.free_general + self.free_held
        return self.free_general


@dataclass(frozen=True)
class DaySlots:
    center: Center
    day: date
    open: bool  # a working day
    bookable: bool  # inside the booking window
    services: list[tuple[Service, list[SlotAvailability]]] = field(default_factory=list)


def day_slots(
    deps: BookingDeps, center_id: str, item_id: str, day: date, channel: Channel | None
) -> DaySlots:
    """Every slot of the item at the centre on `day`, with the seats still free."""
    center = get_center(deps, center_id)
    services = [
        s
        for s in deps.store.services_of(center_id)
        if s.item_id == item_id and (channel is None or s.channel is Channel(channel))
    ]
    if not services:
        _refuse_unknown_item(deps, item_id)
        raise NotFound(f"{center.name}不提供该事项的预约", code="service_not_offered")
    now, rules, calendar = deps.clock.now(), deps.rules(), deps.calendar()
    is_open = calendar.is_working_day(day)
    try:
        check_booking_day(rules, calendar, now, day)
        bookable = True
    except RuleViolation:
        bookable = False
    result = DaySlots(center, day, is_open, bookable)
    if not is_open:
        return result
    for service in services:
        taken = deps.store.seats_taken(center_id, service.service_id, day)
        result.services.append(
            (
                service,
                [
                    _availability(service, s, taken, now, rules)
                    for s in slots_of(center, service, day)
                ],
            )
        )
    return result


def _availability(
    service: Service,
    slot: Slot,
    taken: dict[str, dict[int, str]],
    now: datetime,
    rules: BookingRules,
) -> SlotAvailability:
    held_by = taken.get(slot.label, {})
    general = sum(1 for n in range(service.general_seats) if n not in held_by)
    held = sum(1 for n in range(service.general_seats, service.seats) if n not in held_by)
    return SlotAvailability(slot, service.seats, general, held, priority_released(slot, now, rules))
