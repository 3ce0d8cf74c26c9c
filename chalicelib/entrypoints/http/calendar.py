"""Working-day calendar (public), official schedules (admin), clocks and deadline figures."""

from datetime import date
from typing import Any

from chalice import Blueprint
from pydantic import ConfigDict, Field

from chalicelib.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Day, Text

bp = Blueprint(__name__)

_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.deadlines import DeadlineDeps

    return DeadlineDeps.from_container(container())


def _year(value: str) -> int:
    if not value.isdigit() or len(value) != 4:
        raise InvalidInput("年份应为四位数字", code="invalid_year")
    return int(value)


# ---- public calendar ----------------------------------------------------------------------


class DueDateQuery(ApiModel):
    start: Day = Field(description="起算日（YYYY-MM-DD），当日不计入")
    working_days: int = Field(ge=0, le=1000, description="工作日数")


class DueDateView(ApiModel):
    due_date: date
    provisional: bool = Field(description="涉及尚未公布官方安排的年份，日期为推定")


class WorkingDaysQuery(ApiModel):
    model_config = ConfigDict(populate_by_name=True)
    start: Day = Field(alias="from", description="起始日（YYYY-MM-DD），当日不计入")
    end: Day = Field(alias="to", description="截止日（YYYY-MM-DD），当日计入")


class WorkingDaysView(ApiModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    working_days: int = Field(description="起始日之后至截止日（含）的工作日数；倒序时为负数")
    provisional: bool


class CalendarYearView(ApiModel):
    year: int
    source: str = Field(description="official（已载入官方安排）、package（已公布）或 estimate")
    provisional: bool
    holidays: list[date]
    makeup_workdays: list[Day] = Field(description="调休上班的周六、周日")
    reference: str = ""


@api_route(
    bp,
    "/calendar/due-date",
    summary="按工作日计算到期日（起算日不计入）",
    tags=("calendar",),
    query=DueDateQuery,
    response=DueDateView,
    public=True,
    errors=(InvalidInput, Conflict),
)
def calendar_due_date(call: Call):
    from chalicelib.service_layer import calendar

    due, provisional = calendar.due_date(_deps(), call.query.start, call.query.working_days)
    return DueDateView(due_date=due, provisional=provisional)


@api_route(
    bp,
    "/calendar/working-days",
    summary="两个日期之间的工作日数",
    tags=("calendar",),
    query=WorkingDaysQuery,
    response=WorkingDaysView,
    public=True,
    errors=(InvalidInput, Conflict),
)
def calendar_working_days(call: Call):
    from chalicelib.service_layer import calendar

    count, provisional = calendar.working_days(_deps(), call.query.start, call.query.end)
    return WorkingDaysView.model_validate(
        {
            "from": call.query.start,
            "to": call.query.end,
            "working_days": count,
            "provisional": provisional,
        }
    )


@api_route(
    bp,
    "/calendar/years/{year}",
    summary="某年的节假日与调休上班日",
    tags=("calendar",),
    response=CalendarYearView,
    public=True,
    errors=(InvalidInput, Conflict),
)
def calendar_year(call: Call, year: str):
    from chalicelib.service_layer import calendar

    return _year_view(calendar.year_schedule(_deps(), _year(year)))


def _year_view(schedule: Any) -> CalendarYearView:
    return CalendarYearView(
        year=schedule.year,
        source=schedule.source.value,
        provisional=not schedule.official,
        holidays=sorted(schedule.holidays),
        makeup_workdays=sorted(schedule.makeup_workdays),
        reference=schedule.reference,
    )


# ---- admin: official schedules ------------------------------------------------------------


class OfficialYearRequest(ApiModel):
    model_config = ConfigDict(extra="forbid")
    holidays: list[Day] = Field(min_length=1, max_length=60, description="放假日期（含周末）")
    makeup_workdays: list[date] = Field(
        default_factory=list, max_length=20, description="调休上班日（周六或周日）"
    )
    reference: Text(200) = Field(
        default="",
        description="发布文件，如“国务院办公厅关于2027年部分节假日安排的通知”",
    )


class OfficialYearView(CalendarYearView):
    version: int
    recompute_job_id: str = Field(description="重算该年未结时限的作业编号")


@api_route(
    bp,
    "/admin/calendar/{year}",
    method="PUT",
    summary="载入某年官方节假日与调休安排，并重算该年的未结时限",
    tags=("calendar",),
    body=OfficialYearRequest,
    response=OfficialYearView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def load_official_calendar_year(call: Call, year: str):
    from chalicelib.service_layer import calendar

    result = calendar.load_official_year(
        _deps(),
        call.user,
        _year(year),
        call.body.holidays,
        call.body.makeup_workdays,
        call.body.reference,
    )
    view = _year_view(result.schedule)
    return OfficialYearView(
        **view.model_dump(), version=result.version, recompute_job_id=result.job["job_id"]
    )


# ---- staff: clocks ------------------------------------------------------------------------


class ClocksQuery(PageQuery):
    subject_type: str = Field(pattern=_NAME_PATTERN, description="对象类型，如 ticket")
    subject_id: str = Field(min_length=1, max_length=128, description="对象编号")


class DeadlineClockView(ApiModel):
    clock_id: str
    subject_type: str
    subject_id: str
    kind: str
    unit: str = Field(description="working_days 或 hours")
    limit: int
    extension: int
    started_at: str
    state: str = Field(
        description="running、paused、met、breached 或 cancelled；已过时限未办结即为 breached"
    )
    overdue: bool = Field(description="已超时限（state 为 breached）")
    open: bool
    due_date: date | None = None
    due_at: str | None = None
    provisional: bool
    department_id: str | None = None
    owner_id: str | None = None
    label: str = ""
    pauses: int
    steps_done: list[str]
    next_attention_at: str | None = None
    closed_at: str | None = None


class DeadlineClockPage(ApiModel):
    items: list[DeadlineClockView]
    next_cursor: str | None = None


class EscalationStepView(ApiModel):
    step: str
    status: str | None = None
    taken_at: str | None = None
    finished_at: str | None = None
    recipient: str | None = None
    overdue_working_days: int | None = None


class DeadlineClockDetail(DeadlineClockView):
    escalations: list[EscalationStepView]


def _clock_view(clock: Any) -> DeadlineClockView:
    from chalicelib.bootstrap import container
    from chalicelib.domain.clocks import deadline_state

    state = deadline_state(clock.state.value, clock.due_at, container().clock.now())
    return DeadlineClockView(
        clock_id=clock.clock_id,
        subject_type=clock.subject_type,
        subject_id=clock.subject_id,
        kind=clock.kind,
        unit=clock.unit.value,
        limit=clock.limit,
        extension=clock.extension,
        started_at=clock.started_at.isoformat(),
        state=state,
        overdue=state == "breached",
        open=clock.is_open,
        due_date=clock.due_date,
        due_at=clock.due_at.isoformat() if clock.due_at else None,
        provisional=clock.provisional,
        department_id=clock.department_id,
        owner_id=clock.owner_id,
        label=clock.label,
        pauses=len(clock.pauses),
        steps_done=sorted(clock.steps_done),
        next_attention_at=clock.next_attention_at.isoformat() if clock.next_attention_at else None,
        closed_at=clock.closed_at.isoformat() if clock.closed_at else None,
    )


@api_route(
    bp,
    "/clocks",
    summary="某个办理对象的全部时限计时",
    tags=("clocks",),
    query=ClocksQuery,
    response=DeadlineClockPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_deadline_clocks(call: Call):
    from chalicelib.service_layer import deadlines

    q = call.query
    page = deadlines.list_clocks(
        _deps(), call.user, q.subject_type, q.subject_id, q.limit, decode_cursor(q.cursor)
    )
    return DeadlineClockPage(
        items=[_clock_view(c) for c in page.items], next_cursor=encode_cursor(page.last_key)
    )


@api_route(
    bp,
    "/clocks/{clock_id}",
    summary="一个时限计时及其已执行的升级步骤",
    tags=("clocks",),
    response=DeadlineClockDetail,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_deadline_clock(call: Call, clock_id: str):
    from chalicelib.service_layer import deadlines

    clock, steps = deadlines.read_clock(_deps(), call.user, clock_id)
    return DeadlineClockDetail(
        **_clock_view(clock).model_dump(),
        escalations=[
            EscalationStepView(
                step=s["step"],
                status=s.get("status"),
                taken_at=s.get("taken_at"),
                finished_at=s.get("finished_at"),
                recipient=s.get("recipient"),
                overdue_working_days=s.get("overdue_working_days"),
            )
            for s in steps
        ],
    )


# ---- staff: monthly figures and escalation lists ------------------------------------------


class MonthQuery(ApiModel):
    month: str = Field(pattern=_MONTH_PATTERN, description="月份（YYYY-MM）")


class FiguresRow(ApiModel):
    kind: str
    department_id: str | None = None
    counts: dict[str, int] = Field(
        description="started、met、completed_late、breached、cancelled、escalation_<步骤> 计数"
    )
    on_time_rate: float | None = Field(description="按时办结数 /（按时办结数 + 超期数）")


class FiguresView(ApiModel):
    month: str
    items: list[FiguresRow]


class EscalationsQuery(PageQuery):
    step: str = Field(
        pattern=_NAME_PATTERN, description="升级步骤：supervise（督办）、report（通报）等"
    )
    month: str = Field(pattern=_MONTH_PATTERN, description="月份（YYYY-MM）")


class EscalationRecordView(ApiModel):
    clock_id: str
    step: str
    status: str | None = None
    taken_at: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    kind: str | None = None
    department_id: str | None = None
    due_at: str | None = None
    overdue_working_days: int | None = None


class EscalationRecordPage(ApiModel):
    items: list[EscalationRecordView]
    next_cursor: str | None = None


@api_route(
    bp,
    "/deadline-reports/figures",
    summary="按计时类型和部门统计的月度时限数据（按时率、超期、升级）",
    tags=("clocks",),
    query=MonthQuery,
    response=FiguresView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def deadline_monthly_figures(call: Call):
    from chalicelib.service_layer import deadlines

    rows = deadlines.monthly_figures(_deps(), call.user, call.query.month)
    return FiguresView(
        month=call.query.month,
        items=[
            FiguresRow(
                kind=r.kind,
                department_id=r.department_id,
                counts=r.counts,
                on_time_rate=r.on_time_rate,
            )
            for r in rows
        ],
    )


@api_route(
    bp,
    "/deadline-reports/escalations",
    summary="某月执行的升级步骤清单（如督办、通报）",
    tags=("clocks",),
    query=EscalationsQuery,
    response=EscalationRecordPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def deadline_escalation_records(call: Call):
    from chalicelib.service_layer import deadlines

    q = call.query
    page = deadlines.escalation_records(
        _deps(), call.user, q.step, q.month, q.limit, decode_cursor(q.cursor)
    )
    fields = EscalationRecordView.model_fields
    return EscalationRecordPage(
        items=[
            EscalationRecordView(**{k: v for k, v in r.items() if k in fields}) for r in page.items
        ],
        next_cursor=encode_cursor(page.last_key),
    )


# ---- admin: escalation ladders ------------------------------------------------------------


class LadderStepBody(ApiModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME_PATTERN)
    trigger: str = Field(pattern=r"^(share_used|at_due|overdue_working_days)$")
    value: float = Field(default=0, ge=0, le=60)
    recipient: str = Field(default="responsible", pattern=r"^(responsible|owner|supervisor)$")
    category: Text(64) = ""
    title: Text(100, min_length=1)
    body: Text(500, min_length=1, multiline=True)


class LadderBody(ApiModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[LadderStepBody] = Field(min_length=1, max_length=10)
    supervisor_department_id: str = Field(default="dept-zwb", min_length=1, max_length=64)


class LadderView(LadderBody):
    kind: str
    configured: bool = Field(description="false 表示使用默认升级规则")


@api_route(
    bp,
    "/admin/escalation-ladders/{kind}",
    summary="某类计时的逐级升级规则",
    tags=("clocks",),
    response=LadderView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_escalation_ladder(call: Call, kind: str):
    from chalicelib.service_layer import deadlines

    ladder, configured = deadlines.ladder_for(_deps(), call.user, kind)
    return LadderView(kind=kind, configured=configured, **ladder.to_dict())


@api_route(
    bp,
    "/admin/escalation-ladders/{kind}",
    method="PUT",
    summary="设置某类计时的逐级升级规则（对此后开始的计时生效）",
    tags=("clocks",),
    body=LadderBody,
    response=LadderView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def configure_escalation_ladder(call: Call, kind: str):
    from chalicelib.domain.clocks import Ladder
    from chalicelib.service_layer import deadlines

    ladder = Ladder.from_dict(call.body.model_dump())
    saved = deadlines.configure_ladder(_deps(), call.user, kind, ladder)
    return LadderView(kind=kind, configured=True, **saved.to_dict())
