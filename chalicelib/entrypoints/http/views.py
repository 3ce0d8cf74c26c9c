"""Response models shared by several routes."""

from __future__ import annotations

from pydantic import BaseModel


class ProfileSummary(BaseModel):
    display_name: str
    subject_id: str | None = None
    mobile: str | None = None
    tags: list[str] = []


class MeView(BaseModel):
    user_id: str
    role: str
    display_name: str
    department_id: str | None = None
    profile: ProfileSummary | None = None
