"""Fakes shared by every capability: the notifier, the audit log and the directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.audit import AuditEntry, AuditFact
from chalicelib.domain.directory import Department, UserProfile
from chalicelib.domain.notifications import NotificationRequest
from chalicelib.service_layer.audit import AuditLog
from chalicelib.service_layer.notify import Notifier
from chalicelib.service_layer.ports import Directory


@dataclass
class RecordingNotifier:
    """Records every notify call: a duplicate call is a failure even though an outbox would
    swallow it. `fail_keys` makes the store fail for those business keys; `on_notify` runs once,
    on the next call (to interleave another actor there)."""

    calls: list[NotificationRequest] = field(default_factory=list)
    fail_keys: set[str] = field(default_factory=set)
    on_notify: Callable[[NotificationRequest], object] | None = None

    def notify(self, request: NotificationRequest) -> tuple[str, bool]:
        if request.business_key in self.fail_keys:
            raise RuntimeError("notification store unavailable")
        self.calls.append(request)
        if self.on_notify is not None:
            hook, self.on_notify = self.on_notify, None
            hook(request)
        return request.business_key, True

    def keys(self) -> list[str]:
        return [r.business_key for r in self.calls]


@dataclass
class RecordingAuditLog:
    """Keeps the entries in order; `now` stamps the facts (the test's injected clock)."""

    now: Callable[[], datetime]
    entries: list[AuditEntry] = field(default_factory=list)
    facts: dict[str, AuditFact] = field(default_factory=dict)

    def append(self, entry: AuditEntry, *, fact_id: str | None = None) -> AuditFact:
        """A fact id already recorded is the same fact (the facts table is keyed by it)."""
        if fact_id is not None and fact_id in self.facts:
            return self.facts[fact_id]
        self.entries.append(entry)
        fact = AuditFact(fact_id or f"fact-{len(self.entries)}", self.now().isoformat(), entry)
        self.facts[fact.fact_id] = fact
        return fact

    def actions(self) -> list[str]:
        return [e.action for e in self.entries]


@dataclass
class InMemoryDirectory:
    users: dict[str, UserProfile] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)

    def get_user(self, user_id: str) -> UserProfile | None:
        return self.users.get(user_id)

    def put_user(self, user: UserProfile) -> None:
        self.users[user.user_id] = user

    def list_users(
        self, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[UserProfile], dict[str, Any] | None]:
        ordered = sorted(self.users)
        after = start_key["user_id"] if start_key else None
        remaining = [u for u in ordered if after is None or u > after]
        page = remaining[:limit]
        more = len(remaining) > limit
        return [self.users[u] for u in page], ({"user_id": page[-1]} if more else None)

    def get_department(self, department_id: str) -> Department | None:
        return self.departments.get(department_id)

    def put_department(self, department: Department) -> None:
        self.departments[department.department_id] = department


def _checked() -> tuple[Notifier, AuditLog, Directory]:
    return RecordingNotifier(), RecordingAuditLog(datetime.now), InMemoryDirectory()
