"""Booking over HTTP: centres and slots (public), bookings (people), the queue at the centre
(window staff), live help (people and agents) and the booking rules (admin)."""

import datetime as dt
from typing import Any, Literal

from chalice import Blueprint
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

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
from chalicelib.entrypoints.http.types import Day, Tag, Text

bp = Blueprint(__name__)

_TAGS = ("bookings",)

# The domain's enumerations as literals: importing the domain module here would add its
# dataclasses to every cold start (tests/unit/test_booking_domain.py checks that they match).
ChannelName = Literal["counter", "video", "home_visit"]
ComplexityName = Literal["simple", "complex"]
CenterKindName = Literal["district", "sub_centre", "community"]
BookingStatusName = Literal["booked", "checked_in", "called", "served", "cancelled", "no_show"]
HelpStatusName = Literal["waiting", "picked_up", "resolved", "not_resolved", "abandoned"]
HelpOutcomeName = Literal["resolved", "not_resolved", "abandoned"]


class _Model(BaseModel):
    # Validators are built on first use, not at import: this module is part of every cold start.
    model_config = ConfigDict(defer_build=True)


class _Input(_Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")


_ID = r"^[A-Za-z0-9\-]{1,64}$"
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.bookings.common import BookingDeps

    return BookingDeps.from_container(container())


# ---- views ----------------------------------------------------------------------------------


class SessionView(_Model):
    opens: str
    closes: str


class CenterView(_Model):
    centre_id: str
    name: str
    kind: CenterKindName
    address: str
    phone: str
    opening_hours: list[SessionView] = Field(description="工作日开放时段（调休上班日同样开放）")
    breaks: list[SessionView] = Field(description="午间休息等不开放时段")
    area: list[str] = Field(description="上门办服务范围（街镇）")


class CenterPage(_Model):
    items: list[CenterView]
    next_cursor: str | None = None


class ServiceView(_Model):
    item_code: str
    item_name: str
    channel: ChannelName
    slot_minutes: int
    seats: int = Field(description="每个时段的名额")
    priority_seats: int = Field(description="为老年人、残疾人保留的名额")
    complexity: ComplexityName


class CenterDetailView(CenterView):
    services: list[ServiceView]


class CentersQuery(PageQuery):
    kind: CenterKindName | None = Field(
        default=None, description="district、sub_centre 或 community"
    )


class SlotsQuery(_Model):
    item_code: str = Field(
        pattern=_ID,
        validation_alias=AliasChoices("item_code", "item"),
        description="办事指南事项编码（旧参数名 item 仍可用）",
    )
    date: Day = Field(description="日期（YYYY-MM-DD）")
    channel: ChannelName | None = Field(default=None, description="counter、video 或 home_visit")


class SlotView(_Model):
    start: str
    end: str
    seats: int
    free: int = Field(description="当前普通群众可约的名额")
    free_priority: int = Field(description="老年人、残疾人可约的名额（含保留名额）")


class ServiceSlotsView(_Model):
    item_code: str
    item_name: str
    channel: ChannelName
    complexity: ComplexityName
    slots: list[SlotView]


class DaySlotsView(_Model):
    centre_id: str
    centre_name: str
    date: dt.date
    open: bool = Field(description="当天是否为工作日（开放）")
    bookable: bool = Field(description="当天是否在可预约范围内（1至5个工作日后）")
    services: list[ServiceSlotsView]


class AddressIn(_Input):
    town: Text(20, min_length=2) = Field(description="街道或镇，如 夏阳街道")
    detail: Text(200, min_length=2) = Field(description="详细地址")


class BookingCreate(_Input):
    centre_id: str = Field(pattern=_ID, validation_alias=AliasChoices("centre_id", "center_id"))
    item_code: str = Field(
        pattern=_ID,
        validation_alias=AliasChoices("item_code", "item_id"),
        description="办事指南事项编码，如 QP-GA-601",
    )
    channel: ChannelName = "counter"
    date: Day
    start: str = Field(pattern=_HHMM, description="时段开始时间 HH:MM")
    address: AddressIn | None = Field(default=None, description="上门办必填")


class RescheduleRequest(_Input):
    date: Day
    start: str = Field(pattern=_HHMM)


class CheckInRequest(_Input):
    code: str | None = Field(
        default=None, min_length=8, max_length=64, description="扫描现场签到二维码得到的签到码"
    )


class CancelByTokenRequest(_Input):
    token: str = Field(min_length=8, max_length=128)


class VideoView(_Model):
    room_id: str
    join_url: str


class AddressView(_Model):
    town: str
    detail: str


class BookingView(_Model):
    booking_id: str
    status: BookingStatusName
    centre_id: str
    centre_name: str
    item_code: str
    item_name: str
    channel: ChannelName
    complexity: ComplexityName
    date: dt.date
    start: str
    end: str
    priority: bool = Field(description="老年人、残疾人优先")
    revision: int = Field(description="改约次数")
    video: VideoView | None = None
    address: AddressView | None = None
    staff_id: str | None = Field(default=None, description="上门办工作人员")
    created_at: dt.datetime
    checked_in_at: dt.datetime | None = None
    called_at: dt.datetime | None = None
    served_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    no_show_at: dt.datetime | None = None
    wait_seconds: int | None = Field(default=None, description="签到（或预约时间）至叫号")
    handling_seconds: int | None = Field(default=None, description="叫号至办结")


class BookingPage(_Model):
    items: list[BookingView]
    next_cursor: str | None = None


class CheckInCodeView(_Model):
    centre_id: str
    date: dt.date
    code: str = Field(description="当天签到二维码的内容")


class QueueView(_Model):
    centre_id: str
    centre_name: str
    date: dt.date
    at: dt.datetime
    waiting: int
    waiting_priority: int
    counters: int = Field(description="近期在叫号的窗口数")
    average_wait_minutes: dict[str, float | None] = Field(description="按简易/复杂事项")
    target_minutes: dict[str, int]
    over_target: dict[str, bool]
    average_handling_minutes: float
    estimated_wait_minutes: int = Field(description="现在签到预计等候分钟数")


class RulesView(_Model):
    min_working_days_ahead: int
    max_working_days_ahead: int
    one_per_item_per_day: bool
    cancel_until_minutes_before: int
    no_show_grace_minutes: int
    no_show_limit: int
    no_show_window_days: int
    suspension_days: int
    priority_tags: list[str]
    priority_release_minutes_before: int
    check_in_opens_minutes_before: int
    remind_day_before_minutes: int
    remind_before_minutes: int
    wait_target_simple_minutes: int
    wait_target_complex_minutes: int
    wait_window_minutes: int
    help_pickup_target_seconds: int
    help_alert_department_id: str
    handling_target_minutes: int = Field(description="窗口办理时长目标（叫号至办结，分钟）")
    handling_item_targets: dict[str, int] = Field(description="按事项编码的办理时长目标（分钟）")
    version: int | None = None


class RulesUpdate(_Input):
    """The rules to change; ranges and consistency are checked by the domain (BookingRules)."""

    min_working_days_ahead: int | None = None
    max_working_days_ahead: int | None = None
    one_per_item_per_day: bool | None = None
    cancel_until_minutes_before: int | None = None
    no_show_grace_minutes: int | None = None
    no_show_limit: int | None = None
    no_show_window_days: int | None = None
    suspension_days: int | None = None
    priority_tags: list[Tag] | None = Field(default=None, max_length=10)
    priority_release_minutes_before: int | None = None
    check_in_opens_minutes_before: int | None = None
    remind_day_before_minutes: int | None = None
    remind_before_minutes: int | None = None
    wait_target_simple_minutes: int | None = None
    wait_target_complex_minutes: int | None = None
    wait_window_minutes: int | None = None
    help_pickup_target_seconds: int | None = None
    help_alert_department_id: str | None = Field(default=None, pattern=_ID)
    handling_target_minutes: int | None = None
    handling_item_targets: dict[str, int] | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _something_changes(self) -> "RulesUpdate":
        if not self.model_dump(exclude_none=True):
            raise ValueError("请至少修改一项规则")
        return self


class HelpCreate(_Input):
    topic: Text(200, min_length=2, multiline=True) = Field(description="需要帮助的问题")
    item_code: str | None = Field(
        default=None, pattern=_ID, validation_alias=AliasChoices("item_code", "item_id")
    )


class HelpView(_Model):
    request_id: str
    status: HelpStatusName
    topic: str
    item_code: str | None = None
    requested_at: dt.datetime
    picked_at: dt.datetime | None = None
    agent_id: str | None = None
    pickup_seconds: int | None = Field(default=None, description="从求助到接入的秒数")
    target_met: bool | None = Field(default=None, description="是否在1分钟目标内接入")
    video: VideoView | None = None
    team: str | None = Field(default=None, description="帮办团队：事项所属部门，否则为综合帮办")
    ended_at: dt.datetime | None = None
    outcome_reason: str | None = Field(default=None, description="未解决的原因")
    ticket_id: str | None = Field(default=None, description="未解决时转成的办不成事工单")
    conversation_id: str | None = Field(default=None, description="由智能客服转人工时的会话")
    transcript: list[str] = Field(default=[], description="转人工前与智能客服的对话记录")


class HelpOutcomeIn(_Input):
    outcome: HelpOutcomeName = Field(
        description="resolved 已解决；not_resolved 未解决（须填原因）；abandoned 求助人已离开"
    )
    reason: Text(500, multiline=True) = Field(default="", description="未解决的原因")
    file_ticket: bool = Field(default=True, description="未解决时一键转为办不成事工单（默认是）")


class HelpPage(_Model):
    items: list[HelpView]
    next_cursor: str | None = None


def item_code(value: str) -> str:
    from chalicelib.domain.items import item_code as canonical

    return canonical(value)


def _center_view(center: Any) -> dict[str, Any]:
    return {
        "centre_id": center.center_id,
        "name": center.name,
        "kind": center.kind.value,
        "address": center.address,
        "phone": center.phone,
        "opening_hours": [_session(s) for s in center.sessions],
        "breaks": [_session(s) for s in center.breaks],
        "area": list(center.area),
    }


def _session(session: Any) -> SessionView:
    return SessionView(
        opens=session.opens.strftime("%H:%M"), closes=session.closes.strftime("%H:%M")
    )


def _booking_view(booking: Any) -> BookingView:
    return BookingView(
        booking_id=booking.booking_id,
        status=booking.status.value,
        centre_id=booking.center_id,
        centre_name=booking.center_name,
        item_code=booking.item_id,
        item_name=booking.item_name,
        channel=booking.channel.value,
        complexity=booking.complexity.value,
        date=booking.day,
        start=booking.start.strftime("%H:%M"),
        end=booking.end.strftime("%H:%M"),
        priority=booking.priority,
        revision=booking.revision,
        video=VideoView(room_id=booking.video.room_id, join_url=booking.video.join_url)
        if booking.video
        else None,
        address=AddressView(town=booking.address.town, detail=booking.address.detail)
        if booking.address
        else None,
        staff_id=booking.staff_id,
        created_at=booking.created_at,
        checked_in_at=booking.checked_in_at,
        called_at=booking.called_at,
        served_at=booking.served_at,
        cancelled_at=booking.cancelled_at,
        no_show_at=booking.no_show_at,
        wait_seconds=booking.wait_seconds,
        handling_seconds=booking.handling_seconds,
    )


def _help_view(request: Any) -> HelpView:
    return HelpView(
        request_id=request.request_id,
        status=request.status.value,
        topic=request.topic,
        item_code=request.item_id,
        requested_at=request.requested_at,
        picked_at=request.picked_at,
        agent_id=request.agent_id,
        pickup_seconds=request.pickup_seconds,
        target_met=request.target_met,
        video=VideoView(room_id=request.room.room_id, join_url=request.room.join_url)
        if request.room
        else None,
        team=request.team,
        ended_at=request.ended_at,
        outcome_reason=request.outcome_reason,
        ticket_id=request.ticket_id,
        conversation_id=request.conversation_id,
        transcript=list(request.transcript),
    )


def _rules_view(rules: Any, version: int | None) -> RulesView:
    return RulesView(**rules.to_dict(), version=version)


# ---- centres and slots (public) -------------------------------------------------------------


@api_route(
    bp,
    "/centres",
    summary="政务服务中心、分中心与街镇社区事务受理服务中心（分页）",
    tags=_TAGS,
    query=CentersQuery,
    response=CenterPage,
    public=True,
    errors=(InvalidInput, Unauthenticated),
)
def list_centers(call: Call):
    from chalicelib.service_layer.bookings import centres

    page = centres.list_centers(
        _deps(),
        call.query.kind,
        call.query.limit,
        decode_cursor(call.query.cursor),
    )
    return CenterPage(
        items=[CenterView(**_center_view(c)) for c in page.items],
        next_cursor=encode_cursor(page.last_key),
    )


@api_route(
    bp,
    "/centres/{centre_id}",
    summary="服务中心详情与可预约事项",
    tags=_TAGS,
    response=CenterDetailView,
    public=True,
    errors=(InvalidInput, NotFound),
)
def get_center(call: Call, centre_id: str):
    from chalicelib.service_layer.bookings.centres import center_detail

    center, services = center_detail(_deps(), centre_id)
    return CenterDetailView(
        **_center_view(center),
        services=[
            ServiceView(
                item_code=s.item_id,
                item_name=s.item_name,
                channel=s.channel.value,
                slot_minutes=s.slot_minutes,
                seats=s.seats,
                priority_seats=s.priority_seats,
                complexity=s.complexity.value,
            )
            for s in services
        ],
    )


@api_route(
    bp,
    "/centres/{centre_id}/slots",
    summary="某事项某日的预约时段与剩余名额",
    tags=_TAGS,
    query=SlotsQuery,
    response=DaySlotsView,
    public=True,
    errors=(InvalidInput, NotFound, Conflict, RuleViolation),
)
def list_slots(call: Call, centre_id: str):
    from chalicelib.service_layer.bookings.centres import day_slots

    result = day_slots(
        _deps(), centre_id, item_code(call.query.item_code), call.query.date, call.query.channel
    )
    return DaySlotsView(
        centre_id=result.center.center_id,
        centre_name=result.center.name,
        date=result.day,
        open=result.open,
        bookable=result.bookable,
        services=[
            ServiceSlotsView(
                item_code=service.item_id,
                item_name=service.item_name,
                channel=service.channel.value,
                complexity=service.complexity.value,
                slots=[
                    SlotView(
                        start=a.slot.start.strftime("%H:%M"),
                        end=a.slot.end.strftime("%H:%M"),
                        seats=a.seats,
                        free=a.free_for(False),
                        free_priority=a.free_for(True),
                    )
                    for a in availability
                ],
            )
            for service, availability in result.services
        ],
    )


@api_route(
    bp,
    "/centres/{centre_id}/queue",
    summary="服务中心当前排队与预计等候时间",
    tags=_TAGS,
    response=QueueView,
    public=True,
    errors=(InvalidInput, NotFound),
)
def center_queue(call: Call, centre_id: str):
    from chalicelib.service_layer.bookings.queue import queue_status

    status = queue_status(_deps(), centre_id)
    estimate = status.estimate
    return QueueView(
        centre_id=status.center.center_id,
        centre_name=status.center.name,
        date=status.day,
        at=status.at,
        waiting=estimate.waiting,
        waiting_priority=estimate.waiting_priority,
        counters=estimate.counters,
        average_wait_minutes={c.value: v for c, v in estimate.average_wait_minutes.items()},
        target_minutes={c.value: v for c, v in estimate.targets_minutes.items()},
        over_target={c.value: v for c, v in estimate.over_target.items()},
        average_handling_minutes=estimate.average_handling_minutes,
        estimated_wait_minutes=estimate.estimated_wait_minutes,
    )


@api_route(
    bp,
    "/centres/{centre_id}/check-in-code",
    summary="（窗口人员）当天的现场签到二维码内容",
    tags=_TAGS,
    response=CheckInCodeView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def check_in_code(call: Call, centre_id: str):
    from chalicelib.service_layer.bookings import queue

    code, day = queue.check_in_code(_deps(), call.user, centre_id)
    return CheckInCodeView(centre_id=centre_id, date=day, code=code)


@api_route(
    bp,
    "/centres/{centre_id}/queue/next",
    method="POST",
    summary="（窗口人员）叫号：叫下一位（老年人、残疾人优先）；无人等候时返回 204",
    tags=_TAGS,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def call_next(call: Call, centre_id: str):
    from chalicelib.service_layer.bookings import queue

    called = queue.call_next(_deps(), call.user, centre_id)
    return _booking_view(called) if called is not None else None


# ---- rules ----------------------------------------------------------------------------------


@api_route(
    bp,
    "/booking-rules",
    summary="当前预约规则",
    tags=_TAGS,
    response=RulesView,
    public=True,
    errors=(InvalidInput,),
)
def read_rules(call: Call):
    from chalicelib.service_layer.bookings import rules as booking_rules

    rules, version = booking_rules.read_rules(_deps())
    return _rules_view(rules, version)


@api_route(
    bp,
    "/booking-rules",
    method="PUT",
    summary="（管理员）修改预约规则",
    tags=_TAGS,
    body=RulesUpdate,
    response=RulesView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def update_rules(call: Call):
    from chalicelib.service_layer.bookings import rules as booking_rules

    deps = _deps()
    booking_rules.update_rules(deps, call.user, call.body.model_dump(exclude_none=True))
    rules, version = booking_rules.read_rules(deps)
    return _rules_view(rules, version)


# ---- bookings -------------------------------------------------------------------------------


@api_route(
    bp,
    "/bookings",
    method="POST",
    summary="预约（支持 Idempotency-Key：重复请求返回首次的结果）",
    tags=_TAGS,
    body=BookingCreate,
    response=BookingView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def create_booking(call: Call):
    from chalicelib.domain.bookings.centres import Channel
    from chalicelib.service_layer.bookings.booking import BookRequest, book

    body = call.body
    request = BookRequest(
        center_id=body.centre_id,
        item_id=item_code(body.item_code),
        channel=Channel(body.channel),
        day=body.date,
        start=body.start,
        town=body.address.town if body.address else None,
        address_detail=body.address.detail if body.address else None,
    )
    result = book(_deps(), call.user, request, call.idempotency_key)
    return _booking_view(result.booking)


@api_route(
    bp,
    "/me/bookings",
    summary="我的预约（按预约时间倒序，分页）",
    tags=_TAGS,
    query=PageQuery,
    response=BookingPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_bookings(call: Call):
    from chalicelib.service_layer.bookings.booking import list_my_bookings

    page = list_my_bookings(_deps(), call.user, call.query.limit, decode_cursor(call.query.cursor))
    return BookingPage(
        items=[_booking_view(b) for b in page.items], next_cursor=encode_cursor(page.last_key)
    )


@api_route(
    bp,
    "/bookings/{booking_id}",
    summary="预约详情",
    tags=_TAGS,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def get_booking(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings import booking as use_cases

    return _booking_view(use_cases.get_booking(_deps(), call.user, booking_id))


@api_route(
    bp,
    "/bookings/{booking_id}",
    method="DELETE",
    summary="取消预约（开始前2小时前）",
    tags=_TAGS,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def cancel_booking(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings import booking as use_cases

    return _booking_view(use_cases.cancel_booking(_deps(), call.user, booking_id))


@api_route(
    bp,
    "/bookings/{booking_id}/cancel-by-token",
    method="POST",
    summary="通过提醒消息中的取消链接取消预约（无需登录）",
    tags=_TAGS,
    body=CancelByTokenRequest,
    response=BookingView,
    public=True,
    errors=(InvalidInput, NotFound, Conflict, RuleViolation),
)
def cancel_by_token(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings import booking as use_cases

    cancelled = use_cases.cancel_by_token(_deps(), booking_id, call.body.token)
    return _booking_view(cancelled).model_copy(update={"address": None, "video": None})


@api_route(
    bp,
    "/bookings/{booking_id}/reschedule",
    method="POST",
    summary="改约：先占新时段名额，再释放原名额；失败时原预约不变",
    tags=_TAGS,
    body=RescheduleRequest,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def reschedule_booking(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings.booking import reschedule

    moved = reschedule(_deps(), call.user, booking_id, call.body.date, call.body.start)
    return _booking_view(moved)


@api_route(
    bp,
    "/bookings/{booking_id}/check-in",
    method="POST",
    summary="到场签到（本人扫码，或窗口人员代为签到）",
    tags=_TAGS,
    body=CheckInRequest,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def check_in(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings import queue

    return _booking_view(queue.check_in(_deps(), call.user, booking_id, call.body.code))


@api_route(
    bp,
    "/bookings/{booking_id}/call",
    method="POST",
    summary="（窗口人员）叫指定的号",
    tags=_TAGS,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def call_booking(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings import queue

    return _booking_view(queue.call_booking(_deps(), call.user, booking_id))


@api_route(
    bp,
    "/bookings/{booking_id}/serve",
    method="POST",
    summary="（窗口人员）办结",
    tags=_TAGS,
    response=BookingView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def serve_booking(call: Call, booking_id: str):
    from chalicelib.service_layer.bookings.queue import serve

    return _booking_view(serve(_deps(), call.user, booking_id))


# ---- live help ------------------------------------------------------------------------------


@api_route(
    bp,
    "/help-requests",
    method="POST",
    summary="求助专业人工帮办（1分钟内接入为目标）",
    tags=_TAGS,
    body=HelpCreate,
    response=HelpView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def request_help(call: Call):
    from chalicelib.service_layer.bookings import live_help

    created = live_help.request_help(
        _deps(),
        call.user,
        call.body.topic,
        item_code(call.body.item_code) if call.body.item_code else None,
        call.idempotency_key,
    )
    return _help_view(created)


@api_route(
    bp,
    "/help-requests",
    summary="（帮办人员）等候接入的求助，先到先接",
    tags=_TAGS,
    query=PageQuery,
    response=HelpPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def waiting_help(call: Call):
    from chalicelib.service_layer.bookings import live_help

    page = live_help.waiting_help(
        _deps(), call.user, call.query.limit, decode_cursor(call.query.cursor)
    )
    return HelpPage(
        items=[_help_view(r) for r in page.items], next_cursor=encode_cursor(page.last_key)
    )


@api_route(
    bp,
    "/help-requests/{request_id}",
    summary="求助详情",
    tags=_TAGS,
    response=HelpView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def get_help(call: Call, request_id: str):
    from chalicelib.service_layer.bookings import live_help

    return _help_view(live_help.get_help(_deps(), call.user, request_id))


@api_route(
    bp,
    "/help-requests/{request_id}/pick-up",
    method="POST",
    summary="（帮办人员）接入求助并开启视频",
    tags=_TAGS,
    response=HelpView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def pick_up_help(call: Call, request_id: str):
    from chalicelib.service_layer.bookings import live_help

    return _help_view(live_help.pick_up_help(_deps(), call.user, request_id))


@api_route(
    bp,
    "/help-requests/{request_id}/outcome",
    method="POST",
    summary="登记帮办结果：已解决、未解决（一键转办不成事工单）或求助人已离开",
    tags=_TAGS,
    body=HelpOutcomeIn,
    response=HelpView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def end_help(call: Call, request_id: str):
    from chalicelib.domain.bookings.live_help import HelpOutcome
    from chalicelib.service_layer.bookings import live_help

    body: HelpOutcomeIn = call.body
    ended = live_help.end_help(
        _deps(),
        call.user,
        request_id,
        HelpOutcome(body.outcome),
        body.reason,
        body.file_ticket,
    )
    return _help_view(ended)
