"""Demo data for 好差评: the closed demo ticket rated 不满意 by the enterprise, its rectification
in progress (the department has contacted them), and last month's reviews of demo window and
online handlings across the departments, so the monthly report and its ranking have content.

Idempotent: review ids derive from the handling, so a second run finds them and adds nothing;
the task moves on only from the state the first run left it in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.reviews import (
    DIMENSIONS,
    Channel,
    Handling,
    HandlingType,
    Rater,
    Rating,
    ReviewKind,
    TaskState,
    new_review,
)

CLOSED_TICKET_KEY = "seed-ticket-closed"
ENTERPRISE_USER = "u-enterprise-lvjing"

# (department, centre or None, rating, anonymous, comment): last month's demo reviews.
HISTORY = [
    ("dept-scjgj", "qp-district", 5, False, ""),
    ("dept-scjgj", "qp-district", 4, False, ""),
    ("dept-scjgj", None, 5, False, ""),
    ("dept-rsj", "qp-district", 5, False, ""),
    ("dept-rsj", "qp-cc-xiayang", 2, False, "社保窗口排队一个多小时"),
    ("dept-rsj", None, 3, False, ""),
    ("dept-ybj", "qp-cc-xiayang", 1, True, "报销材料要求前后不一致"),
    ("dept-ybj", None, 4, False, ""),
    ("dept-zwb", "qp-district", 5, False, ""),
]


def _deps(container: Any) -> Any:
    from chalicelib.service_layer.reviews import ReviewDeps

    return ReviewDeps.from_container(container)


def _closed_ticket(container: Any) -> Any:
    from chalicelib.domain.tickets.ticket import Owner

    user = container.directory.get_user(ENTERPRISE_USER)
    if user is None:
        return None
    owner = Owner(user.user_id, user.subject_id)
    page = container.ticket_store.by_owner(owner.key, 20, None)
    return next((t for t in page.items if t.state.value == "closed"), None)


def seed_ticket_review(container: Any) -> str | None:
    """The enterprise rates the closed demo ticket 不满意; the department contacts them."""
    from chalicelib.domain.errors import Conflict
    from chalicelib.service_layer import reviews as service

    ticket = _closed_ticket(container)
    if ticket is None:
        return None
    deps = _deps(container)
    rater = container.directory.get_user(ENTERPRISE_USER).principal()
    dimensions = dict.fromkeys(DIMENSIONS[Channel.ONLINE], 2)
    try:
        review = service.submit_review(
            deps,
            rater,
            HandlingType.TICKET,
            ticket.ticket_id,
            Rating(2, dimensions, ("答复慢",), "问题虽已解决，但等了一周多才有人联系。"),
        )
        review_id = review.review_id
    except Conflict:
        handling = service.resolve_handling(deps, HandlingType.TICKET, ticket.ticket_id)
        review_id = service.domain.review_id_for(handling, ReviewKind.INITIAL)
    service.on_review_created(deps, review_id)  # the stream does it too; this is idempotent
    task = deps.store.get_task(review_id)
    if task is not None and task.state is TaskState.OPEN:
        staff = container.directory.get_user("u-dept-rsj").principal()
        service.record_contact(
            deps,
            staff,
            review_id,
            method="phone",
            note="已致电企业致歉，正在排查答复延迟原因。",
            complex_=False,
        )
    return review_id


def seed_history(container: Any) -> int:
    """Last month's reviews of demo handlings, written straight to the store."""
    store = container.review_store
    now = container.clock.now().astimezone(CHINA_TZ)
    first = now.replace(day=1, hour=10, minute=0, second=0, microsecond=0)
    created = 0
    for n, (department, centre, rating, anonymous, comment) in enumerate(HISTORY):
        channel = Channel.OFFLINE if centre else Channel.ONLINE
        handling = Handling(
            HandlingType.BOOKING if centre else HandlingType.APPLICATION,
            f"demo-{department}-{n}",
            f"u-demo-{n}",
            None,
            department,
            channel,
            True,
            centre_id=centre,
        )
        at: datetime = first - timedelta(days=3 + n)
        review = new_review(
            handling,
            Rater(f"u-demo-{n}", "citizen", None, True),
            Rating(rating, dict.fromkeys(DIMENSIONS[channel], rating), (), comment, anonymous),
            ReviewKind.INITIAL,
            at,
        )
        created += bool(store.create_review(review))
    return created


def seed_reviews(container: Any) -> None:
    seed_history(container)
    seed_ticket_review(container)
