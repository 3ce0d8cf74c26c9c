"""The wallet over HTTP: my e-licences, shown codes (亮证亮码, 一人一码/一企一码) and their
verification, the public keys that verify them offline, authorisations (多级授权) and the
materials library."""

import re
from datetime import datetime
from typing import Any, Literal

from chalice import Blueprint
from pydantic import Field

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
from chalicelib.entrypoints.http.types import Moment, SubjectId, Text

bp = Blueprint(__name__)

_TAGS = ("wallet",)
_LICENCE_ID = re.compile(r"^[0-9a-f]{24}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_ITEM = r"^(\*|[A-Za-z0-9_\-]{1,64})$"
_USER = r"^[A-Za-z0-9_\-]{1,64}$"

LicenceField = Literal["type", "number", "holder_name", "holder_id", "valid_from", "valid_until"]
SubjectField = Literal["name", "kind", "subject_id"]


class LicenceView(ApiModel):
    licence_id: str
    type: str
    number: str
    holder_id: str
    holder_name: str
    valid_from: str
    valid_until: str | None = Field(description="空：长期有效")
    status: Literal["valid", "expiring", "expired", "revoked", "not_yet_valid"] = Field(
        description="valid 有效；expiring 30天内到期；expired 已过期；revoked 已注销；"
        "not_yet_valid 尚未生效"
    )
    days_left: int | None = Field(description="距到期天数（长期有效为空）")
    issued_for: str | None = Field(default=None, description="签发此证照的办件")


class LicencePage(ApiModel):
    items: list[LicenceView]
    next_cursor: str | None = None


class LicencePresentationBody(ApiModel):
    fields: list[LicenceField] = Field(min_length=1, max_length=6, description="选择披露的字段")
    ttl_seconds: int | None = Field(default=None, ge=30, le=1800, description="有效秒数，默认300")


class SubjectPresentationBody(ApiModel):
    fields: list[SubjectField] = Field(min_length=1, max_length=3, description="选择披露的字段")
    ttl_seconds: int | None = Field(default=None, ge=30, le=1800, description="有效秒数，默认300")


class PresentationView(ApiModel):
    presentation_id: str
    code: str = Field(description="签名码（Ed25519 JWS），用于生成二维码")
    kind: Literal["licence", "subject"]
    fields: dict[str, Any] = Field(description="本码披露的字段")
    expires_at: str
    key_set: str = Field(description="验证公钥（JWK Set）地址")


class VerifyBody(ApiModel):
    code: str = Field(min_length=1, max_length=4096)


class VerificationView(ApiModel):
    result: Literal["valid", "expired", "revoked", "invalid"]
    kind: str | None = None
    fields: dict[str, Any] | None = Field(
        default=None, description="仅在有效时给出，且仅含持有人选择披露的字段"
    )
    expires_at: str | None = None


class JwkView(ApiModel):
    kty: str
    crv: str
    alg: str
    use: str
    kid: str
    x: str


class JwkSetView(ApiModel):
    keys: list[JwkView]


class AuthorisationBody(ApiModel):
    agent_user_id: str = Field(pattern=_USER, description="被授权人（员工或家人）的账号")
    items: list[str] = Field(
        min_length=1, max_length=50, description='授权事项编码；["*"] 表示全部事项'
    )
    valid_from: Moment | None = Field(default=None, description="默认立即生效")
    valid_until: Moment
    may_sub_authorise: bool = Field(default=False, description="是否允许转授权")
    subject_id: SubjectId | None = Field(
        default=None, description="被代理的企业或个人；默认本人（转授权时填所代理的主体）"
    )


class AuthorisationView(ApiModel):
    authorisation_id: str
    subject_id: str
    grantor_user_id: str
    agent_user_id: str
    items: list[str]
    valid_from: str
    valid_until: str
    may_sub_authorise: bool
    parent_id: str | None
    status: Literal["active", "pending", "expired", "revoked"]
    created_at: str
    revoked_at: str | None = None


class AuthorisationPage(ApiModel):
    items: list[AuthorisationView]
    next_cursor: str | None = None


class AuthorisationQuery(PageQuery):
    role: Literal["granted", "received"] = Field(
        default="granted", description="granted：本人或本企业授出的；received：本人获得的"
    )


class LibraryMaterialView(ApiModel):
    code: str
    content_hash: str
    file_name: str
    file_type: str
    valid_until: str | None
    source: str = Field(description="来源办件：application:<办件编号>")
    source_item_code: str
    accepted_at: str
    usable: bool = Field(description="可用于免于提交（未过期、未撤销）")


class LibraryPage(ApiModel):
    items: list[LibraryMaterialView]
    next_cursor: str | None = None


class LicenceRevocationBody(ApiModel):
    subject_id: SubjectId
    licence_id: str = Field(
        min_length=1, max_length=64, description="证照编号（钱包中的 licence_id）"
    )
    reason: Text(200, min_length=1)


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.wallet import WalletDeps

    return WalletDeps.from_container(container())


def _licence_view(entry: Any) -> dict[str, Any]:
    lic = entry.licence
    return {
        "licence_id": entry.licence_id,
        "type": lic.type,
        "number": lic.number,
        "holder_id": lic.holder_id,
        "holder_name": lic.holder_name,
        "valid_from": lic.valid_from,
        "valid_until": lic.valid_until,
        "status": entry.status.value,
        "days_left": entry.days_left,
        "issued_for": lic.issued_for,
    }


def _licence_id(value: str) -> str:
    if not _LICENCE_ID.match(value):
        raise NotFound("证照不存在", code="licence_not_found")
    return value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _presentation_view(issued: Any) -> dict[str, Any]:
    p = issued.presentation
    return {
        "presentation_id": p.presentation_id,
        "code": issued.code,
        "kind": p.kind.value,
        "fields": issued.disclosed,
        "expires_at": p.expires_at.isoformat(),
        "key_set": "/.well-known/jwks.json",
    }


def _authorisation_view(a: Any, now: datetime) -> dict[str, Any]:
    return {
        "authorisation_id": a.authorisation_id,
        "subject_id": a.subject_id,
        "grantor_user_id": a.grantor_user_id,
        "agent_user_id": a.agent_user_id,
        "items": list(a.items),
        "valid_from": a.valid_from.isoformat(),
        "valid_until": a.valid_until.isoformat(),
        "may_sub_authorise": a.may_sub_authorise,
        "parent_id": a.parent_id,
        "status": a.status(now),
        "created_at": a.created_at.isoformat(),
        "revoked_at": _iso(a.revoked_at),
    }


# ---- the wallet ---------------------------------------------------------------------------


@api_route(
    bp,
    "/me/licences",
    summary="我的电子证照（有效、30天内到期、已过期、已注销）",
    tags=_TAGS,
    query=PageQuery,
    response=LicencePage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_licences(call: Call):
    from chalicelib.service_layer.wallet import list_licences

    page = list_licences(_deps(), call.user, call.query.limit, decode_cursor(call.query.cursor))
    return {
        "items": [_licence_view(e) for e in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/me/licences/{licence_id}",
    summary="电子证照详情与状态",
    tags=_TAGS,
    response=LicenceView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def my_licence(call: Call, licence_id: str):
    from chalicelib.service_layer.wallet import get_licence

    return _licence_view(get_licence(_deps(), call.user, _licence_id(licence_id)))


@api_route(
    bp,
    "/me/licences/{licence_id}/presentations",
    method="POST",
    summary="亮证：生成仅披露所选字段的短时签名码",
    tags=_TAGS,
    body=LicencePresentationBody,
    response=PresentationView,
    status=201,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def present_licence(call: Call, licence_id: str):
    from chalicelib.service_layer.wallet import present_licence as present

    body: LicencePresentationBody = call.body
    issued = present(
        _deps(), call.user, _licence_id(licence_id), list(body.fields), body.ttl_seconds
    )
    return _presentation_view(issued)


@api_route(
    bp,
    "/me/code",
    method="POST",
    summary="亮码：一人一码 / 一企一码（仅披露所选字段的短时签名码）",
    tags=_TAGS,
    body=SubjectPresentationBody,
    response=PresentationView,
    status=201,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def present_subject(call: Call):
    from chalicelib.service_layer.wallet import present_subject as present

    body: SubjectPresentationBody = call.body
    return _presentation_view(present(_deps(), call.user, list(body.fields), body.ttl_seconds))


@api_route(
    bp,
    "/me/presentations/{presentation_id}",
    method="DELETE",
    summary="撤回已生成的亮证亮码（撤回后核验结果为已撤销）",
    tags=_TAGS,
    status=204,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def withdraw_presentation(call: Call, presentation_id: str):
    from chalicelib.service_layer.wallet import withdraw_presentation as withdraw

    if not _HEX32.match(presentation_id):
        raise NotFound("亮码不存在", code="presentation_not_found")
    withdraw(_deps(), call.user, presentation_id)


@api_route(
    bp,
    "/presentations/verify",
    method="POST",
    summary="核验亮证亮码：有效、已过期或已撤销（只返回持有人选择披露的字段）",
    description="窗口人员或公众核验方调用；也可用 /.well-known/jwks.json 的公钥离线验签。",
    tags=_TAGS,
    body=VerifyBody,
    response=VerificationView,
    public=True,
    errors=(InvalidInput,),
)
def verify_presentation(call: Call):
    from chalicelib.service_layer.wallet import verify

    result = verify(_deps(), call.body.code)
    return {
        "result": result.result.value,
        "kind": result.kind,
        "fields": result.fields,
        "expires_at": _iso(result.expires_at),
    }


@api_route(
    bp,
    "/.well-known/jwks.json",
    summary="亮证亮码验签公钥（JWK Set，Ed25519）",
    tags=_TAGS,
    response=JwkSetView,
    public=True,
    errors=(InvalidInput,),
)
def key_set(call: Call):
    from chalicelib.service_layer.wallet import public_keys

    return {"keys": public_keys(_deps())}


@api_route(
    bp,
    "/licences/revocations",
    method="POST",
    summary="注销电子证照（数据管理员）：其亮证码随即核验为已撤销",
    tags=_TAGS,
    body=LicenceRevocationBody,
    response=LicenceView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def revoke_licence(call: Call):
    from chalicelib.service_layer.wallet import revoke_licence as revoke

    body: LicenceRevocationBody = call.body
    return _licence_view(
        revoke(_deps(), call.user, body.subject_id, _licence_id(body.licence_id), body.reason)
    )


# ---- authorisations (多级授权) ----------------------------------------------------------------


@api_route(
    bp,
    "/me/authorisations",
    summary="代办授权：本人或本企业授出的，或本人获得的",
    tags=_TAGS,
    query=AuthorisationQuery,
    response=AuthorisationPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_authorisations(call: Call):
    from chalicelib.service_layer.wallet import list_authorisations

    deps = _deps()
    page = list_authorisations(
        deps, call.user, call.query.role, call.query.limit, decode_cursor(call.query.cursor)
    )
    now = deps.clock.now()
    return {
        "items": [_authorisation_view(a, now) for a in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/me/authorisations",
    method="POST",
    summary="授权代办：法定代表人或本人授权员工、家人办理指定事项或全部事项，可设期限与转授权",
    description="被授权人调用办件接口时带请求头 X-Acting-For: <被代理主体证件号>。",
    tags=_TAGS,
    body=AuthorisationBody,
    response=AuthorisationView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def grant_authorisation(call: Call):
    from chalicelib.service_layer.wallet import Grant, grant

    body: AuthorisationBody = call.body
    for item in body.items:
        if not re.match(_ITEM, item):
            raise InvalidInput(f"事项编码无效：{item}", code="invalid_item_code")
    deps = _deps()
    authorisation = grant(
        deps,
        call.user,
        Grant(
            agent_user_id=body.agent_user_id,
            items=list(body.items),
            valid_until=body.valid_until,
            valid_from=body.valid_from,
            may_sub_authorise=body.may_sub_authorise,
            subject_id=body.subject_id,
        ),
        call.idempotency_key,
    )
    return _authorisation_view(authorisation, deps.clock.now())


@api_route(
    bp,
    "/me/authorisations/{authorisation_id}",
    method="DELETE",
    summary="撤销代办授权（立即生效，其转授权随之失效）",
    tags=_TAGS,
    response=AuthorisationView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def revoke_authorisation(call: Call, authorisation_id: str):
    from chalicelib.service_layer.wallet import revoke

    if not _HEX32.match(authorisation_id):
        raise NotFound("授权不存在", code="authorisation_not_found")
    deps = _deps()
    return _authorisation_view(revoke(deps, call.user, authorisation_id), deps.clock.now())


# ---- the materials library ----------------------------------------------------------------


@api_route(
    bp,
    "/me/materials",
    summary="历史材料库：已获批办件中被采纳的材料（可免于提交）",
    tags=_TAGS,
    query=PageQuery,
    response=LibraryPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_materials(call: Call):
    from chalicelib.service_layer.wallet import library_page

    deps = _deps()
    page = library_page(deps, call.user, call.query.limit, decode_cursor(call.query.cursor))
    today = deps.clock.now().date()
    return {
        "items": [
            {
                "code": m.code,
                "content_hash": m.content_hash,
                "file_name": m.file_name,
                "file_type": m.file_type,
                "valid_until": m.valid_until,
                "source": m.source,
                "source_item_code": m.source_item_code,
                "accepted_at": m.accepted_at,
                "usable": m.usable_on(today),
            }
            for m in page.items
        ],
        "next_cursor": encode_cursor(page.last_key),
    }
