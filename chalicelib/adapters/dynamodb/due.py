"""The one due index: table "due-items", one item per due thing.

- item:   (`key` = "<kind>#<subject id>"): kind, subject, `due_at`, small `data`, `status`;
- index:  `due_index` (sparse): `due_bucket` (the China-time hour, "YYYY-MM-DDTHH") and
          `due_sort` = "<due_at>#<kind>#<subject id>". Only pending items carry `due_bucket`;
          finishing one removes it, so the index holds exactly what is still to do;
- cursor: ("cursor#<sweep name>"): the first bucket the sweep has not finished.

Filing, re-filing and cancelling are one write each; finishing is one conditional update on the
`due_sort` that was run, so a re-filing that happened meanwhile is kept (idempotent per kind,
subject and due time).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, iso, meta
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.due import DueItem, filing_bucket


class DueIndex(GlobalSecondaryIndex["DueItemModel"]):
    class Meta:
        index_name = "due_index"
        projection = AllProjection()

    due_bucket = UnicodeAttribute(hash_key=True)
    due_sort = UnicodeAttribute(range_key=True)


class DueItemModel(Model):
    Meta = meta("due-items")

    key = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(null=True)
    subject_id = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    data = JSONAttribute(null=True)
    status = UnicodeAttribute(null=True)  # pending | <outcome> | cancelled
    updated_at = UnicodeAttribute(null=True)
    cursor = UnicodeAttribute(null=True)  # cursor items only
    due_bucket = UnicodeAttribute(null=True)
    due_sort = UnicodeAttribute(null=True)

    due_index = DueIndex()


def _sort(item: DueItem) -> str:
    return f"{iso(item.due_at)}#{item.kind}#{item.subject_id}"


def due_record(kind: str, subject_id: str, due_at: datetime | None, now: datetime) -> DueItemModel:
    """A due item as a record to write with the change that decides it: pending at `due_at`,
    or, with no time, out of the index (finished)."""
    if due_at is None:
        return DueItemModel(
            f"{kind}#{subject_id}",
            kind=kind,
            subject_id=subject_id,
            status="idle",
            updated_at=iso(now),
        )
    item = DueItem(kind, subject_id, due_at)
    return DueItemModel(
        item.key,
        kind=kind,
        subject_id=subject_id,
        due_at=iso(due_at),
        status="pending",
        updated_at=iso(now),
        due_bucket=filing_bucket(due_at, now),
        due_sort=_sort(item),
    )


class DynamoDueStore:
    def record(self, item: DueItem, now: datetime) -> DueItemModel:
        """The item as filed, unsaved: for a caller writing it in its own transaction."""
        return DueItemModel(
            item.key,
            kind=item.kind,
            subject_id=item.subject_id,
            due_at=iso(item.due_at),
            data=item.data or None,
            status="pending",
            updated_at=iso(now),
            due_bucket=filing_bucket(item.due_at, now),
            due_sort=_sort(item),
        )

    def file(self, item: DueItem, now: datetime, *, once: bool = False) -> None:
        """File (or re-file at a new time) a due item: one put. `once`: an item already filed
        under this kind and id, pending or finished, stays as it is (a retried request)."""
        record = self.record(item, now)
        if not once:
            record.save()
            return
        try:
            record.save(condition=DueItemModel.key.does_not_exist())
        except PutError as error:
            if not condition_failed(error):
                raise

    def cancel(self, kind: str, subject_id: str, now: datetime, status: str = "cancelled") -> None:
        """Take an item out of the index, if it is there: one update, no read."""
        try:
            DueItemModel(f"{kind}#{subject_id}").update(
                actions=[
                    DueItemModel.status.set(status),
                    DueItemModel.updated_at.set(iso(now)),
                    DueItemModel.due_bucket.remove(),
                    DueItemModel.due_sort.remove(),
                ],
                condition=DueItemModel.key.exists(),
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    def due_in_bucket(self, bucket: str, now: datetime) -> Iterator[DueItem]:
        # "~" sorts after "#": every item due at or before `now` itself.
        for row in DueItemModel.due_index.query(
            bucket, DueItemModel.due_sort <= f"{iso(now)}~", consistent_read=False
        ):
            yield DueItem(
                row.kind or "",
                row.subject_id or "",
                datetime.fromisoformat(row.due_at or "").astimezone(CHINA_TZ),
                dict(row.data or {}),
            )

    def finish(self, item: DueItem, outcome: str, now: datetime) -> bool:
        """Take the item out of the index unless it was re-filed meanwhile (False then)."""
        try:
            DueItemModel(item.key).update(
                actions=[
                    DueItemModel.status.set(outcome),
                    DueItemModel.updated_at.set(iso(now)),
                    DueItemModel.due_bucket.remove(),
                    DueItemModel.due_sort.remove(),
                ],
                condition=DueItemModel.due_sort == _sort(item),
            )
            return True
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise

    def get(self, kind: str, subject_id: str) -> dict[str, Any] | None:
        try:
            row = DueItemModel.get(f"{kind}#{subject_id}", consistent_read=True)
        except DueItemModel.DoesNotExist:
            return None
        return {
            "status": row.status,
            "due_at": row.due_at,
            "due_bucket": row.due_bucket,
            "data": dict(row.data or {}),
        }

    def get_cursor(self, name: str) -> str | None:
        try:
            return DueItemModel.get(f"cursor#{name}", consistent_read=True).cursor
        except DueItemModel.DoesNotExist:
            return None

    def set_cursor(self, name: str, bucket: str, now: datetime) -> None:
        DueItemModel(f"cursor#{name}", cursor=bucket, updated_at=iso(now)).save()
