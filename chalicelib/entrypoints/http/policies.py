"""Policy benefits over HTTP: the public policy list, staff drafting and approval, 政策体检,
免申即享 grants (confirm / decline), push preferences and the shared-data profile update."""

import re
from typing import Any, Literal

from chalice import Blueprint
from pydantic import AliasChoices, ConfigDict, Field

from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
)
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Count, Day, DayOrNever, Money, SubjectId, Tag, Text

bp = Blueprint(__name__)

_TAGS = ("policies",)
_SLUG = r"^[A-Za-z0-9_\-]{1,64}$"
_GRANT_ID = re.compile(r"^g[0-9a-f]{24}$")
_SUBJECT = r"^[0-9A-Z]{18}$"


class PolicyBody(ApiModel):
    title: Text(200, min_length=1)
    department_id: str = Field(pattern=_SLUG)
    effective_from: Day
    effective_to: Day | None = None
    legal_ref: Text(300, min_length=1) = Field(description="政策依据（文号）")
    benefit: Text(300) = Field(default="", description="兑现内容")
    amount: int | None = Field(default=None, ge=0, le=100_000_000, description="金额（元）")
    benefit_key: str | None = Field(
        default=None, pattern=_SLUG, description="同一待遇标识：同一主体只兑现一次"
    )
    mode: Literal["direct", "confirm", "apply"] = Field(
        description="direct 直接兑现；confirm 确认兑现；apply 快申（需申报）"
    )
    conditions: dict[str, Any] = Field(description="适用条件（声明式规则，保存时校验）")
    subject_kind: Literal["enterprise", "person"] = "enterprise"
    item_code: str | None = Field(
        default=None,
        pattern=_SLUG,
        validation_alias=AliasChoices("item_code", "service_item_code"),
        description="快申对应的办事指南事项编码",
    )
    tags: list[Tag] = Field(default=[], max_length=20)
    summary: Text(2000, multiline=True) = ""


class NewPolicyBody(PolicyBody):
    policy_id: str | None = Field(default=None, pattern=_SLUG)


class PolicyPatch(ApiModel):
    title: Text(200, min_length=1) | None = None
    department_id: str | None = Field(default=None, pattern=_SLUG)
    effective_from: Day | None = None
    effective_to: Day | None = None
    legal_ref: Text(300, min_length=1) | None = None
    benefit: Text(300) | None = None
    amount: int | None = Field(default=None, ge=0, le=100_000_000)
    benefit_key: str | None = Field(default=None, pattern=_SLUG)
    mode: Literal["direct", "confirm", "apply"] | None = None
    conditions: dict[str, Any] | None = None
    subject_kind: Literal["enterprise", "person"] | None = None
    item_code: str | None = Field(
        default=None,
        pattern=_SLUG,
        validation_alias=AliasChoices("item_code", "service_item_code"),
        description="快申对应的办事指南事项编码",
    )
    tags: list[Tag] | None = Field(default=None, max_length=20)
    summary: Text(2000, multiline=True) | None = None


class VersionView(ApiModel):
    policy_id: str
    version: int
    title: str
    department_id: str
    effective_from: str
    effective_to: str | None
    legal_ref: str
    benefit: str
    amount: int | None
    benefit_key: str
    mode: str
    mode_label: str
    conditions: dict[str, Any]
    subject_kind: str
    item_code: str | None
    tags: list[str]
    summary: str
    state: str
    published_at: str | None = None
    retired_at: str | None = None


class PolicySummary(ApiModel):
    policy_id: str
    title: str
    department_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    mode: str | None = None
    subject_kind: str | None = None
    published_version: int | None = None


class PolicyPage(ApiModel):
    items: list[PolicySummary]
    next_cursor: str | None = None


class PolicyDetail(PolicySummary):
    versions: list[VersionView]


class CheckupQuery(ApiModel):
    as_of: Day | None = Field(default=None, description="体检日期，默认今天")
    subject: SubjectId | None = Field(
        default=None, pattern=_SUBJECT, description="主体（工作人员代查）"
    )


class CheckupView(ApiModel):
    subject_id: str
    as_of: str
    eligible_exempt: list[dict[str, Any]] = Field(description="符合条件，免申即享")
    eligible_quick_apply: list[dict[str, Any]] = Field(description="符合条件，快申（已预填）")
    not_eligible: list[dict[str, Any]] = Field(description="不符合条件及原因")
    unknown: list[dict[str, Any]] = Field(description="数据不足，列出缺少的数据")


class GrantView(ApiModel):
    grant_id: str
    policy_id: str
    version: int
    title: str
    benefit: str
    amount: int | None
    mode: str
    state: str
    state_label: str
    created_at: str
    confirm_due: str | None
    payment_ref: str | None
    paid_at: str | None
    trace: dict[str, Any]


class GrantPage(ApiModel):
    items: list[GrantView]
    next_cursor: str | None = None


class PreferencesBody(ApiModel):
    default: bool = Field(default=True, description="未单独设置的标签是否推送")
    tags: dict[Tag, bool] = Field(default={}, max_length=50, description="按标签订阅（true）或退订")


class PreferencesView(PreferencesBody):
    pass


class ProfileBody(ApiModel):
    """Fields to change; dates of adverse records are ISO dates or "never"."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    kind: Literal["person", "enterprise"] | None = None
    name: Text(200, min_length=1) | None = None
    industry: Text(100) | None = None
    registered_capital: Money | None = None
    founded_on: Day | None = None
    tax_status: Text(32) | None = None
    credit_status: Literal["good", "bad", "serious_bad"] | None = None
    address: Text(300) | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    registered_in_qingpu: bool | None = None
    tax_in_qingpu: bool | None = None
    tax_credit_rating: Literal["A", "B", "M", "C", "D"] | None = None
    last_major_violation_on: DayOrNever | None = None
    serious_dishonesty_listed_on: DayOrNever | None = None
    abnormal_operation_listed_on: DayOrNever | None = None
    duplicate_subsidy_found_on: DayOrNever | None = None
    employees: Count | None = None
    annual_revenue: Money | None = None
    household_in_qingpu: bool | None = None
    talent_level: Text(16) | None = None
    disabled: bool | None = None


class ProfileView(ApiModel):
    subject_id: str
    kind: str
    name: str
    updated_fields: list[str]


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.policies import PolicyDeps

    return PolicyDeps.from_container(container())


def _version_view(version: Any) -> dict[str, Any]:
    data = version.to_dict()
    data["mode_label"] = version.mode_label
    data["item_code"] = data.pop("service_item_code", None)
    return data


def _fields(body: Any, **options: Any) -> dict[str, Any]:
    """A policy body as the use cases name its fields."""
    fields = body.model_dump(mode="json", **options)
    if "item_code" in fields:
        fields["service_item_code"] = fields.pop("item_code")
    return fields


def _grant_view(grant: Any) -> dict[str, Any]:
    return {**grant.to_dict(), "state_label": grant.state_label}


def _grant_id(grant_id: str) -> str:
    from chalicelib.domain.errors import NotFound

    if not _GRANT_ID.match(grant_id):
        raise NotFound("兑现记录不存在", code="grant_not_found")
    return grant_id


def _number(version: str) -> int:
    from chalicelib.domain.errors import NotFound

    if not version.isdigit() or len(version) > 6:
        raise NotFound("政策版本不存在", code="policy_version_not_found")
    return int(version)


# ---- public ---------------------------------------------------------------------------------


@api_route(
    bp,
    "/policies",
    summary="政策目录：已发布的惠企惠民政策",
    tags=_TAGS,
    query=PageQuery,
    response=PolicyPage,
    public=True,
    errors=(InvalidInput, Unauthenticated),
)
def list_policies(call: Call):
    page = _deps().store.list_policies(call.query.limit, decode_cursor(call.query.cursor))
    return {"items": page.items, "next_cursor": encode_cursor(page.last_key)}


@api_route(
    bp,
    "/policies/{policy_id}",
    summary="政策详情：已发布版本（生效期、依据、条件、兑现方式）",
    tags=_TAGS,
    response=PolicyDetail,
    public=True,
    errors=(InvalidInput, NotFound),
)
def read_policy(call: Call, policy_id: str):
    from chalicelib.service_layer.policies import read_policy as read

    head, versions = read(_deps(), policy_id)
    return {**head, "versions": [_version_view(v) for v in versions]}


# ---- staff ----------------------------------------------------------------------------------


@api_route(
    bp,
    "/policies",
    method="POST",
    summary="起草政策（部门工作人员）：第1版草稿，适用条件保存时校验",
    tags=_TAGS,
    body=NewPolicyBody,
    response=VersionView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def draft_policy(call: Call):
    from chalicelib.service_layer.policies import draft_policy as draft

    return _version_view(draft(_deps(), call.user, _fields(call.body)))


@api_route(
    bp,
    "/policies/{policy_id}/versions",
    method="POST",
    summary="起草新版本（在最新版本基础上修改）",
    tags=_TAGS,
    body=PolicyPatch,
    response=VersionView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def draft_version(call: Call, policy_id: str):
    from chalicelib.service_layer.policies import new_version

    fields = _fields(call.body, exclude_unset=True)
    return _version_view(new_version(_deps(), call.user, policy_id, fields))


@api_route(
    bp,
    "/policies/{policy_id}/versions/{version}",
    summary="政策版本（含草稿，工作人员）",
    tags=_TAGS,
    response=VersionView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_version(call: Call, policy_id: str, version: str):
    from chalicelib.service_layer.policies import read_version_for_staff

    return _version_view(read_version_for_staff(_deps(), call.user, policy_id, _number(version)))


@api_route(
    bp,
    "/policies/{policy_id}/versions/{version}",
    method="PUT",
    summary="修改草稿",
    tags=_TAGS,
    body=PolicyPatch,
    response=VersionView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def update_version(call: Call, policy_id: str, version: str):
    from chalicelib.service_layer.policies import update_draft

    fields = _fields(call.body, exclude_unset=True)
    return _version_view(update_draft(_deps(), call.user, policy_id, _number(version), fields))


@api_route(
    bp,
    "/policies/{policy_id}/versions/{version}/publish",
    method="POST",
    summary="发布（区政务办审核）：启动全量主体匹配，符合条件者免申即享",
    tags=_TAGS,
    response=VersionView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def publish(call: Call, policy_id: str, version: str):
    from chalicelib.service_layer.policies import publish_version

    return _version_view(publish_version(_deps(), call.user, policy_id, _number(version)))


@api_route(
    bp,
    "/policies/{policy_id}/versions/{version}/retire",
    method="POST",
    summary="废止政策版本",
    tags=_TAGS,
    response=VersionView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def retire(call: Call, policy_id: str, version: str):
    from chalicelib.service_layer.policies import retire_version

    return _version_view(retire_version(_deps(), call.user, policy_id, _number(version)))


@api_route(
    bp,
    "/policies/{policy_id}/versions/{version}/match",
    summary="全量匹配进度（各分片是否完成、已匹配主体数）",
    tags=_TAGS,
    errors=(InvalidInput, Forbidden, NotFound),
)
def match_progress(call: Call, policy_id: str, version: str):
    from chalicelib.service_layer.authorization import Action, require
    from chalicelib.service_layer.policies import match_progress as progress

    require(call.user, Action.PUBLISH_POLICY)
    return progress(_deps(), policy_id, _number(version))


# ---- the subject ----------------------------------------------------------------------------


@api_route(
    bp,
    "/me/policy-checkup",
    summary="政策体检：符合（免申/快申）、不符合（原因）、无法判断（缺少数据）",
    description="企业或个人查本主体；窗口等工作人员可用 subject 参数代查。",
    tags=_TAGS,
    query=CheckupQuery,
    response=CheckupView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def policy_checkup(call: Call):
    from chalicelib.service_layer.policies import checkup

    return checkup(_deps(), call.user, call.query.subject, call.query.as_of)


@api_route(
    bp,
    "/me/grants",
    summary="我的免申即享兑现记录",
    tags=_TAGS,
    query=PageQuery,
    response=GrantPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_grants(call: Call):
    from chalicelib.service_layer.policies import my_grants as grants

    page = grants(_deps(), call.user, call.query.limit, decode_cursor(call.query.cursor))
    return {
        "items": [_grant_view(g) for g in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/grants/{grant_id}/confirm",
    method="POST",
    summary="确认兑现（确认后进入拨付）",
    tags=_TAGS,
    response=GrantView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def confirm(call: Call, grant_id: str):
    from chalicelib.service_layer.policies import confirm_grant

    return _grant_view(confirm_grant(_deps(), call.user, _grant_id(grant_id)))


@api_route(
    bp,
    "/grants/{grant_id}/decline",
    method="POST",
    summary="放弃兑现",
    tags=_TAGS,
    response=GrantView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def decline(call: Call, grant_id: str):
    from chalicelib.service_layer.policies import decline_grant

    return _grant_view(decline_grant(_deps(), call.user, _grant_id(grant_id)))


@api_route(
    bp,
    "/me/push-preferences",
    summary="政策推送偏好（按标签订阅或退订）",
    tags=_TAGS,
    response=PreferencesView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_preferences(call: Call):
    from chalicelib.service_layer.policies import preferences

    return preferences(_deps(), call.user)


@api_route(
    bp,
    "/me/push-preferences",
    method="PUT",
    summary="设置政策推送偏好",
    tags=_TAGS,
    body=PreferencesBody,
    response=PreferencesView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def write_preferences(call: Call):
    from chalicelib.service_layer.policies import set_preferences

    return set_preferences(_deps(), call.user, call.body.default, call.body.tags)


# ---- shared data ----------------------------------------------------------------------------


@api_route(
    bp,
    "/profiles/{subject_id}",
    method="PUT",
    summary="更新主体档案（数据共享，管理员）：变更后重新匹配该主体的政策",
    tags=_TAGS,
    body=ProfileBody,
    response=ProfileView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def update_profile(call: Call, subject_id: str):
    from chalicelib.domain.errors import NotFound
    from chalicelib.service_layer.policies import update_profile as update

    if not re.match(_SUBJECT, subject_id):
        raise NotFound("未找到该主体的档案", code="profile_not_found")
    fields = _fields(call.body, exclude_unset=True)
    profile = update(_deps(), call.user, subject_id, fields)
    return {
        "subject_id": profile.subject_id,
        "kind": profile.kind,
        "name": profile.name,
        "updated_fields": sorted(fields),
    }
