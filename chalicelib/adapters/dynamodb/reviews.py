"""Reviews on DynamoDB: one table ("reviews", streamed), keys (pk, sk):

- review:  ("review#<review_id>", "review"): the review; its id is derived from the handling and
           the kind, so a second rating of the same handling fails the create condition.
- task:    ("review#<review_id>", "task"): the rectification task of a bad review.
- invite:  ("invite#<type>#<handling_id>", "invite"): the invitation to rate (its reminder is a
           due item: table "due-items", kind "review.reminder").
- report:  ("report#<YYYY-MM>", "report"): the monthly report, written once (conditional put).
- alert:   ("alert#<department_id>", <window>): one good-rate alert per department and window.
- config:  ("config", "alerts"): the alert threshold and window (data, not code).
- stats:   ("stats#<department_id>", <YYYY-MM-DD>): the day's counted reviews and bad reviews,
           ADD-updated in one transaction with a marker ("review#<id>", "counted" or
           "excluded"), so a review is counted once however often the stream delivers it; the
           rolling-window alert reads at most `window_days` of these items.

Sparse GSIs (index attributes only on the items that belong there):
- month_index (month_bucket = "<YYYY-MM>#<shard>", created_at): a month's reviews, read as
  MONTH_SHARDS Queries, never a full-table read;
- department_index (dept_key, created_at): a department's reviews (lists, the rolling window);
- task_index (task_dept_key, opened_at): a department's rectification tasks.

Items are mapped explicitly to and from the domain objects; a version attribute makes every
update a conditional write on the version read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import (
    condition_failed,
    iso,
    meta,
    transaction_connection,
)
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict
from chalicelib.domain.reviews import (
    MONTH_SHARDS,
    AlertPolicy,
    Appeal,
    Channel,
    HandlingType,
    Invitation,
    Review,
    ReviewKind,
    Task,
    TaskState,
    month_shard,
)
from chalicelib.service_layer.ports import Page


def _put_new(record: Any) -> bool:
    """Save an item that has no version yet; False when one with its key exists."""
    try:
        record.save()
    except PutError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _put_versioned(record: Any, conflict: Conflict) -> int | None:
    """Save over the version the record was read at; `conflict` when someone saved since."""
    try:
        record.save()
    except PutError as error:
        if condition_failed(error):
            raise conflict from error
        raise
    return _version(record)


def _get(pk: str, sk: str, consistent: bool = True) -> Any:
    try:
        return ReviewRecord.get(pk, sk, consistent_read=consistent)
    except ReviewRecord.DoesNotExist:
        return None


class MonthIndex(GlobalSecondaryIndex["ReviewRecord"]):
    class Meta:
        index_name = "month_index"
        projection = AllProjection()

    month_bucket = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DepartmentIndex(GlobalSecondaryIndex["ReviewRecord"]):
    class Meta:
        index_name = "department_index"
        projection = AllProjection()

    dept_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class TaskIndex(GlobalSecondaryIndex["ReviewRecord"]):
    class Meta:
        index_name = "task_index"
        projection = AllProjection()

    task_dept_key = UnicodeAttribute(hash_key=True)
    opened_at = UnicodeAttribute(range_key=True)


class ReviewRecord(Model):
    Meta = meta("reviews", stream_view_type="NEW_AND_OLD_IMAGES")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    item_type = UnicodeAttribute()  # review | task | invite | report | alert | config
    data = JSONAttribute()
    created_at = UnicodeAttribute(null=True)
    month_bucket = UnicodeAttribute(null=True)
    dept_key = UnicodeAttribute(null=True)
    task_dept_key = UnicodeAttribute(null=True)
    opened_at = UnicodeAttribute(null=True)
    version = VersionAttribute()

    month_index = MonthIndex()
    department_index = DepartmentIndex()
    task_index = TaskIndex()


class ReviewStatsRecord(Model):
    """Day counters and their markers: same table, no version (ADD updates commute)."""

    Meta = meta("reviews")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    item_type = UnicodeAttribute(null=True)
    reviews = NumberAttribute(null=True)
    bad = NumberAttribute(null=True)


# ---- mapping ------------------------------------------------------------------------------


def review_to_dict(review: Review) -> dict[str, Any]:
    return {
        "review_id": review.review_id,
        "kind": review.kind.value,
        "handling_type": review.handling_type.value,
        "handling_id": review.handling_id,
        "department_id": review.department_id,
        "centre_id": review.centre_id,
        "channel": review.channel.value,
        "rating": review.rating,
        "dimensions": review.dimensions,
        "tags": list(review.tags),
        "comment": review.comment,
        "anonymous": review.anonymous,
        "rater_user_id": review.rater_user_id,
        "rater_subject_id": review.rater_subject_id,
        "created_at": review.created_at.isoformat(),
        "appeal": review.appeal.to_dict() if review.appeal else None,
        "task_state": review.task_state,
        "contact_on_time": review.contact_on_time,
        "rectify_on_time": review.rectify_on_time,
        "called_back": review.called_back,
    }


def review_from_dict(d: dict[str, Any], version: int | None = None) -> Review:
    return Review(
        review_id=d["review_id"],
        kind=ReviewKind(d["kind"]),
        handling_type=HandlingType(d["handling_type"]),
        handling_id=d["handling_id"],
        department_id=d["department_id"],
        centre_id=d.get("centre_id"),
        channel=Channel(d["channel"]),
        rating=int(d["rating"]),
        dimensions={k: int(v) for k, v in d.get("dimensions", {}).items()},
        tags=tuple(d.get("tags", ())),
        comment=d.get("comment", ""),
        anonymous=bool(d.get("anonymous")),
        rater_user_id=d["rater_user_id"],
        rater_subject_id=d.get("rater_subject_id"),
        created_at=datetime.fromisoformat(d["created_at"]),
        appeal=Appeal.from_dict(d["appeal"]) if d.get("appeal") else None,
        task_state=d.get("task_state"),
        contact_on_time=d.get("contact_on_time"),
        rectify_on_time=d.get("rectify_on_time"),
        called_back=bool(d.get("called_back")),
        version=version,
    )


def task_to_dict(task: Task) -> dict[str, Any]:
    return {
        "review_id": task.review_id,
        "department_id": task.department_id,
        "handling_type": task.handling_type.value,
        "handling_id": task.handling_id,
        "rating": task.rating,
        "real_name": task.real_name,
        "state": task.state.value,
        "opened_at": task.opened_at.isoformat(),
        "complex": task.complex,
        "round": task.round,
        "clocks": task.clocks,
        "contact": task.contact,
        "rectification": task.rectification,
        "call_back": task.call_back,
        "history": list(task.history),
        "contact_on_time": task.contact_on_time,
        "rectify_on_time": task.rectify_on_time,
    }


def task_from_dict(d: dict[str, Any], version: int | None = None) -> Task:
    return Task(
        review_id=d["review_id"],
        department_id=d["department_id"],
        handling_type=HandlingType(d["handling_type"]),
        handling_id=d["handling_id"],
        rating=int(d["rating"]),
        real_name=bool(d["real_name"]),
        state=TaskState(d["state"]),
        opened_at=datetime.fromisoformat(d["opened_at"]),
        complex=bool(d.get("complex")),
        round=int(d.get("round", 1)),
        clocks=dict(d.get("clocks") or {}),
        contact=d.get("contact"),
        rectification=d.get("rectification"),
        call_back=d.get("call_back"),
        history=tuple(d.get("history") or ()),
        contact_on_time=d.get("contact_on_time"),
        rectify_on_time=d.get("rectify_on_time"),
        version=version,
    )


def _version(item: ReviewRecord) -> int | None:
    return int(item.version) if item.version is not None else None


def _review_record(review: Review) -> ReviewRecord:
    created = iso(review.created_at)
    record = ReviewRecord(
        f"review#{review.review_id}",
        "review",
        item_type="review",
        data=review_to_dict(review),
        created_at=created,
        month_bucket=f"{review.created_at.astimezone(CHINA_TZ):%Y-%m}#"
        f"{month_shard(review.review_id)}",
        dept_key=review.department_id,
    )
    if review.version is not None:
        record.version = review.version
    return record


def _task_record(task: Task) -> ReviewRecord:
    record = ReviewRecord(
        f"review#{task.review_id}",
        "task",
        item_type="task",
        data=task_to_dict(task),
        task_dept_key=task.department_id,
        opened_at=iso(task.opened_at),
    )
    if task.version is not None:
        record.version = task.version
    return record


class DynamoReviewStore:
    # -- reviews ------------------------------------------------------------------------------

    def create_review(self, review: Review) -> bool:
        """Store a new review; False when one with this id (same handling, same kind) exists."""
        return _put_new(_review_record(replace(review, version=None)))

    def get_review(self, review_id: str) -> Review | None:
        item = _get(f"review#{review_id}", "review")
        return review_from_dict(item.data, _version(item)) if item is not None else None

    def save_review(self, review: Review) -> Review:
        conflict = Conflict("评价已被修改，请刷新后重试", code="review_changed")
        return replace(review, version=_put_versioned(_review_record(review), conflict))

    def reviews_in_month(self, month: str) -> Iterator[Review]:
        for shard in range(MONTH_SHARDS):
            for item in ReviewRecord.month_index.query(f"{month}#{shard}"):
                yield review_from_dict(item.data, _version(item))

    def raw_month(self, month: str) -> Iterator[dict[str, Any]]:
        """The month's items as stored, unmapped: what reading them once costs (bench)."""
        for shard in range(MONTH_SHARDS):
            for item in ReviewRecord.month_index.query(f"{month}#{shard}"):
                yield item.data

    def by_department(
        self,
        department_id: str,
        since: datetime | None,
        limit: int | None,
        start_key: dict[str, Any] | None,
    ) -> Page[Review]:
        condition = ReviewRecord.created_at >= iso(since) if since else None
        result = ReviewRecord.department_index.query(
            department_id,
            condition,
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=start_key,
        )
        items = [review_from_dict(i.data, _version(i)) for i in result]
        return Page(items, result.last_evaluated_key if limit else None)

    # -- tasks --------------------------------------------------------------------------------

    def create_task(self, task: Task) -> bool:
        return _put_new(_task_record(replace(task, version=None)))

    def get_task(self, review_id: str) -> Task | None:
        item = _get(f"review#{review_id}", "task")
        return task_from_dict(item.data, _version(item)) if item is not None else None

    def save_task(self, task: Task) -> Task:
        conflict = Conflict("整改任务已被修改，请刷新后重试", code="task_changed")
        return replace(task, version=_put_versioned(_task_record(task), conflict))

    def tasks_of_department(
        self, department_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Task]:
        result = ReviewRecord.task_index.query(
            department_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        items = [task_from_dict(i.data, _version(i)) for i in result]
        return Page(items, result.last_evaluated_key)

    # -- invitations --------------------------------------------------------------------------

    def invite(self, invitation: Invitation) -> bool:
        """File an invitation; False when already invited."""
        record = ReviewRecord(
            f"invite#{invitation.handling_type}#{invitation.handling_id}",
            "invite",
            item_type="invite",
            data={
                "handling_type": invitation.handling_type,
                "handling_id": invitation.handling_id,
                "user_id": invitation.user_id,
                "title": invitation.title,
                "invited_at": invitation.invited_at.isoformat(),
                "remind_at": invitation.remind_at.isoformat(),
                "status": "pending",
            },
        )
        return _put_new(record)

    def finish_invitation(self, handling_type: str, handling_id: str, status: str) -> None:
        """Record how the invitation ended (reminded, or rated meanwhile)."""
        item = _get(f"invite#{handling_type}#{handling_id}", "invite", consistent=False)
        if item is None:
            return
        item.update(
            actions=[
                ReviewRecord.data.set({**item.data, "status": status}),
            ]
        )

    # -- reports, alerts, configuration ---------------------------------------------------------

    def put_report_once(self, month: str, report: dict[str, Any]) -> bool:
        return _put_new(ReviewRecord(f"report#{month}", "report", item_type="report", data=report))

    def get_report(self, month: str) -> dict[str, Any] | None:
        item = _get(f"report#{month}", "report")
        return item.data if item is not None else None

    def claim_alert(self, department_id: str, window: str, details: dict[str, Any]) -> bool:
        return _put_new(
            ReviewRecord(f"alert#{department_id}", window, item_type="alert", data=details)
        )

    def has_alert(self, department_id: str, window: str) -> bool:
        return _get(f"alert#{department_id}", window) is not None

    def alert_policy(self) -> AlertPolicy:
        item = _get("config", "alerts", consistent=False)
        return AlertPolicy(**item.data) if item is not None else AlertPolicy()

    def put_alert_policy(self, policy: AlertPolicy) -> None:
        current = _get("config", "alerts") or ReviewRecord("config", "alerts", item_type="config")
        current.data = {
            "good_rate_threshold": policy.good_rate_threshold,
            "window_days": policy.window_days,
            "min_reviews": policy.min_reviews,
        }
        current.save()

    # -- day counters for the rolling window ----------------------------------------------------

    def _connection(self) -> Any:
        return transaction_connection(ReviewRecord)

    def count(self, review: Review, marker: str, reviews: int, bad: int) -> bool:
        """Add to the department's day of the review once per marker; False if done before."""
        from pynamodb.transactions import TransactWrite

        day = review.created_at.astimezone(CHINA_TZ).date().isoformat()
        mark = ReviewStatsRecord(f"review#{review.review_id}", marker, item_type="marker")
        counter = ReviewStatsRecord(f"stats#{review.department_id}", day)
        try:
            with TransactWrite(connection=self._connection()) as transaction:
                transaction.save(mark, condition=ReviewStatsRecord.pk.does_not_exist())
                transaction.update(
                    counter,
                    actions=[
                        ReviewStatsRecord.item_type.set("stats"),
                        ReviewStatsRecord.reviews.add(reviews),
                        ReviewStatsRecord.bad.add(bad),
                    ],
                )
        except TransactWriteError as error:
            reasons = error.cancellation_reasons or []
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                return False
            raise
        return True

    def window_counts(self, department_id: str, first: date, last: date) -> tuple[int, int]:
        """Reviews and bad reviews counted for the department from `first` to `last`."""
        total = bad = 0
        for item in ReviewStatsRecord.query(
            f"stats#{department_id}",
            ReviewStatsRecord.sk.between(first.isoformat(), last.isoformat()),
        ):
            total += int(item.reviews or 0)
            bad += int(item.bad or 0)
        return total, bad
