"""Who is calling: roles and the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    CITIZEN = "citizen"
    ENTERPRISE = "enterprise"
    WINDOW_STAFF = "window_staff"
    DEPARTMENT_STAFF = "department_staff"
    DISPATCHER = "dispatcher"  # 区政务服务中心
    SUPERVISOR = "supervisor"  # 区政务办
    ADMIN = "admin"


PUBLIC_ROLES = frozenset({Role.CITIZEN, Role.ENTERPRISE})
STAFF_ROLES = frozenset(set(Role) - PUBLIC_ROLES)


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    display_name: str = ""
    department_id: str | None = None
    # The person (ID number) or organisation (统一社会信用代码) the caller acts as, if any.
    subject_id: str | None = None
    # Acting for `subject_id` under an authorisation (多级授权) rather than as oneself: which
    # one, and the items it covers (None: all items).
    authorisation_id: str | None = None
    authorised_items: frozenset[str] | None = None

    @property
    def is_public(self) -> bool:
        return self.role in PUBLIC_ROLES

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


SYSTEM = Principal(user_id="system", role=Role.ADMIN, display_name="系统")
