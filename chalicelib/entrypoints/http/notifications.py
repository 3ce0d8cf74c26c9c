"""The caller's own inbox: `GET /me/notifications` and `POST /me/notifications/{id}/read`."""

from datetime import datetime
from typing import Any

from chalice import Blueprint
from pydantic import Field

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
)
def mark_my_notification_read(call: Call, notification_id: str):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.notifications import mark_notification_read

    c = container()
    notification = mark_notification_read(
        call.user, notification_id, store=c.notifier, clock=c.clock, audit_log=c.audit_log
    )
    return _view(notification)


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
