"""好差评 over HTTP: rating a handling, the rectification task of a bad review, appeals, the
monthly report (JSON or CSV) and the good-rate alert settings."""

from typing import Annotated, Any, Literal

from chalice import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

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
from chalicelib.entrypoints.http.types import Text

bp = Blueprint(__name__)

_TAGS = ("reviews",)
Level = Annotated[int, Field(ge=1, le=5)]
Ref = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,128}$")]
EvidenceRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,199}$")]
Note = Text(1000, min_length=1, multiline=True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class ReviewBody(_Body):
    handling_type: Literal["application", "booking", "ticket"]
    handling_id: Ref
    kind: Literal["initial", "follow_up"] = "initial"
    rating: Level = Field(description="5 非常满意 4 满意 3 基本满意 2 不满意 1 非常不满意")
    dimensions: dict[Text(20, min_length=1), Level] = Field(
        description="线上：整体满意度、办事效率、办事指南精确度、办事便捷度、平台操作性；"
        "线下：整体满意度、服务效率、服务水平、服务态度"
    )
    tags: list[Text(20)] = Field(default_factory=list, max_length=10)
    comment: Text(500, multiline=True) = Field(default="", description="差评（1、2）必填")
    anonymous: bool = False


class AppealView(ApiModel):
    state: str
    reason: str
    statement: str
    evidence: list[str]
    at: str
    decided_at: str | None = None
    decision_note: str = ""


class ReviewView(ApiModel):
    review_id: str
    kind: str
    handling_type: str
    handling_id: str
    department_id: str
    centre_id: str | None = None
    channel: str
    rating: int
    level: str
    dimensions: dict[str, int]
    tags: list[str]
    comment: str
    anonymous: bool
    created_at: str
    excluded_from_rankings: bool
    appeal: AppealView | None = None
    rectification_state: str | None = None


class TaskView(ApiModel):
    review_id: str
    department_id: str
    handling_type: str
    handling_id: str
    rating: int
    real_name: bool
    state: str
    complex: bool
    round: int
    opened_at: str
    contact: dict[str, Any] | None = None
    rectification: dict[str, Any] | None = None
    call_back: dict[str, Any] | None = None
    contact_on_time: bool | None = None
    rectify_on_time: bool | None = None
    history: list[dict[str, Any]]
    deadlines: list[dict[str, Any]]


class ReviewPageView(ApiModel):
    items: list[ReviewView]
    next_cursor: str | None = None


class TaskPageView(ApiModel):
    items: list[TaskView]
    next_cursor: str | None = None


class ContactBody(_Body):
    method: Literal["phone", "sms", "visit", "online"]
    note: Note
    complex: bool = Field(default=False, description="复杂情形：整改时限15个工作日")


class RectifyBody(_Body):
    cause: Note
    measures: Note
    evidence: list[EvidenceRef] = Field(min_length=1, max_length=20)


class CallBackBody(_Body):
    reached: bool
    satisfied: bool | None = None
    note: Note


class NoteBody(_Body):
    note: Note


class OptionalNoteBody(_Body):
    note: Text(1000, multiline=True) = ""


class AppealBody(_Body):
    reason: Literal["mistaken", "malicious"]
    statement: Note
    evidence: list[EvidenceRef] = Field(min_length=1, max_length=20)


class AppealDecisionBody(_Body):
    uphold: bool
    note: Note


class ReportQuery(_Body):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    format: Literal["json", "csv"] = "json"


class _ReportFigures(ApiModel):
    reviews: int
    good: int
    bad: int
    excluded: int
    good_rate: float | None
    rectify_judged: int
    rectify_on_time_rate: float | None
    real_name_bad: int
    called_back: int
    call_back_rate: float | None
    rank: int | None
    bottom_two: bool
    talk: bool


class DepartmentReportRow(_ReportFigures):
    department_id: str
    department_name: str


class CentreReportRow(_ReportFigures):
    centre_id: str
    centre_name: str


class ReportView(ApiModel):
    month: str
    final: bool
    built_at: str | None = None
    departments: list[DepartmentReportRow]
    centres: list[CentreReportRow]


class AlertPolicyBody(_Body):
    good_rate_threshold: float = Field(gt=0, le=1)
    window_days: int = Field(ge=1, le=366)
    min_reviews: int = Field(ge=1, le=10000)


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.reviews import ReviewDeps

    return ReviewDeps.from_container(container())


def _review_view(review: Any) -> ReviewView:
    from chalicelib.domain.reviews import LEVELS

    appeal = review.appeal
    return ReviewView(
        review_id=review.review_id,
        kind=review.kind.value,
        handling_type=review.handling_type.value,
        handling_id=review.handling_id,
        department_id=review.department_id,
        centre_id=review.centre_id,
        channel=review.channel.value,
        rating=review.rating,
        level=LEVELS[review.rating],
        dimensions=review.dimensions,
        tags=list(review.tags),
        comment=review.comment,
        anonymous=review.anonymous,
        created_at=review.created_at.isoformat(),
        excluded_from_rankings=review.excluded,
        appeal=AppealView(
            state=appeal.state.value,
            reason=appeal.reason,
            statement=appeal.statement,
            evidence=list(appeal.evidence),
            at=appeal.at.isoformat(),
            decided_at=appeal.decided_at.isoformat() if appeal.decided_at else None,
            decision_note=appeal.decision_note,
        )
        if appeal
        else None,
        rectification_state=review.task_state,
    )


def _changed_task(change: Any, call: Call, review_id: str, **fields: Any) -> TaskView:
    """Run one use case on the review's rectification task; answer the task as it now is."""
    deps = _deps()
    return _task_view(change(deps, call.user, review_id, **fields), deps)


def _task_view(task: Any, deps: Any) -> TaskView:
    from chalicelib.domain.clocks import deadline_state

    deadlines = []
    for name, clock_id in task.clocks.items():
        clock = deps.deadlines.clocks.get(clock_id)
        if clock is None:
            continue
        state = deadline_state(clock.state.value, clock.due_at, deps.clock.now())
        deadlines.append(
            {
                "name": name,
                "kind": clock.kind,
                "state": state,
                "due_at": clock.due_at.isoformat() if clock.due_at else None,
                "overdue": state == "breached",
            }
        )
    return TaskView(
        review_id=task.review_id,
        department_id=task.department_id,
        handling_type=task.handling_type.value,
        handling_id=task.handling_id,
        rating=task.rating,
        real_name=task.real_name,
        state=task.state.value,
        complex=task.complex,
        round=task.round,
        opened_at=task.opened_at.isoformat(),
        contact=task.contact,
        rectification=task.rectification,
        call_back=task.call_back,
        contact_on_time=task.contact_on_time,
        rectify_on_time=task.rectify_on_time,
        history=list(task.history),
        deadlines=deadlines,
    )


@api_route(
    bp,
    "/reviews",
    method="POST",
    summary="评价一次办理（好差评）；每次办理评价一次，整改后可追评一次",
    tags=_TAGS,
    body=ReviewBody,
    response=ReviewView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def submit_review(call: Call):
    from chalicelib.domain.reviews import HandlingType, Rating, ReviewKind
    from chalicelib.service_layer.reviews import submit_review as submit

    body: ReviewBody = call.body
    review = submit(
        _deps(),
        call.user,
        HandlingType(body.handling_type),
        body.handling_id,
        Rating(body.rating, dict(body.dimensions), tuple(body.tags), body.comment, body.anonymous),
        ReviewKind(body.kind),
    )
    return _review_view(review)


@api_route(
    bp,
    "/reviews/{review_id}",
    summary="查看评价",
    tags=_TAGS,
    response=ReviewView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def get_review(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import get_review as read

    review, _ = read(_deps(), call.user, review_id)
    return _review_view(review)


@api_route(
    bp,
    "/departments/{department_id}/reviews",
    summary="部门收到的评价（最新在前）",
    tags=_TAGS,
    query=PageQuery,
    response=ReviewPageView,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound, Conflict, RuleViolation),
)
def department_reviews(call: Call, department_id: str):
    from chalicelib.service_layer.reviews import list_department_reviews

    page = list_department_reviews(
        _deps(), call.user, department_id, call.query.limit, decode_cursor(call.query.cursor)
    )
    return ReviewPageView(
        items=[_review_view(r) for r in page.items], next_cursor=encode_cursor(page.last_key)
    )


@api_route(
    bp,
    "/departments/{department_id}/rectifications",
    summary="部门的差评整改任务（最新在前）",
    tags=_TAGS,
    query=PageQuery,
    response=TaskPageView,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def department_tasks(call: Call, department_id: str):
    from chalicelib.service_layer.reviews import list_department_tasks

    deps = _deps()
    page = list_department_tasks(
        deps, call.user, department_id, call.query.limit, decode_cursor(call.query.cursor)
    )
    return TaskPageView(
        items=[_task_view(t, deps) for t in page.items], next_cursor=encode_cursor(page.last_key)
    )


@api_route(
    bp,
    "/reviews/{review_id}/rectification",
    summary="差评整改任务及其时限",
    tags=_TAGS,
    response=TaskView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def get_task(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import get_task as read

    deps = _deps()
    return _task_view(read(deps, call.user, review_id), deps)


@api_route(
    bp,
    "/reviews/{review_id}/rectification/contact",
    method="POST",
    summary="承办部门登记已联系办事人（1个工作日内）；复杂情形整改时限15个工作日",
    tags=_TAGS,
    body=ContactBody,
    response=TaskView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def contact(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import record_contact

    body: ContactBody = call.body
    return _changed_task(
        record_contact, call, review_id, method=body.method, note=body.note, complex_=body.complex
    )


@api_route(
    bp,
    "/reviews/{review_id}/rectification/rectify",
    method="POST",
    summary="承办部门提交差评原因、整改措施和佐证材料",
    tags=_TAGS,
    body=RectifyBody,
    response=TaskView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def rectify(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import record_rectification

    body: RectifyBody = call.body
    return _changed_task(
        record_rectification,
        call,
        review_id,
        cause=body.cause,
        measures=body.measures,
        evidence=tuple(body.evidence),
    )


@api_route(
    bp,
    "/reviews/{review_id}/rectification/call-back",
    method="POST",
    summary="区政务办回访办事人",
    tags=_TAGS,
    body=CallBackBody,
    response=TaskView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def call_back(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import record_call_back

    body: CallBackBody = call.body
    return _changed_task(
        record_call_back,
        call,
        review_id,
        reached=body.reached,
        satisfied=body.satisfied,
        note=body.note,
    )


@api_route(
    bp,
    "/reviews/{review_id}/rectification/accept",
    method="POST",
    summary="区政务办验收整改（实名差评须先回访）",
    tags=_TAGS,
    body=OptionalNoteBody,
    response=TaskView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def accept(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import accept_rectification

    return _changed_task(accept_rectification, call, review_id, note=call.body.note)


@api_route(
    bp,
    "/reviews/{review_id}/rectification/send-back",
    method="POST",
    summary="区政务办退回整改（重新计时5个工作日）",
    tags=_TAGS,
    body=NoteBody,
    response=TaskView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def send_back(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import send_back as back

    return _changed_task(back, call, review_id, note=call.body.note)


@api_route(
    bp,
    "/reviews/{review_id}/appeal",
    method="POST",
    summary="承办部门对差评提出申诉（误评、恶意差评），须附证明材料",
    tags=_TAGS,
    body=AppealBody,
    response=ReviewView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def appeal(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import file_appeal

    body: AppealBody = call.body
    review = file_appeal(
        _deps(),
        call.user,
        review_id,
        reason=body.reason,
        statement=body.statement,
        evidence=tuple(body.evidence),
    )
    return _review_view(review)


@api_route(
    bp,
    "/reviews/{review_id}/appeal/decision",
    method="POST",
    summary="复核申诉：成立则该评价不计入排名（存档保留）",
    tags=_TAGS,
    body=AppealDecisionBody,
    response=ReviewView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def decide_appeal(call: Call, review_id: str):
    from chalicelib.service_layer.reviews import decide_appeal as decide

    body: AppealDecisionBody = call.body
    return _review_view(decide(_deps(), call.user, review_id, uphold=body.uphold, note=body.note))


@api_route(
    bp,
    "/reports/reviews",
    summary="好差评月度报告（部门与中心排名、约谈提示）；format=csv 或 Accept: text/csv 下载表格",
    tags=_TAGS,
    query=ReportQuery,
    response=ReportView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def review_report(call: Call):
    from chalicelib.service_layer.reviews import read_report, report_csv

    query: ReportQuery = call.query
    report = read_report(_deps(), call.user, query.month)
    if query.format == "csv" or "text/csv" in call.headers.get("accept", ""):
        return Response(
            body=report_csv(report),
            status_code=200,
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="reviews-{query.month}.csv"',
            },
        )
    return ReportView.model_validate(
        {
            **report,
            "departments": [_named(r, "department") for r in report["departments"]],
            "centres": [_named(r, "centre") for r in report["centres"]],
        }
    )


def _named(row: dict[str, Any], scope: str) -> dict[str, Any]:
    """A stored report row (`id`, `name`) with the columns every report uses."""
    named = {k: v for k, v in row.items() if k not in ("id", "name")}
    return {**named, f"{scope}_id": row["id"], f"{scope}_name": row["name"]}


@api_route(
    bp,
    "/review-settings/alerts",
    summary="好评率预警设置（阈值、滚动窗口天数、最少评价数）",
    tags=_TAGS,
    response=AlertPolicyBody,
    errors=(InvalidInput, Forbidden, NotFound),
)
def get_alert_policy(call: Call):
    from chalicelib.service_layer.reviews import get_alert_policy as read

    return AlertPolicyBody.model_validate(vars(read(_deps(), call.user)))


@api_route(
    bp,
    "/review-settings/alerts",
    method="PUT",
    summary="修改好评率预警设置",
    tags=_TAGS,
    body=AlertPolicyBody,
    response=AlertPolicyBody,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def put_alert_policy(call: Call):
    from chalicelib.domain.reviews import AlertPolicy
    from chalicelib.service_layer.reviews import set_alert_policy

    policy = set_alert_policy(_deps(), call.user, AlertPolicy(**call.body.model_dump()))
    return AlertPolicyBody.model_validate(vars(policy))
