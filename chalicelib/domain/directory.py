"""People and departments as the rest of the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain.identity import Principal, Role


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    role: Role
    display_name: str
    department_id: str | None = None
    # ID number (person) or 统一社会信用代码 (enterprise) the account acts as.
    subject_id: str | None = None
    mobile: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    description: str = ""

    def principal(self) -> Principal:
        return Principal(
            user_id=self.user_id,
            role=self.role,
            display_name=self.display_name,
            department_id=self.department_id,
            subject_id=self.subject_id,
        )


@dataclass(frozen=True)
class Department:
    department_id: str
    name: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
