"""Due items: one thing to do at one time (a reminder, a scheduled publication), whatever the
capability. Items are filed under hour buckets so a sweep reads only the buckets from its cursor
to now; an idle hour costs one query and a day of downtime 24."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ

BUCKET = timedelta(hours=1)


def bucket_of(moment: datetime) -> str:
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%dT%H")


def bucket_start(bucket: str) -> datetime:
    return datetime.strptime(bucket, "%Y-%m-%dT%H").replace(tzinfo=CHINA_TZ)


def buckets_between(first: str, last: str) -> list[str]:
    """Every bucket from `first` to `last`, both included (none when first is after last)."""
    found, moment, end = [], bucket_start(first), bucket_start(last)
    while moment <= end:
        found.append(bucket_of(moment))
        moment += BUCKET
    return found


def filing_bucket(due_at: datetime, now: datetime) -> str:
    """An item already due goes to the current bucket, never behind a sweep's cursor."""
    return bucket_of(max(due_at, now))


@dataclass(frozen=True)
class DueItem:
    kind: str  # "<capability>.<what>", e.g. "review.reminder"
    subject_id: str
    due_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}#{self.subject_id}"
