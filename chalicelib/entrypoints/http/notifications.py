"""The caller's own inbox (`GET /me/notifications`, `POST /me/notifications/{id}/read`) and the
departments' dead letters (`GET /notifications/dead-letters`,
`POST /notifications/{id}/redrive`)."""

from datetime import datetime
from typing import Any

from chalice import Blueprint
from pydantic import Field

from chalicelib.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from chalicelib.entrypoints.http.pagination import Page, PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel

bp = Blueprint(__name__)


class NotificationView(ApiModel):
    notification_id: str
    category: str = Field(description="消息类别，如 deadline.warning")
    title: str
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    read: bool
    read_at: datetime | None = None


class NotificationPage(Page[NotificationView]):
    pass


@api_route(
    bp,
    "/me/notifications",
    summary="我的消息（最新在前，分页）",
    tags=("notifications",),
    query=PageQuery,
    response=NotificationPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_my_notifications(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.notifications import list_own_notifications

    items, last_key = list_own_notifications(
        call.user, container().notifier, call.query.limit, decode_cursor(call.query.cursor)
    )
    return NotificationPage(items=[_view(n) for n in items], next_cursor=encode_cursor(last_key))


@api_route(
    bp,
    "/me/notifications/{notification_id}/read",
    method="POST",
    summary="将一条消息标记为已读",
    tags=("notifications",),
    response=NotificationView,
    errors=(Forbidden, NotFound),
)
def mark_my_notification_read(call: Call, notification_id: str):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.notifications import mark_notification_read

    c = container()
    notification = mark_notification_read(
        call.user, notification_id, store=c.notifier, clock=c.clock, audit_log=c.audit_log
    )
    return _view(notification)


class DeadLettersQuery(PageQuery):
    department_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="承办部门编号"
    )


class DeliveryAttemptView(ApiModel):
    number: int
    at: datetime
    delivered: bool
    status_code: int | None = None
    error: str | None = Field(default=None, description="失败原因代码，如 timeout、http_500")


class DeadLetterView(ApiModel):
    notification_id: str
    department_id: str
    category: str
    title: str
    created_at: datetime
    status: str = Field(description="failed：已放弃投递；retrying：已重新投递")
    dead_at: datetime | None = None
    redrives: int = Field(description="已重新投递的次数")
    last_attempt: DeliveryAttemptView | None = None


class DeadLetterPage(Page[DeadLetterView]):
    pass


class RedriveView(DeadLetterView):
    redriven: bool = Field(description="本次请求是否重新投递（已在投递中的通知不再重复）")


@api_route(
    bp,
    "/notifications/dead-letters",
    summary="部门回调的死信（重试全部失败后放弃投递的通知，分页）",
    tags=("notifications",),
    query=DeadLettersQuery,
    response=DeadLetterPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_dead_letters(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.notifications import list_dead_letters as list_them

    items, last_key = list_them(
        call.user,
        call.query.department_id,
        container().notifier,
        call.query.limit,
        decode_cursor(call.query.cursor),
    )
    return DeadLetterPage(
        items=[_dead_letter(n) for n in items], next_cursor=encode_cursor(last_key)
    )


@api_route(
    bp,
    "/notifications/{notification_id}/redrive",
    method="POST",
    summary="重新投递一条死信（幂等：已在投递中的不再重复）",
    tags=("notifications",),
    response=RedriveView,
    errors=(Forbidden, NotFound),
)
def redrive_notification(call: Call, notification_id: str):
    from chalicelib.adapters.delivery_queue import SqsDeliveryQueue
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.notifications import redrive_notification as redrive

    c = container()
    result = redrive(
        call.user,
        notification_id,
        store=c.notifier,
        queue=SqsDeliveryQueue(c.aws),
        clock=c.clock,
        audit_log=c.audit_log,
    )
    view = _dead_letter(result.notification)
    return RedriveView(**view.model_dump(), redriven=result.redriven)


def _dead_letter(notification: Any) -> DeadLetterView:
    last = notification.attempts[-1] if notification.attempts else None
    return DeadLetterView(
        notification_id=notification.notification_id,
        department_id=notification.recipient_id,
        category=notification.category,
        title=notification.title,
        created_at=notification.created_at,
        status=notification.status.value,
        dead_at=notification.dead_at,
        redrives=notification.redrives,
        last_attempt=DeliveryAttemptView(
            number=last.number,
            at=last.at,
            delivered=last.delivered,
            status_code=last.status_code,
            error=last.error,
        )
        if last is not None
        else None,
    )


def _view(notification: Any) -> NotificationView:
    return NotificationView(
        notification_id=notification.notification_id,
        category=notification.category,
        title=notification.title,
        body=notification.body,
        data=notification.data,
        created_at=notification.created_at,
        read=notification.read_at is not None,
        read_at=notification.read_at,
    )


class DeliveryHealthQuery(ApiModel):
    department_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="承办部门编号"
    )


class DeliveryHealthView(ApiModel):
    department_id: str
    pending: int = Field(description="待投递（尚未尝试，或因部门接口暂停而推迟）")
    retrying: int = Field(description="重试中（已失败至少一次，已安排下次投递）")
    dead_lettered: int = Field(description="死信（重试全部失败，待重新投递）")
    circuit_open: bool = Field(description="部门接口连续失败，暂停投递中")
    delivered: int = Field(description="已送达（累计）")
    last_delivered_at: str | None = Field(default=None, description="最近一次送达时间")
    complete: bool = Field(description="false 表示数量超过读取上限，为下限值")


@api_route(
    bp,
    "/notifications/delivery-health",
    summary="部门回调投递状况：待投递、重试中、死信数量",
    tags=("notifications",),
    query=DeliveryHealthQuery,
    response=DeliveryHealthView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_delivery_health(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.notifications import delivery_health

    health = delivery_health(call.user, call.query.department_id, container().notifier)
    return DeliveryHealthView(
        department_id=health.department_id,
        pending=health.pending,
        retrying=health.retrying,
        dead_lettered=health.dead_lettered,
        circuit_open=health.circuit_open,
        delivered=health.delivered,
        last_delivered_at=(
            health.last_delivered_at.isoformat() if health.last_delivered_at else None
        ),
        complete=health.complete,
    )
