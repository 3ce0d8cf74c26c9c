"""The one authorisation module: who may do what, and on whose objects.

Routes and use cases ask `require(principal, action, resource)`; nothing else decides access.
Object-level rules:
- OWN: citizens and enterprises act only on objects they own;
- DEPARTMENT: department staff act only on objects assigned to their department;
- ANY: any holder of an allowed role.
Staff roles listed under `any_object` see every object of that action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.identity import Principal, Role


class Action(StrEnum):
    READ_SELF = "identity.read_self"
    READ_OWN_NOTIFICATIONS = "notifications.read_own"
    VERIFY_AUDIT = "audit.verify"
    READ_AUDIT = "audit.read"
    MANAGE_CALENDAR = "calendar.manage"
    READ_CLOCKS = "clocks.read"
    MANAGE_ESCALATION = "clocks.manage_escalation"
    RUN_JOBS = "jobs.run"


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    # Roles that may act on any object of this action (others are limited to their own).
    any_object: frozenset[Role] = field(default_factory=frozenset)


POLICY: dict[Action, Rule] = {
    Action.READ_SELF: Rule(ALL_ROLES, frozenset()),
    Action.READ_OWN_NOTIFICATIONS: Rule(ALL_ROLES, frozenset()),
    Action.VERIFY_AUDIT: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.ADMIN, Role.SUPERVISOR})
    ),
    Action.READ_AUDIT: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.ADMIN, Role.SUPERVISOR})
    ),
    Action.MANAGE_CALENDAR: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.READ_CLOCKS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.MANAGE_ESCALATION: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.RUN_JOBS: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
}


@dataclass(frozen=True)
class Resource:
    """What a rule needs to know about an object: who owns it and which department handles it."""

    owner_user_id: str | None = None
    owner_subject_id: str | None = None
    department_id: str | None = None


def can(principal: Principal, action: Action, resource: Resource | None = None) -> bool:
    rule = POLICY[action]
    if principal.role not in rule.roles:
        return False
    if resource is None or principal.role in rule.any_object:
        return True
    owns_by_user = (
        resource.owner_user_id is not None and resource.owner_user_id == principal.user_id
    )
    owns_by_subject = (
        resource.owner_subject_id is not None
        and principal.subject_id is not None
        and resource.owner_subject_id == principal.subject_id
    )
    handles_it = (
        principal.role is Role.DEPARTMENT_STAFF
        and resource.department_id is not None
        and resource.department_id == principal.department_id
    )
    return owns_by_user or owns_by_subject or handles_it


def require(principal: Principal, action: Action, resource: Resource | None = None) -> None:
    """Raise Forbidden for a missing role. For someone else's object, raise NotFound:
    the caller must not learn that another person's record exists."""
    rule = POLICY[action]
    if principal.role not in rule.roles:
        raise Forbidden()
    if not can(principal, action, resource):
        raise NotFound()
