"""办不成事 tickets over HTTP: intake, views, handling transitions, routing rules, reports."""

from datetime import datetime
from typing import Annotated, Any, Literal

from chalice import Blueprint
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

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
from chalicelib.entrypoints.http.types import Day, Moment, SubjectId, Text

bp = Blueprint(__name__)

_TAGS = ("tickets",)
Kind = Literal["not_accepted", "not_approved", "cross_department", "staff_conduct", "other"]
ChannelName = Literal[
    "mini_program", "pc", "hotline", "window", "self_service_terminal", "live_help"
]
ComplexityName = Literal["simple", "complex"]
State = Literal[
    "submitted",
    "dispatched",
    "accepted",
    "awaiting_person",
    "return_requested",
    "replied",
    "called_back",
    "reopened",
    "closed",
]
_REF = r"^[A-Za-z0-9_\-]{1,64}$"
Ref = Annotated[str, Field(pattern=_REF)]
AttachmentRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,199}$")]
Reason = Text(1000, min_length=1, multiline=True)


def _mobile(value: str) -> str:
    from chalicelib.domain.personal_data import is_valid_mobile, normalise_mobile

    if not is_valid_mobile(value):
        raise ValueError("手机号码应为11位中国大陆手机号")
    return normalise_mobile(value)


Mobile = Annotated[str, AfterValidator(_mobile)]


class _Model(BaseModel):
    # Schemas are built on first use, not at import: this module loads on every cold start.
    model_config = ConfigDict(defer_build=True)


class _Body(_Model):
    model_config = ConfigDict(extra="forbid", defer_build=True)


# ---- request bodies ---------------------------------------------------------------------


class TicketContactIn(_Body):
    method: Literal["phone", "sms", "mini_program"] = Field(description="希望的联系方式")
    mobile: Mobile | None = Field(default=None, description="联系手机；本人提交时缺省取档案")
    note: Text(200) = Field(default="", description="方便联系的时间等")


class TicketOnBehalfOf(_Body):
    name: Text(50, min_length=1) = Field(description="办事人姓名或单位名称")
    subject_id: SubjectId | None = Field(default=None, description="身份证号或统一社会信用代码")
    user_id: Ref | None = Field(default=None, description="办事人的平台账号（如有）")


class TicketIntakeBody(_Body):
    kind: Kind = Field(description="类型")
    channel: ChannelName = Field(description="渠道")
    description: Text(2000, min_length=5, multiline=True) = Field(description="遇到的问题")
    contact: TicketContactIn
    item_code: Ref | None = Field(
        default=None,
        validation_alias=AliasChoices("item_code", "service_item_id"),
        description="办事指南事项编码，如 QP-RS-201（旧字段名 service_item_id 仍可用）",
    )
    item_name: Text(100) | None = Field(
        default=None,
        validation_alias=AliasChoices("item_name", "service_item_name"),
        description="事项名称；缺省取办事指南",
    )
    application_id: Ref | None = None
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=10)
    centre_id: Ref | None = Field(default=None, description="发生问题的服务中心")
    on_behalf_of: TicketOnBehalfOf | None = Field(
        default=None, description="窗口或热线工作人员代为提交时必填"
    )


class TicketDispatchBody(_Body):
    department_id: Ref
    complexity: ComplexityName | None = None
    note: Text(500, multiline=True) = ""


class TicketAcceptBody(_Body):
    contact_method: Literal["phone", "sms", "mini_program", "visit"]
    note: Reason = Field(description="首次联系办事人的情况")
    contacted_at: Moment | None = Field(default=None, description="联系时间，缺省为现在")
    staff_phone: str | None = Field(default=None, pattern=r"^[0-9\-]{5,20}$")


class TicketReasonBody(_Body):
    reason: Reason


class TicketNoteBody(_Body):
    note: Text(1000, multiline=True) = ""


class TicketReplyBody(_Body):
    answer: Text(4000, min_length=1, multiline=True) = Field(description="答复内容")
    rectification: Text(4000, multiline=True) = Field(default="", description="整改情况")
    evidence: list[AttachmentRef] = Field(min_length=1, max_length=20, description="佐证材料")


class TicketCallBackBody(_Body):
    satisfied: bool
    note: Reason


class TicketTransferBody(_Body):
    department_id: Ref
    reason: Reason


class TicketReturnDecisionBody(_Body):
    accept: bool
    note: Reason


class TicketComplexityBody(_Body):
    complexity: ComplexityName
    reason: Reason


class TicketExtensionBody(_Body):
    days: int = Field(ge=1, le=15, description="延长的工作日数")
    reason: Reason


class TicketExtensionDecisionBody(_Body):
    approve: bool
    note: Reason


class RoutingRuleIn(_Body):
    rule_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    name: Text(100, min_length=1)
    department_id: Ref
    complexity: ComplexityName = "simple"
    kinds: list[Kind] = Field(default_factory=list, max_length=5)
    item_codes: list[Ref] = Field(
        default_factory=list,
        max_length=200,
        validation_alias=AliasChoices("item_codes", "service_item_ids"),
        description="办事指南事项编码",
    )
    item_department_ids: list[Ref] = Field(default_factory=list, max_length=50)
    keywords: list[Text(30, min_length=1)] = Field(default_factory=list, max_length=50)
    centre_ids: list[Ref] = Field(default_factory=list, max_length=50)
    enabled: bool = True


class RoutingRulesBody(_Body):
    expected_version: int = Field(ge=0, description="当前版本号（乐观锁）")
    rules: list[RoutingRuleIn] = Field(max_length=200, description="按顺序匹配，先中先得")
    item_departments: dict[Ref, Ref] = Field(
        default_factory=dict,
        max_length=2000,
        description="事项编码 → 承办部门（覆盖办事指南的主管部门）",
    )


WorkingDays = Annotated[int, Field(ge=1, le=60, description="工作日")]


class TicketLimitsIn(_Body):
    contact_days: WorkingDays = Field(description="首次联系办事人（“1、5、15”的1）")
    resolve_simple_days: WorkingDays = Field(description="简单事项办结")
    resolve_complex_days: WorkingDays = Field(description="复杂事项办结")
    call_back_days: WorkingDays = Field(description="区政务办答复后回访")
    reopen_window_days: WorkingDays = Field(description="答复后办事人可重新打开的期限")
    max_extension_days: WorkingDays = Field(description="复杂事项最长延期")


class TicketLimitsBody(_Body):
    expected_version: int = Field(ge=0, le=10**9, description="当前最新版本号（乐观锁）")
    limits: TicketLimitsIn
    effective_from: Day | None = Field(
        default=None, description="生效日期（不早于今天；不填为今天）"
    )
    note: Text(500) = Field(default="", description="修改说明")


# ---- queries ----------------------------------------------------------------------------


class DepartmentTicketsQuery(PageQuery):
    model_config = ConfigDict(defer_build=True)

    state: State | None = None
    overdue: bool = Field(default=False, description="只看已超时限的")
    due_before: Day | None = Field(default=None, description="时限早于该日（YYYY-MM-DD）")


class TicketQueueQuery(PageQuery):
    model_config = ConfigDict(defer_build=True)

    queue: Literal["unrouted", "return", "extension"] = "unrouted"


class TicketReportQuery(_Model):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    format: Literal["json", "csv"] = Field(
        default="json", description="csv：下载表格（亦可 Accept: text/csv）"
    )


# ---- views ------------------------------------------------------------------------------


class TicketDeadlineView(_Model):
    kind: str
    kind_label: str
    department_id: str | None
    state: str = Field(description="running、paused、met、breached 或 cancelled（与 /clocks 相同）")
    overdue: bool = Field(description="已超时限（state 为 breached）")
    due_at: datetime | None
    provisional: bool
    extension_days: int = 0


class TicketTimelineView(_Model):
    seq: int
    at: datetime
    event: str
    label: str
    from_state: str | None
    to_state: str
    actor_role: str
    actor_name: str
    note: str = ""


class TicketOwnerView(_Model):
    name: str
    subject_id: str | None = None
    mobile: str | None = None


class TicketRoutingView(_Model):
    rule_id: str
    rule_version: int
    ruleset_version: int


class TicketView(_Model):
    ticket_id: str
    kind: str
    kind_label: str
    channel: str
    state: str
    state_label: str
    complexity: str
    description: str
    item_code: str | None = None
    item_name: str | None = None
    application_id: str | None = None
    attachments: list[str] = []
    centre_id: str | None = None
    department_id: str | None = None
    department_name: str | None = None
    routing: TicketRoutingView | None = None
    owner: TicketOwnerView
    contact_method: str
    first_contact: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None
    call_back: dict[str, Any] | None = None
    waiting: dict[str, Any] | None = None
    return_request: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None
    possible_duplicates: list[str] = []
    deadlines: list[TicketDeadlineView] = []
    timeline: list[TicketTimelineView] = []
    allowed_actions: list[str] = []
    created_at: datetime
    updated_at: datetime


class TicketSummaryView(_Model):
    ticket_id: str
    kind: str
    kind_label: str
    state: str
    state_label: str
    complexity: str
    department_id: str | None = None
    department_name: str | None = None
    item_code: str | None = None
    item_name: str | None = None
    next_due_at: datetime | None = None
    next_deadline_state: str | None = Field(
        default=None, description="最近时限的状态（running、paused、breached）"
    )
    overdue: bool = False
    latest_event: str | None = Field(default=None, description="最近一次办理环节")
    latest_event_label: str | None = None
    latest_event_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    centre_id: str | None = Field(default=None, description="发生问题的服务中心")


class TicketPageView(_Model):
    """The shape of pagination's Page, without building a generic class at import."""

    items: list[TicketSummaryView]
    next_cursor: str | None = None


class RoutingRuleView(_Model):
    rule_id: str
    name: str
    department_id: str
    complexity: str
    kinds: list[str]
    item_codes: list[str]
    item_department_ids: list[str]
    keywords: list[str]
    centre_ids: list[str]
    enabled: bool
    version: int


class RoutingRulesView(_Model):
    version: int
    rules: list[RoutingRuleView]
    item_departments: dict[str, str]
    updated_by: str | None = None
    updated_at: datetime | None = None


class TicketLimitsValues(_Model):
    contact_days: int
    resolve_simple_days: int
    resolve_complex_days: int
    call_back_days: int
    reopen_window_days: int
    max_extension_days: int


class TicketLimitsVersionView(_Model):
    version: int = Field(description="0 为系统默认值（尚未保存过）")
    limits: TicketLimitsValues
    effective_from: str | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
    note: str = ""


class TicketLimitsView(_Model):
    in_force: TicketLimitsVersionView
    scheduled: list[TicketLimitsVersionView] = Field(description="已发布、尚未生效的版本")


class TicketDepartmentReport(_Model):
    department_id: str
    department_name: str
    received: int
    contact_judged: int
    contact_on_time: int
    contact_on_time_rate: float | None
    resolve_judged: int
    resolve_on_time: int
    resolve_on_time_rate: float | None
    overdue: int = Field(description="本月到期未办（已催办）的时限数")
    escalations: int = Field(description="本月督办次数")
    reported: int = Field(description="本月通报次数")
    call_backs: int
    satisfied: int
    satisfaction_rate: float | None
    call_back_judged: int = Field(description="区政务办回访时限（3个工作日）的考核数")
    call_back_on_time_rate: float | None
    reopened: int
    transferred_out: int
    return_requests: int


class TicketReportView(_Model):
    month: str
    departments: list[TicketDepartmentReport]


# ---- routes: intake and reading ---------------------------------------------------------


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.tickets.common import TicketDeps

    return TicketDeps.from_container(container())


@api_route(
    bp,
    "/tickets",
    method="POST",
    summary="提交“办不成事”反映（本人，或窗口/热线代为提交）",
    description="带 Idempotency-Key 时重复提交返回首次的结果（状态码与内容相同）。",
    tags=_TAGS,
    body=TicketIntakeBody,
    response=TicketView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def file_ticket(call: Call):
    from chalicelib.domain.tickets.ticket import Channel, ContactMethod, TicketKind
    from chalicelib.service_layer.tickets.intake import IntakeRequest
    from chalicelib.service_layer.tickets.intake import file_ticket as file

    body: TicketIntakeBody = call.body
    behalf = body.on_behalf_of
    request = IntakeRequest(
        kind=TicketKind(body.kind),
        channel=Channel(body.channel),
        description=body.description,
        contact_method=ContactMethod(body.contact.method),
        contact_mobile=body.contact.mobile,
        contact_note=body.contact.note,
        service_item_id=body.item_code,
        service_item_name=body.item_name,
        application_id=body.application_id,
        attachments=tuple(body.attachments),
        centre_id=body.centre_id,
        on_behalf_name=behalf.name if behalf else None,
        on_behalf_subject_id=behalf.subject_id if behalf else None,
        on_behalf_user_id=behalf.user_id if behalf else None,
    )
    deps = _deps()
    result = file(deps, call.user, request, call.idempotency_key)
    return ticket_view(result.ticket, call.user, deps.clock.now())


@api_route(
    bp,
    "/tickets/{ticket_id}",
    summary="工单详情：状态、各项时限与办理经过",
    tags=_TAGS,
    response=TicketView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_ticket(call: Call, ticket_id: str):
    from chalicelib.service_layer.tickets.reading import get_ticket

    deps = _deps()
    return ticket_view(get_ticket(deps, call.user, ticket_id), call.user, deps.clock.now())


@api_route(
    bp,
    "/me/tickets",
    summary="我的反映（最新在前，分页）",
    tags=_TAGS,
    query=PageQuery,
    response=TicketPageView,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_my_tickets(call: Call):
    from chalicelib.service_layer.tickets.reading import list_my_tickets as list_mine

    deps = _deps()
    page = list_mine(deps, call.user, call.query.limit, decode_cursor(call.query.cursor))
    return _page(page, deps.clock.now())


@api_route(
    bp,
    "/departments/{department_id}/tickets",
    summary="部门工单（按最近时限排序；可按状态、已超时、时限早于某日筛选）",
    tags=_TAGS,
    query=DepartmentTicketsQuery,
    response=TicketPageView,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_department_tickets(call: Call, department_id: str):
    from chalicelib.domain.tickets.ticket import TicketState
    from chalicelib.service_layer.tickets.reading import list_department_tickets as list_department

    deps = _deps()
    query: DepartmentTicketsQuery = call.query
    page = list_department(
        deps,
        call.user,
        department_id,
        state=TicketState(query.state) if query.state else None,
        overdue=query.overdue,
        due_before=query.due_before,
        limit=query.limit,
        start_key=decode_cursor(query.cursor),
    )
    return _page(page, deps.clock.now())


@api_route(
    bp,
    "/dispatcher/tickets",
    summary="派单员工作队列：待人工派单、退单申请、延期申请",
    tags=_TAGS,
    query=TicketQueueQuery,
    response=TicketPageView,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_dispatcher_queue(call: Call):
    from chalicelib.service_layer.tickets.reading import list_queue

    deps = _deps()
    query: TicketQueueQuery = call.query
    page = list_queue(deps, call.user, query.queue, query.limit, decode_cursor(query.cursor))
    return _page(page, deps.clock.now())


# ---- routes: transitions ----------------------------------------------------------------


def _transition(call: Call, ticket_id: str, use_case: str, **arguments: Any) -> TicketView:
    from chalicelib.service_layer.tickets import transitions as service

    deps = _deps()
    ticket = getattr(service, use_case)(deps, call.user, ticket_id, **arguments)
    return ticket_view(ticket, call.user, deps.clock.now())


def _post(path: str, summary: str, body: type[BaseModel]) -> Any:
    return api_route(
        bp,
        f"/tickets/{{ticket_id}}/{path}",
        method="POST",
        summary=summary,
        tags=_TAGS,
        body=body,
        response=TicketView,
        errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
    )


@_post("dispatch", "派单（派单员人工转办给承办部门）", TicketDispatchBody)
def dispatch_ticket(call: Call, ticket_id: str):
    from chalicelib.domain.tickets.ticket import Complexity

    body: TicketDispatchBody = call.body
    return _transition(
        call,
        ticket_id,
        "dispatch",
        department_id=body.department_id,
        complexity=Complexity(body.complexity) if body.complexity else None,
        note=body.note,
    )


@_post("accept", "受理（承办部门确认并记录首次联系）", TicketAcceptBody)
def accept_ticket(call: Call, ticket_id: str):
    from chalicelib.domain.calendar import CHINA_TZ
    from chalicelib.domain.tickets.ticket import ContactMethod

    body: TicketAcceptBody = call.body
    contacted_at = body.contacted_at
    if contacted_at is not None and contacted_at.tzinfo is None:
        contacted_at = contacted_at.replace(tzinfo=CHINA_TZ)
    return _transition(
        call,
        ticket_id,
        "accept",
        contact_method=ContactMethod(body.contact_method),
        note=body.note,
        contacted_at=contacted_at,
        staff_phone=body.staff_phone,
    )


@_post("await-person", "等待办事人补充（时限暂停）", TicketReasonBody)
def await_person(call: Call, ticket_id: str):
    return _transition(call, ticket_id, "await_person", reason=call.body.reason)


@_post("person-responded", "办事人已补充（时限恢复）", TicketNoteBody)
def person_responded(call: Call, ticket_id: str):
    return _transition(call, ticket_id, "person_responded", note=call.body.note)


@_post("reply", "答复（答复或整改情况，附佐证材料）", TicketReplyBody)
def reply_ticket(call: Call, ticket_id: str):
    body: TicketReplyBody = call.body
    return _transition(
        call,
        ticket_id,
        "reply",
        answer=body.answer,
        evidence=tuple(body.evidence),
        rectification=body.rectification,
    )


@_post("call-back", "回访（区政务办：满意则待办结，不满意则重新办理）", TicketCallBackBody)
def call_back_ticket(call: Call, ticket_id: str):
    body: TicketCallBackBody = call.body
    return _transition(call, ticket_id, "call_back", satisfied=body.satisfied, note=body.note)


@_post("close", "办结", TicketNoteBody)
def close_ticket(call: Call, ticket_id: str):
    return _transition(call, ticket_id, "close", note=call.body.note)


@_post("reopen", "重新打开（答复后在工单时限规定的期限内，本人或窗口代为）", TicketReasonBody)
def reopen_ticket(call: Call, ticket_id: str):
    return _transition(call, ticket_id, "reopen", reason=call.body.reason)


@_post("transfer", "转办给其他部门", TicketTransferBody)
def transfer_ticket(call: Call, ticket_id: str):
    body: TicketTransferBody = call.body
    return _transition(
        call, ticket_id, "transfer", department_id=body.department_id, reason=body.reason
    )


@_post("return", "申请退单（须说明理由，由派单员审核）", TicketReasonBody)
def request_return(call: Call, ticket_id: str):
    return _transition(call, ticket_id, "request_return", reason=call.body.reason)


@_post("return-decision", "审核退单申请", TicketReturnDecisionBody)
def decide_return(call: Call, ticket_id: str):
    body: TicketReturnDecisionBody = call.body
    return _transition(call, ticket_id, "decide_return", accept=body.accept, note=body.note)


@_post("complexity", "调整繁简（派单员）", TicketComplexityBody)
def set_complexity(call: Call, ticket_id: str):
    from chalicelib.domain.tickets.ticket import Complexity

    body: TicketComplexityBody = call.body
    return _transition(
        call,
        ticket_id,
        "set_complexity",
        complexity=Complexity(body.complexity),
        reason=body.reason,
    )


@_post("extension", "申请延期（仅复杂件）", TicketExtensionBody)
def request_extension(call: Call, ticket_id: str):
    body: TicketExtensionBody = call.body
    return _transition(call, ticket_id, "request_extension", days=body.days, reason=body.reason)


@_post("extension-decision", "审批延期申请（派单员）", TicketExtensionDecisionBody)
def decide_extension(call: Call, ticket_id: str):
    body: TicketExtensionDecisionBody = call.body
    return _transition(call, ticket_id, "decide_extension", approve=body.approve, note=body.note)


# ---- routes: routing rules and reports --------------------------------------------------


@api_route(
    bp,
    "/admin/ticket-routing",
    summary="当前派单规则（按顺序匹配，先中先得）",
    tags=_TAGS,
    response=RoutingRulesView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_routing(call: Call):
    from chalicelib.service_layer.tickets.routing import get_rule_set

    return _rules_view(get_rule_set(_deps(), call.user))


@api_route(
    bp,
    "/admin/ticket-routing",
    method="PUT",
    summary="发布新版派单规则（管理员）",
    tags=_TAGS,
    body=RoutingRulesBody,
    response=RoutingRulesView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def replace_routing(call: Call):
    from chalicelib.domain.tickets.routing import RoutingRule
    from chalicelib.domain.tickets.ticket import Complexity, TicketKind
    from chalicelib.service_layer.tickets.routing import replace_rule_set

    body: RoutingRulesBody = call.body
    rules = [
        RoutingRule(
            rule_id=r.rule_id,
            name=r.name,
            department_id=r.department_id,
            complexity=Complexity(r.complexity),
            kinds=frozenset(TicketKind(k) for k in r.kinds),
            service_item_ids=frozenset(r.item_codes),
            item_department_ids=frozenset(r.item_department_ids),
            keywords=tuple(r.keywords),
            centre_ids=frozenset(r.centre_ids),
            enabled=r.enabled,
        )
        for r in body.rules
    ]
    result = replace_rule_set(
        _deps(),
        call.user,
        rules=rules,
        item_departments=dict(body.item_departments),
        expected_version=body.expected_version,
    )
    return _rules_view(result)


@api_route(
    bp,
    "/admin/ticket-limits",
    summary="工单时限（“1、5、15”、回访、重新打开、延期），当前生效版本及待生效版本",
    tags=_TAGS,
    response=TicketLimitsView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_limits(call: Call):
    from chalicelib.service_layer.tickets.limits import get_limits

    view = get_limits(_deps(), call.user)
    return TicketLimitsView(
        in_force=_limits_view(view.in_force),
        scheduled=[_limits_view(v) for v in view.scheduled],
    )


@api_route(
    bp,
    "/admin/ticket-limits",
    method="PUT",
    summary="发布新版工单时限（区政务办或管理员），自生效日期起用于新开始的时限",
    tags=_TAGS,
    body=TicketLimitsBody,
    response=TicketLimitsVersionView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def replace_limits(call: Call):
    from chalicelib.domain.tickets.limits import TicketLimits
    from chalicelib.service_layer.tickets.limits import replace_limits as replace

    body: TicketLimitsBody = call.body
    version = replace(
        _deps(),
        call.user,
        limits=TicketLimits(**body.limits.model_dump()),
        effective_from=body.effective_from,
        expected_version=body.expected_version,
        note=body.note,
    )
    return _limits_view(version)


@api_route(
    bp,
    "/reports/tickets",
    summary="办不成事月度统计（按部门）；format=csv 或 Accept: text/csv 下载表格",
    tags=_TAGS,
    query=TicketReportQuery,
    response=TicketReportView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def ticket_report(call: Call):
    from chalicelib.entrypoints.http.export import csv_response, wants_csv
    from chalicelib.service_layer.tickets.report import ticket_report as report

    month = call.query.month
    rows = report(_deps(), call.user, month)
    view = TicketReportView(
        month=month,
        departments=[
            TicketDepartmentReport(
                department_id=r.department_id,
                department_name=r.department_name,
                received=r.counts.get("received", 0),
                contact_judged=r.counts.get("contact_judged", 0),
                contact_on_time=r.counts.get("contact_on_time", 0),
                contact_on_time_rate=r.rate("contact_on_time", "contact_judged"),
                resolve_judged=r.counts.get("resolve_judged", 0),
                resolve_on_time=r.counts.get("resolve_on_time", 0),
                resolve_on_time_rate=r.rate("resolve_on_time", "resolve_judged"),
                overdue=r.overdue,
                escalations=r.escalations,
                reported=r.reported,
                call_backs=r.counts.get("call_backs", 0),
                satisfied=r.counts.get("satisfied", 0),
                satisfaction_rate=r.rate("satisfied", "call_backs"),
                call_back_judged=r.counts.get("call_back_judged", 0),
                call_back_on_time_rate=r.rate("call_back_on_time", "call_back_judged"),
                reopened=r.counts.get("reopened", 0),
                transferred_out=r.counts.get("transferred_out", 0),
                return_requests=r.counts.get("return_requests", 0),
            )
            for r in rows
        ],
    )
    if wants_csv(call, call.query.format):
        columns = ["month", *TicketDepartmentReport.model_fields]
        lines = [{"month": month, **row.model_dump()} for row in view.departments]
        return csv_response(lines, columns, f"tickets-{month}.csv")
    return view


# ---- mapping ----------------------------------------------------------------------------


def _rules_view(rules: Any) -> RoutingRulesView:
    return RoutingRulesView(
        version=rules.version,
        rules=[_rule_view(r) for r in rules.rules],
        item_departments={_code(k) or k: v for k, v in rules.item_departments.items()},
        updated_by=rules.updated_by,
        updated_at=rules.updated_at,
    )


def _limits_view(version: Any) -> TicketLimitsVersionView:
    return TicketLimitsVersionView(
        version=version.version,
        limits=TicketLimitsValues(**version.limits.to_dict()),
        effective_from=version.effective_from.isoformat() if version.effective_from else None,
        updated_by=version.updated_by,
        updated_at=version.updated_at,
        note=version.note,
    )


def _code(value: str | None) -> str | None:
    """Tickets filed before items were named by the guide's code read as that code."""
    from chalicelib.domain.items import item_code

    return item_code(value) if value else None


def _rule_view(rule: Any) -> RoutingRuleView:
    data = rule.to_dict()
    data["item_codes"] = data.pop("service_item_ids")
    return RoutingRuleView(**data)


def _page(page: Any, now: datetime) -> TicketPageView:
    return TicketPageView(
        items=[_summary(t, now) for t in page.items], next_cursor=encode_cursor(page.last_key)
    )


def _summary(ticket: Any, now: datetime) -> TicketSummaryView:
    from chalicelib.domain.clocks import deadline_state
    from chalicelib.domain.tickets.ticket import KIND_LABELS, STATE_LABELS
    from chalicelib.domain.tickets.transitions import TRANSITIONS

    due = ticket.governing_due
    governing = next(
        (r for r in ticket.clocks.values() if r.is_open and r.due_at == due and due), None
    )
    state = deadline_state(governing.state, governing.due_at, now) if governing else None
    latest = ticket.timeline[-1] if ticket.timeline else None
    return TicketSummaryView(
        ticket_id=ticket.ticket_id,
        kind=ticket.kind.value,
        kind_label=KIND_LABELS[ticket.kind],
        state=ticket.state.value,
        state_label=STATE_LABELS[ticket.state],
        complexity=ticket.complexity.value,
        department_id=ticket.department_id,
        department_name=ticket.department_name,
        item_code=_code(ticket.service_item_id),
        item_name=ticket.service_item_name,
        next_due_at=due,
        next_deadline_state=state,
        overdue=state == "breached" or (due is not None and now > due),
        latest_event=latest.event.value if latest else None,
        latest_event_label=TRANSITIONS[latest.event].label if latest else None,
        latest_event_at=latest.at if latest else None,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        centre_id=ticket.centre_id,
    )


_INTERNAL_EVENTS = {
    "request_return",
    "accept_return",
    "reject_return",
    "set_complexity",
    "request_extension",
    "approve_extension",
    "reject_extension",
}


def ticket_view(ticket: Any, viewer: Any, now: datetime) -> TicketView:
    """The person sees their own data and masked staff names and phones; staff see the
    person's contact (to reach them) but not their full ID number."""
    from chalicelib.domain.clocks import KIND_LABELS as CLOCK_KINDS
    from chalicelib.domain.clocks import deadline_state
    from chalicelib.domain.identity import SYSTEM
    from chalicelib.domain.personal_data import mask_id_number, mask_mobile
    from chalicelib.domain.tickets.ticket import KIND_LABELS, STATE_LABELS, Event, mask_name
    from chalicelib.domain.tickets.transitions import TRANSITIONS, allowed_events

    public = viewer.is_public
    staff_roles = {"window_staff", "department_staff", "dispatcher", "supervisor", "admin"}

    def staff_name(name: str, role: str, user_id: str) -> str:
        hidden = public and role in staff_roles and user_id != SYSTEM.user_id
        return mask_name(name) if hidden else name

    def staff_record(record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is None:
            return None
        shown = dict(record)
        if public:
            shown.pop("by", None)
            shown.pop("decided_by", None)
            if shown.get("by_name"):
                shown["by_name"] = mask_name(shown["by_name"])
            if shown.get("staff_phone"):
                shown["staff_phone"] = mask_mobile(shown["staff_phone"])
        return shown

    owner = ticket.owner
    subject = owner.subject_id
    mobile = ticket.contact.mobile
    if subject and not public and len(subject) == 18 and subject[:17].isdigit():
        subject = mask_id_number(subject)
    if public and subject and viewer.subject_id and subject != viewer.subject_id:
        # A ticket linked to an account before identities were checked on intake: the
        # account reads it, but another person's ID number and mobile stay masked.
        subject = mask_id_number(subject) if subject[:17].isdigit() else subject
        mobile = mask_mobile(mobile) if mobile else mobile
    details = ticket.details
    timeline = [
        TicketTimelineView(
            seq=e.seq,
            at=e.at,
            event=e.event.value,
            label=TRANSITIONS[e.event].label,
            from_state=e.from_state.value if e.from_state else None,
            to_state=e.to_state.value,
            actor_role=e.actor_role,
            actor_name=staff_name(e.actor_name, e.actor_role, e.actor_id),
            note="" if public and e.event.value in _INTERNAL_EVENTS else e.note,
        )
        for e in ticket.timeline
    ]
    deadlines = [
        TicketDeadlineView(
            kind=ref.kind,
            kind_label=CLOCK_KINDS.get(ref.kind, ref.kind),
            department_id=ref.department_id,
            state=deadline_state(ref.state, ref.due_at, now),
            overdue=deadline_state(ref.state, ref.due_at, now) == "breached",
            due_at=ref.due_at,
            provisional=ref.provisional,
            extension_days=ref.extension,
        )
        for ref in sorted(ticket.clocks.values(), key=lambda r: (r.due_at is None, r.due_at))
    ]
    return TicketView(
        ticket_id=ticket.ticket_id,
        kind=ticket.kind.value,
        kind_label=KIND_LABELS[ticket.kind],
        channel=ticket.channel.value,
        state=ticket.state.value,
        state_label=STATE_LABELS[ticket.state],
        complexity=ticket.complexity.value,
        description=ticket.description,
        item_code=_code(ticket.service_item_id),
        item_name=ticket.service_item_name,
        application_id=ticket.application_id,
        attachments=list(ticket.attachments),
        centre_id=ticket.centre_id,
        department_id=ticket.department_id,
        department_name=ticket.department_name,
        routing=TicketRoutingView(
            rule_id=ticket.routing.rule_id,
            rule_version=ticket.routing.rule_version,
            ruleset_version=ticket.routing.ruleset_version,
        )
        if ticket.routing
        else None,
        owner=TicketOwnerView(name=owner.name, subject_id=subject, mobile=mobile),
        contact_method=ticket.contact.method.value,
        first_contact=staff_record(details.get("first_contact")),
        reply=staff_record(details.get("reply")),
        call_back=staff_record(details.get("call_back")),
        waiting=details.get("waiting"),
        return_request=None if public else details.get("return_request"),
        extension=None if public else details.get("extension"),
        possible_duplicates=list(ticket.possible_duplicates),
        deadlines=deadlines,
        timeline=timeline,
        allowed_actions=[
            e.value for e in allowed_events(ticket, viewer.role) if e is not Event.SUBMIT
        ],
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
    )
