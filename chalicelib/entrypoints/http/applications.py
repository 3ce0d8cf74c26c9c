"""Applications over HTTP: the guide, pre-fill, submission (202, continued on the pre-review
queue), status, supplements, department decisions and the monthly KPIs."""

import re
from dataclasses import asdict
from typing import Annotated, Any, Literal

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
from chalicelib.entrypoints.http.acting import acting_user
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Day, Finite, Tag, Text, Whole

bp = Blueprint(__name__)

_TAGS = ("applications",)
_CODE = r"^[A-Za-z0-9_\-]{1,64}$"
_ID = re.compile(r"^[0-9a-f]{32}$")
FieldValue = str | int | float | bool | None
# What a form field may carry on the way in: bounded text, bounded and finite numbers.
FieldName = Annotated[str, Field(pattern=_CODE)]
FieldInput = bool | Whole | Finite | Text(1000, multiline=True) | None


class MaterialSpecBody(ApiModel):
    code: str = Field(pattern=_CODE)
    name: Text(100, min_length=1)
    key: bool = True
    forms: list[Literal["electronic", "paper"]] = Field(default=["electronic"], min_length=1)
    file_types: list[Annotated[str, Field(pattern=r"^[a-z0-9]{1,10}$")]] = Field(
        default=["pdf", "jpg", "png"], min_length=1, max_length=10
    )
    max_kb: int = Field(default=10240, ge=1, le=102400)
    elicence_type: Text(64) | None = None


class FieldSpecBody(ApiModel):
    name: str = Field(pattern=_CODE)
    label: Text(100, min_length=1)
    source: Text(128) | None = None
    required: bool = True
    kind: Literal["text", "id_number", "credit_code", "number", "date"] = "text"


class AutoRuleBody(ApiModel):
    name: Text(100, min_length=1)
    check: str = Field(pattern=_CODE)
    value: Any = None


class ItemBody(ApiModel):
    name: Text(100, min_length=1)
    department_id: str = Field(pattern=_CODE)
    kind: Literal["immediate", "promised"]
    statutory_days: int = Field(ge=0, le=60)
    promised_days: int = Field(ge=0, le=60)
    subject_kind: Literal["person", "enterprise"]
    conditions: list[Text(200, min_length=1)] = Field(default=[], max_length=20)
    materials: list[MaterialSpecBody] = Field(default=[], max_length=50)
    fields: list[FieldSpecBody] = Field(default=[], max_length=100)
    tolerance_allowed: bool = False
    supplement_days: int = Field(default=5, ge=1, le=60)
    commitment_allowed: bool = False
    auto_rules: list[AutoRuleBody] = Field(default=[], max_length=20)
    issues_licence: Text(64) | None = None
    bundle: list[Tag] = Field(default=[], max_length=20)
    handled_in: Literal["qingpu", "wujiang", "jiashan"] | None = Field(
        default=None, description="跨省通办：办理地（本地受理、预审后转交）"
    )


class ItemView(ItemBody):
    code: str
    version: int


class ItemPage(ApiModel):
    items: list[ItemView]
    next_cursor: str | None = None


class PrefillFieldView(ApiModel):
    name: str
    label: str
    value: FieldValue
    source: str | None
    verified: bool
    locked: bool
    retrieved_at: str | None


class ExemptSourceView(ApiModel):
    code: str
    source: str


class PrefillView(ApiModel):
    item_code: str
    item_version: int
    fields: list[PrefillFieldView]
    exempt_materials: list[str] = Field(description="免于提交的材料（电子证照或历史办件已提供）")
    exempt_sources: list[ExemptSourceView] = Field(
        default_factory=list,
        description="免于提交材料的来源：elicence:<类型>:<编号> 或 application:<办件编号>",
    )
    prefill_rate: float
    prefill_token: str = Field(description="提交时原样带回：服务器据此核对被锁定的核验字段")


class MaterialBody(ApiModel):
    code: str = Field(pattern=_CODE)
    file_name: Text(200, min_length=1)
    file_type: str = Field(pattern=r"^[a-z0-9]{1,10}$")
    size_kb: int = Field(ge=1, le=1024 * 1024)
    holder_name: Text(200) | None = None
    valid_until: Day | None = None
    content_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="文件 SHA-256（十六进制）；获批后入历史材料库",
    )


class ApplicationBody(ApiModel):
    item_code: str = Field(pattern=_CODE)
    prefill_token: str = Field(min_length=16, max_length=8192)
    fields: dict[FieldName, FieldInput] = Field(max_length=100)
    materials: list[MaterialBody] = Field(default=[], max_length=50)
    commitment: bool = Field(default=False, description="以告知承诺代替非关键材料")


class SupplementBody(ApiModel):
    fields: dict[FieldName, FieldInput] = Field(default={}, max_length=100)
    materials: list[MaterialBody] = Field(default=[], max_length=50)


class DecisionBody(ApiModel):
    outcome: Literal["approve", "reject"]
    reasons: list[Text(500, min_length=1)] = Field(default=[], max_length=20)


class FindingView(ApiModel):
    target: str
    reason: Literal["incorrect", "incomplete", "expired"]
    code: str
    message: str
    blocking: bool


class DeadlineView(ApiModel):
    kind: str
    state: str
    due_at: str | None


class ApplicationView(ApiModel):
    application_id: str
    item_code: str
    item_version: int
    item_name: str
    department_id: str
    state: str
    created_at: str
    updated_at: str
    prefilled_fields: int
    total_fields: int
    exempt_materials: list[str]
    exempt_sources: dict[str, str] = Field(
        default_factory=dict, description="免于提交材料的来源（电子证照或历史办件）"
    )
    supplement_rounds: int
    findings: list[FindingView]
    timeline: list[dict[str, Any]]
    latest_event: str | None = Field(default=None, description="最近一次办理环节")
    latest_event_at: str | None = None
    next_due_at: str | None = Field(default=None, description="容缺补齐期限（如有）")
    deadlines: list[DeadlineView] = Field(default_factory=list)
    decision: dict[str, Any] | None = None
    issued_licence: str | None = None


class ApplicationPage(ApiModel):
    items: list[ApplicationView]
    next_cursor: str | None = None


class AcceptedView(ApiModel):
    application_id: str
    state: str


class MonthQuery(ApiModel):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    format: Literal["json", "csv"] = Field(
        default="json", description="csv：下载表格（亦可 Accept: text/csv）"
    )


_REPORT_COLUMNS = ["item_code", "item_name", "department_id", "department_name", "applications"]


class ReportView(ApiModel):
    month: str
    targets: dict[str, float]
    overall: dict[str, Any]
    online_completion: dict[str, Any] = Field(
        description="网上办结率：按实际渠道（网上、窗口代办、视频受理）计算，附88%目标值"
    )
    items: list[dict[str, Any]]
    bundles: list[dict[str, Any]] = Field(
        default_factory=list, description="一件事：整体办理时长（最长路径）与整体承诺时限"
    )


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.applications.common import ApplicationDeps

    return ApplicationDeps.from_container(container())


def _item_view(item: Any) -> dict[str, Any]:
    return asdict(item)


def _now() -> Any:
    from chalicelib.bootstrap import container

    return container().clock.now()


def _app_view(app: Any, deadlines: list[Any] | None = None) -> dict[str, Any]:
    from chalicelib.domain.clocks import deadline_state

    data = app.to_dict()
    keep = ApplicationView.model_fields.keys()
    view = {k: v for k, v in data.items() if k in keep}
    view["state"] = app.state.value
    latest = app.timeline[-1] if app.timeline else {}
    view["latest_event"] = latest.get("event")
    view["latest_event_at"] = latest.get("at")
    view["next_due_at"] = app.supplement_due
    view["findings"] = [{**asdict(f), "reason": f.reason.value} for f in app.findings]
    now = _now() if deadlines else None
    view["deadlines"] = [
        {
            "kind": c.kind,
            "state": deadline_state(c.state.value, c.due_at, now) if now else c.state.value,
            "due_at": c.due_at.isoformat() if c.due_at else None,
        }
        for c in deadlines or []
    ]
    return view


def _application_id(value: str) -> str:
    from chalicelib.domain.errors import NotFound

    if not _ID.match(value):
        raise NotFound("申请不存在", code="application_not_found")
    return value


@api_route(
    bp,
    "/items",
    summary="办事指南：事项目录",
    tags=_TAGS,
    query=PageQuery,
    response=ItemPage,
    public=True,
    errors=(InvalidInput, Unauthenticated),
)
def list_items(call: Call):
    from chalicelib.service_layer.applications.guide import list_items as list_

    page = list_(_deps(), call.query.limit, decode_cursor(call.query.cursor))
    return {
        "items": [_item_view(i) for i in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/items/{code}",
    summary="办事指南：事项详情（当前版本）",
    tags=_TAGS,
    response=ItemView,
    public=True,
    errors=(InvalidInput, NotFound),
)
def read_item(call: Call, code: str):
    from chalicelib.service_layer.applications.guide import get_item

    return _item_view(get_item(_deps(), code))


@api_route(
    bp,
    "/items/{code}",
    method="PUT",
    summary="发布事项新版本（管理员）；已提交的申请保留其提交时的版本",
    tags=_TAGS,
    body=ItemBody,
    response=ItemView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def publish_item(call: Call, code: str):
    from chalicelib.domain.applications import ServiceItem
    from chalicelib.domain.errors import NotFound
    from chalicelib.service_layer.applications.guide import publish_item as publish

    if not re.match(_CODE, code):
        raise NotFound("办事事项不存在", code="item_not_found")
    item = ServiceItem.from_dict({**call.body.model_dump(), "code": code, "version": 0})
    return _item_view(publish(_deps(), call.user, item))


@api_route(
    bp,
    "/items/{code}/prefill",
    summary="智能预填：本人档案、电子证照与历史办件中的表单数据（核验数据锁定）",
    tags=_TAGS,
    response=PrefillView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def prefill(call: Call, code: str):
    from chalicelib.service_layer.applications.prefill import prefill_for

    result, token = prefill_for(_deps(), acting_user(call, code), code)
    locked = result.locked
    return {
        "item_code": result.item_code,
        "item_version": result.item_version,
        "fields": [{**asdict(f), "locked": f.name in locked} for f in result.fields],
        "exempt_materials": list(result.exempt_materials),
        "exempt_sources": [
            {"code": code, "source": source} for code, source in result.exempt_sources
        ],
        "prefill_rate": round(result.filled / len(result.fields), 4) if result.fields else 0.0,
        "prefill_token": token,
    }


def _materials(bodies: list[MaterialBody]) -> list[Any]:
    from chalicelib.domain.applications import Material

    return [Material(**m.model_dump(mode="json")) for m in bodies]


@api_route(
    bp,
    "/applications",
    method="POST",
    summary="提交申请（202：进入智能预审队列）",
    description="带 Idempotency-Key 时重复提交返回同一申请。",
    tags=_TAGS,
    body=ApplicationBody,
    response=AcceptedView,
    status=202,
    idempotency="optional",
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound, Conflict),
)
def submit(call: Call):
    from chalicelib.service_layer.applications.submission import Submission
    from chalicelib.service_layer.applications.submission import submit as submit_

    body: ApplicationBody = call.body
    app = submit_(
        _deps(),
        acting_user(call, body.item_code),
        Submission(
            body.item_code,
            body.prefill_token,
            body.fields,
            _materials(body.materials),
            body.commitment,
        ),
        call.idempotency_key,
    )
    return {"application_id": app.application_id, "state": app.state.value}


@api_route(
    bp,
    "/applications/{application_id}",
    summary="申请详情：状态、办理经过、预审意见与时限",
    tags=_TAGS,
    response=ApplicationView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def read_application(call: Call, application_id: str):
    from chalicelib.service_layer.applications.reading import deadlines_of, read

    deps = _deps()
    app = read(deps, acting_user(call), _application_id(application_id))
    return _app_view(app, deadlines_of(deps, app))


@api_route(
    bp,
    "/me/applications",
    summary="我的申请",
    tags=_TAGS,
    query=PageQuery,
    response=ApplicationPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_applications(call: Call):
    from chalicelib.service_layer.applications.reading import list_mine

    page = list_mine(_deps(), acting_user(call), call.query.limit, decode_cursor(call.query.cursor))
    return {
        "items": [_app_view(a) for a in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/departments/{department_id}/applications",
    summary="部门待审批办件（已受理、容缺受理）",
    tags=_TAGS,
    query=PageQuery,
    response=ApplicationPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def department_applications(call: Call, department_id: str):
    from chalicelib.service_layer.applications.reading import list_department

    page = list_department(
        _deps(), call.user, department_id, call.query.limit, decode_cursor(call.query.cursor)
    )
    return {
        "items": [_app_view(a) for a in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/applications/{application_id}/supplements",
    method="POST",
    summary="补正或补齐容缺材料（补正后恢复计时并重新预审）",
    tags=_TAGS,
    body=SupplementBody,
    response=ApplicationView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def supplement(call: Call, application_id: str):
    from chalicelib.service_layer.applications.supplements import supplement as supplement_

    app = supplement_(
        _deps(),
        acting_user(call),
        _application_id(application_id),
        call.body.fields,
        _materials(call.body.materials),
    )
    return _app_view(app)


@api_route(
    bp,
    "/applications/{application_id}/decision",
    method="POST",
    summary="部门审批决定（准予或不予，不予须说明理由）",
    tags=_TAGS,
    body=DecisionBody,
    response=ApplicationView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def decide(call: Call, application_id: str):
    from chalicelib.service_layer.applications.decisions import decide as decide_

    body: DecisionBody = call.body
    app = decide_(
        _deps(),
        call.user,
        _application_id(application_id),
        body.outcome == "approve",
        body.reasons,
    )
    return _app_view(app)


@api_route(
    bp,
    "/reports/applications",
    summary="办件月度指标：预填率、预审自动化率、首办成功率、网上办结率、P90办理时长（含目标值）"
    "；format=csv 或 Accept: text/csv 下载表格",
    tags=_TAGS,
    query=MonthQuery,
    response=ReportView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def application_report(call: Call):
    from chalicelib.entrypoints.http.export import csv_response, wants_csv
    from chalicelib.service_layer.applications.kpis import report

    result = report(_deps(), call.user, call.query.month)
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.bundles import BundleDeps, report_rows

    result["bundles"] = report_rows(BundleDeps.from_container(container()), call.query.month)
    if wants_csv(call, call.query.format):
        rows = [{"month": result["month"], **row} for row in result["items"]]
        columns = list(rows[0]) if rows else ["month", *_REPORT_COLUMNS]
        return csv_response(rows, columns, f"applications-{result['month']}.csv")
    return result


class OnBehalfBody(ApiModel):
    person_user_id: str = Field(pattern=_CODE, description="办事人的账号")
    channel: Literal["window", "video"] = Field(description="window：窗口代办；video：视频受理")
    item_code: str = Field(pattern=_CODE)
    fields: dict[FieldName, FieldInput] = Field(default={}, max_length=100)
    materials: list[MaterialBody] = Field(default=[], max_length=50)
    commitment: bool = False
    booking_id: str | None = Field(
        default=None, pattern=_CODE, description="视频受理：办事人本人该事项的视频帮办预约"
    )


@api_route(
    bp,
    "/window/applications",
    method="POST",
    summary="窗口代办或视频受理：工作人员为办事人提交申请（202：进入智能预审队列）",
    description="核验数据由系统从档案与电子证照取得，不可修改；"
    "带 Idempotency-Key 时重复提交返回同一申请。",
    tags=_TAGS,
    body=OnBehalfBody,
    response=AcceptedView,
    status=202,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def file_on_behalf(call: Call):
    from chalicelib.service_layer.applications.submission import OnBehalfSubmission
    from chalicelib.service_layer.applications.submission import file_on_behalf as file_

    body: OnBehalfBody = call.body
    app = file_(
        _deps(),
        call.user,
        OnBehalfSubmission(
            body.person_user_id,
            body.channel,
            body.item_code,
            body.fields,
            _materials(body.materials),
            body.commitment,
            body.booking_id,
        ),
        call.idempotency_key,
    )
    return {"application_id": app.application_id, "state": app.state.value}
