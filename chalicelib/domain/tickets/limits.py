"""Ticket limits (the working days to resolve, reopen, extend ...): versioned, each version in
force from a day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.tickets.ticket import Complexity


@dataclass(frozen=True)
class TicketLimits:
    """The ticket limits, in working days, as data (DOMAIN.md: configurable defaults, the
    configuration in data): "1、5、15" (contact 1, simple 5, complex 15), the district office's
    call-back (3), the person's reopen window after a reply (15), the longest extension (15)."""

    contact_days: int = 1
    resolve_simple_days: int = 5
    resolve_complex_days: int = 15
    call_back_days: int = 3
    reopen_window_days: int = 15
    max_extension_days: int = 15

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 60:
                raise InvalidInput(f"时限 {name} 应为1到60个工作日", code="invalid_ticket_limits")

    def resolve_days(self, complexity: Complexity) -> int:
        if complexity is Complexity.COMPLEX:
            return self.resolve_complex_days
        return self.resolve_simple_days

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TicketLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"未知的时限项：{'、'.join(sorted(unknown))}", code="invalid_ticket_limits"
            )
        return cls(**data)


# The seed of the stored rule set (version 1); rules read the stored version in force.
DEFAULT_TICKET_LIMITS = TicketLimits()


@dataclass(frozen=True)
class TicketLimitsVersion:
    """One stored version of the ticket limits; it governs transitions from `effective_from`
    (a China date) until a later version takes effect. Version 0 is the seed, never stored."""

    version: int = 0
    limits: TicketLimits = DEFAULT_TICKET_LIMITS
    effective_from: date | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
    note: str = ""


def limits_in_force(versions: Iterable[TicketLimitsVersion], day: date) -> TicketLimitsVersion:
    """The newest version already in effect on `day`; the seed when none is."""
    in_force = [v for v in versions if v.effective_from is None or v.effective_from <= day]
    return max(in_force, key=lambda v: v.version, default=TicketLimitsVersion())


def next_limits_version(
    latest: TicketLimitsVersion,
    limits: TicketLimits,
    *,
    effective_from: date,
    by: str,
    now: datetime,
    note: str = "",
) -> TicketLimitsVersion:
    """The next version. It cannot take effect in the past: clocks already started keep the
    limit they started with, and a retroactive change would make reports disagree with them."""
    today = now.astimezone(CHINA_TZ).date()
    if effective_from < today:
        raise InvalidInput("生效日期不能早于今天", code="invalid_effective_from")
    if latest.effective_from is not None and effective_from < latest.effective_from:
        raise InvalidInput(
            f"生效日期不能早于上一版（第{latest.version}版）的生效日期 {latest.effective_from}",
            code="invalid_effective_from",
        )
    return TicketLimitsVersion(
        version=latest.version + 1,
        limits=limits,
        effective_from=effective_from,
        updated_by=by,
        updated_at=now,
        note=note.strip(),
    )
