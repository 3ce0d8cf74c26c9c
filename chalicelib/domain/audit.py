"""Audit trail: what every state change records. (Hash chaining and verification: see below.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    """One state change: who (id and role) did what to which subject, with before/after."""

    actor_id: str
    actor_role: str
    action: str  # e.g. "calendar.year_loaded", "notification.created"
    subject_type: str  # e.g. "ticket", "clock", "calendar_year"
    subject_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    correlation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
