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
    managed_centre_ids: list[str] = Field(
        default_factory=list, description="本人担任值班长的服务中心（窗口人员）"
    )
