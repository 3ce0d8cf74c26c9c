"""Response models shared by several routes."""

from pydantic import Field

from chalicelib.entrypoints.http.schema import ApiModel


class ProfileSummary(ApiModel):
    display_name: str
    subject_id: str | None = None
    mobile: str | None = None
    tags: list[str] = Field(default_factory=list)


class MeView(ApiModel):
    user_id: str
    role: str
    display_name: str
    department_id: str | None = None
    profile: ProfileSummary | None = None
