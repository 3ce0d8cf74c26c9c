"""Who am I: `GET /me`. Local stage only: demo users and dev tokens (`/dev/...`)."""

from chalice import Blueprint
from pydantic import ConfigDict, Field

from chalicelib.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from chalicelib.domain.identity import Role
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.views import MeView, ProfileSummary

bp = Blueprint(__name__)
dev_bp = Blueprint(__name__ + ".dev")


@api_route(
    bp,
    "/me",
    summary="当前登录人身份与档案摘要",
    tags=("identity",),
    response=MeView,
    errors=(Forbidden, InvalidInput, NotFound),
)
def me(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.identity import load_own_profile

    principal = call.user
    profile = load_own_profile(principal, container().directory)
    # The owner sees their own data unmasked; views of a person for anyone else are masked.
    summary = None
    if profile is not None:
        summary = ProfileSummary(
            display_name=profile.display_name,
            subject_id=profile.subject_id,
            mobile=profile.mobile,
            tags=sorted(profile.tags),
        )
    return MeView(
        user_id=principal.user_id,
        role=principal.role.value,
        display_name=principal.display_name or (profile.display_name if profile else ""),
        department_id=principal.department_id,
        profile=summary,
        managed_centre_ids=_managed_centres(principal),
    )


def _managed_centres(principal) -> list[str]:
    # Only window staff can manage a centre: nobody else pays for the booking dependencies.
    if principal.role is not Role.WINDOW_STAFF:
        return []
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.bookings.centres import centres_managed_by
    from chalicelib.service_layer.bookings.common import BookingDeps

    return centres_managed_by(BookingDeps.from_container(container()), principal)


class DemoUserView(ApiModel):
    user_id: str
    role: str
    display_name: str
    department_id: str | None = None
    description: str = ""


class DemoUsersView(ApiModel):
    items: list[DemoUserView]
    next_cursor: str | None = None


class DevTokenRequest(ApiModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=64)


class DevTokenView(ApiModel):
    token: str
    token_type: str = "Bearer"
    expires_in: int
    user: DemoUserView


@api_route(
    dev_bp,
    "/dev/users",
    summary="（仅本地）演示用户列表",
    tags=("dev",),
    query=PageQuery,
    response=DemoUsersView,
    public=True,
    local_only=True,
    errors=(InvalidInput, Unauthenticated),
)
def dev_users(call: Call):
    """Every account the local seed made (people, firms, staff of every centre), a page at a
    time: whoever can get a token is listed."""
    from chalicelib.bootstrap import container

    users, last_key = container().directory.list_users(
        call.query.limit, decode_cursor(call.query.cursor)
    )
    users.sort(key=lambda u: (u.role.value, u.user_id))
    return DemoUsersView(items=[_demo_view(u) for u in users], next_cursor=encode_cursor(last_key))


@api_route(
    dev_bp,
    "/dev/tokens",
    method="POST",
    summary="（仅本地）为演示用户签发登录凭证",
    tags=("dev",),
    body=DevTokenRequest,
    response=DevTokenView,
    public=True,
    local_only=True,
    status=201,
    errors=(NotFound,),
)
def dev_token(call: Call):
    from chalicelib.bootstrap import container

    c = container()
    user = c.directory.get_user(call.body.user_id)
    if user is None:
        raise NotFound("演示用户不存在", code="user_not_found")
    token = c.dev_token_issuer.issue(user.principal(), c.clock.now())
    return DevTokenView(
        token=token, expires_in=c.settings.dev_token_ttl_seconds, user=_demo_view(user)
    )


def _demo_view(user) -> DemoUserView:
    return DemoUserView(
        user_id=user.user_id,
        role=user.role.value,
        display_name=user.display_name,
        department_id=user.department_id,
        description=user.description,
    )
