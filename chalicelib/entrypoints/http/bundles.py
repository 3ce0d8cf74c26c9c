"""一件事 bundles over HTTP: the bundles in the guide, the one form pre-filled once, the one
submission (202; one case per member on its department's pre-review queue) and the whole with
each case."""

import re
from typing import Any

from chalice import Blueprint
from pydantic import Field

from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from chalicelib.entrypoints.http.applications import (
    FieldInput,
    FieldName,
    MaterialBody,
    PrefillFieldView,
    _materials,
)
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel

bp = Blueprint(__name__)

_TAGS = ("bundles",)
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_ID = re.compile(r"^[0-9a-f]{32}$")


class BundleMemberView(ApiModel):
    item_code: str
    item_name: str | None
    department_id: str | None
    promised_days: int | None
    needs: list[str] = Field(description="须先获准的成员事项（办理顺序）")


class BundleView(ApiModel):
    code: str
    name: str
    description: str
    subject_kind: str
    members: list[BundleMemberView]
    order: list[str] = Field(description="办理顺序：每个事项排在其前置事项之后")
    shared_fields: list[str] = Field(description="多个事项共用、只填一次的字段")
    promised_days: int | None = Field(description="整体承诺时限（最长办理路径，工作日）")


class BundlePage(ApiModel):
    items: list[BundleView]
    next_cursor: str | None = None


class BundlePrefillView(ApiModel):
    bundle_code: str
    fields: list[PrefillFieldView]
    exempt_materials: list[str]
    prefill_rate: float
    prefill_token: str = Field(description="提交时原样带回：服务器据此核对被锁定的核验字段")


class BundleApplicationBody(ApiModel):
    prefill_token: str = Field(min_length=16, max_length=8192)
    fields: dict[FieldName, FieldInput] = Field(max_length=200)
    materials: list[MaterialBody] = Field(default=[], max_length=100)


class BundleAcceptedView(ApiModel):
    bundle_application_id: str
    state: str


class BundleCaseView(ApiModel):
    item_code: str
    item_name: str | None
    department_id: str | None
    needs: list[str]
    application_id: str | None = Field(description="该事项的办件编号（尚未开始为空）")
    state: str = Field(description="办件状态；waiting：等待前置事项获准；blocked：前置事项未获准")
    findings: list[str]
    supplement_rounds: int


class BundleApplicationView(ApiModel):
    bundle_application_id: str
    bundle_code: str
    bundle_name: str
    channel: str
    state: str = Field(description="in_progress 或 completed")
    created_at: str
    completed_at: str | None
    promised_days: int | None
    elapsed_working_days: int | None = Field(description="提交至最后一个事项办结的工作日数")
    cases: list[BundleCaseView]


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.bundles import BundleDeps

    return BundleDeps.from_container(container())


def _code(value: str) -> str:
    if not _CODE.match(value):
        raise NotFound("一件事不存在", code="bundle_not_found")
    return value


@api_route(
    bp,
    "/bundles",
    summary="一件事目录",
    tags=_TAGS,
    query=PageQuery,
    response=BundlePage,
    public=True,
    errors=(InvalidInput, Unauthenticated),
)
def list_bundles(call: Call):
    from chalicelib.service_layer.bundles import describe, list_bundles

    deps = _deps()
    page = list_bundles(deps, call.query.limit, decode_cursor(call.query.cursor))
    rows = []
    for bundle in page.items:
        members = {}
        for member in bundle.members:
            item = deps.applications.store.latest_item(member.item_code)
            if item is not None:
                members[item.code] = item
        rows.append(describe(bundle, members))
    return {"items": rows, "next_cursor": encode_cursor(page.last_key)}


@api_route(
    bp,
    "/bundles/{code}",
    summary="一件事详情：成员事项、承办部门、办理顺序与共用字段",
    tags=_TAGS,
    response=BundleView,
    public=True,
    errors=(InvalidInput, NotFound),
)
def read_bundle(call: Call, code: str):
    from chalicelib.service_layer.bundles import describe, get_bundle

    bundle, members = get_bundle(_deps(), _code(code))
    return describe(bundle, members)


@api_route(
    bp,
    "/bundles/{code}/prefill",
    summary="一件事一表预填：各成员事项的字段只填一次",
    tags=_TAGS,
    response=BundlePrefillView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def prefill_bundle(call: Call, code: str):
    from dataclasses import asdict

    from chalicelib.service_layer.bundles import prefill_for

    fields, exempt, token = prefill_for(_deps(), call.user, _code(code))
    filled = sum(1 for f in fields if f.value not in (None, ""))
    return {
        "bundle_code": code,
        "fields": [{**asdict(f), "locked": f.verified} for f in fields],
        "exempt_materials": exempt,
        "prefill_rate": round(filled / len(fields), 4) if fields else 0.0,
        "prefill_token": token,
    }


@api_route(
    bp,
    "/bundles/{code}/applications",
    method="POST",
    summary="提交一件事申请（202：每个成员事项一个办件，分送各部门预审）",
    description="须带 Idempotency-Key：重复提交返回同一申请，不再新建办件。",
    tags=_TAGS,
    body=BundleApplicationBody,
    response=BundleAcceptedView,
    status=202,
    idempotency="required",
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound, Conflict),
)
def submit_bundle(call: Call, code: str):
    from chalicelib.service_layer.bundles import BundleSubmission, submit

    body: BundleApplicationBody = call.body
    application = submit(
        _deps(),
        call.user,
        BundleSubmission(_code(code), body.prefill_token, body.fields, _materials(body.materials)),
        call.idempotency_key,
    )
    return {
        "bundle_application_id": application.bundle_application_id,
        "state": "completed" if application.done else "in_progress",
    }


@api_route(
    bp,
    "/bundle-applications/{bundle_application_id}",
    summary="一件事申请详情：整体进度与每个事项的办件",
    tags=_TAGS,
    response=BundleApplicationView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def read_bundle_application(call: Call, bundle_application_id: str):
    from chalicelib.service_layer.bundles import read

    if not _ID.match(bundle_application_id):
        raise NotFound("一件事申请不存在", code="bundle_application_not_found")
    return read(_deps(), call.user, bundle_application_id)
