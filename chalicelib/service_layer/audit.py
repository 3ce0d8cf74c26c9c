"""Recording state changes: the one helper every capability calls after it changes something.

`record_change` writes the change's audit fact (in the request's one batch of facts, see
`DynamoAuditLog.unit_of_work`); chaining it into the tamper-evident chains happens later, off
the request path, in the audit-facts stream consumer.
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.audit import AuditEntry, AuditFact
from chalicelib.domain.identity import Principal


class AuditLog(Protocol):
    def append(self, entry: AuditEntry, *, fact_id: str | None = None) -> AuditFact: ...


def record_change(
    audit_log: AuditLog,
    principal: Principal,
    action: str,
    subject_type: str,
    subject_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    *,
    correlation_id: str | None = None,
) -> AuditFact:
    """Record who (the principal's id and role) did `action` to the subject, with before/after.

    The correlation id defaults to the current request's or message's (the store fills it in).
    A principal acting under an authorisation is recorded with whom it acted for.
    """
    if principal.authorisation_id is not None:
        # Only then: an entry without details stays without them (its stored hash covers that).
        details = dict(details or {})
        details.setdefault("on_behalf_of", principal.subject_id)
        details.setdefault("authorisation_id", principal.authorisation_id)
    entry = AuditEntry(
        actor_id=principal.user_id,
        actor_role=principal.role.value,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        before=before,
        after=after,
        correlation_id=correlation_id,
        details=dict(details or {}),
    )
    return audit_log.append(entry)
