"""好差评: reviews of a handling, the rectification task a bad review opens, appeals, the
monthly department and centre report, and the good-rate alert.

Pure: no storage, no clock reads. Sources in DOMAIN.md: five levels (5 非常满意 … 1 非常不满意),
差评 = 1 or 2; one rating per handling plus one 追评 after rectification; rectification within
"1、5、15" working days; 实名差评回访整改率 100%; 申诉复核 excludes mistaken and malicious bad
reviews from rankings, which keep them on record; bottom two two months in a row → 约谈.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import Forbidden, InvalidInput, RuleViolation

SUBJECT_TYPE = "rectification"  # the deadline engine's subject type of a task
CONTACT_DAYS = 1
SIMPLE_DAYS = 5
COMPLEX_DAYS = 15
SEND_BACK_DAYS = 5
REMIND_AFTER = timedelta(days=3)
MONTH_SHARDS = 8

LEVELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


class HandlingType(StrEnum):
    APPLICATION = "application"
    BOOKING = "booking"
    TICKET = "ticket"


class Channel(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


DIMENSIONS: dict[Channel, tuple[str, ...]] = {
    Channel.ONLINE: ("整体满意度", "办事效率", "办事指南精确度", "办事便捷度", "平台操作性"),
    Channel.OFFLINE: ("整体满意度", "服务效率", "服务水平", "服务态度"),
}


class ReviewKind(StrEnum):
    INITIAL = "initial"
    FOLLOW_UP = "follow_up"  # 追评, once, after the rectification closed


class TaskState(StrEnum):
    OPEN = "open"  # waiting for the department to contact the person
    CONTACTED = "contacted"  # rectifying
    SUBMITTED = "submitted"  # cause, measures and evidence recorded; the district office checks
    CLOSED = "closed"  # accepted by the district office


class AppealState(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Handling:
    """What a review needs to know about the thing rated, resolved from its own store."""

    handling_type: HandlingType
    handling_id: str
    person_user_id: str | None
    person_subject_id: str | None
    department_id: str
    channel: Channel
    completed: bool
    handled_by: frozenset[str] = frozenset()  # staff user ids who handled it
    handled_by_subjects: frozenset[str] = frozenset()  # their ID numbers, when known
    centre_id: str | None = None
    title: str = ""

    @property
    def key(self) -> str:
        return f"{self.handling_type.value}#{self.handling_id}"


@dataclass(frozen=True)
class Rater:
    user_id: str
    role: str
    subject_id: str | None
    is_public: bool


@dataclass(frozen=True)
class Appeal:
    state: AppealState
    reason: str  # mistaken | malicious
    statement: str
    evidence: tuple[str, ...]
    by: str
    at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "statement": self.statement,
            "evidence": list(self.evidence),
            "by": self.by,
            "at": self.at.isoformat(),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decision_note": self.decision_note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Appeal:
        return cls(
            state=AppealState(d["state"]),
            reason=d["reason"],
            statement=d.get("statement", ""),
            evidence=tuple(d.get("evidence", ())),
            by=d["by"],
            at=datetime.fromisoformat(d["at"]),
            decided_by=d.get("decided_by"),
            decided_at=datetime.fromisoformat(d["decided_at"]) if d.get("decided_at") else None,
            decision_note=d.get("decision_note", ""),
        )


@dataclass(frozen=True)
class Review:
    review_id: str
    kind: ReviewKind
    handling_type: HandlingType
    handling_id: str
    department_id: str
    centre_id: str | None
    channel: Channel
    rating: int
    dimensions: dict[str, int]
    tags: tuple[str, ...]
    comment: str
    anonymous: bool
    rater_user_id: str
    rater_subject_id: str | None
    created_at: datetime
    appeal: Appeal | None = None
    # Rectification outcome, copied from the task when it closes (the report reads reviews only).
    task_state: str | None = None
    contact_on_time: bool | None = None
    rectify_on_time: bool | None = None
    called_back: bool = False
    version: int | None = None

    @property
    def is_bad(self) -> bool:
        return self.rating <= 2

    @property
    def excluded(self) -> bool:
        """An upheld appeal keeps the review on record but out of rankings."""
        return self.appeal is not None and self.appeal.state is AppealState.UPHELD

    @property
    def real_name(self) -> bool:
        return not self.anonymous

    @property
    def month(self) -> str:
        return self.created_at.strftime("%Y-%m")


def review_id_for(handling: Handling, kind: ReviewKind) -> str:
    """One id per handling and kind: a second rating collides with the first."""
    return review_id_of(handling.key, kind)


def review_id_of(handling_key: str, kind: ReviewKind) -> str:
    digest = hashlib.sha256(f"{handling_key}#{kind.value}".encode()).hexdigest()[:20]
    return f"rv-{digest}"


def month_shard(review_id: str) -> int:
    return int(review_id[-4:], 16) % MONTH_SHARDS


# ---- rating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    rating: int
    dimensions: dict[str, int]
    tags: tuple[str, ...] = ()
    comment: str = ""
    anonymous: bool = False


def check_rater(handling: Handling, rater: Rater) -> None:
    """Staff never rate what they handled (also through a personal account: same ID number);
    only the person or organisation served rates. Someone else's handling is NotFound upstream."""
    if rater.user_id in handling.handled_by or (
        rater.subject_id is not None and rater.subject_id in handling.handled_by_subjects
    ):
        raise Forbidden("工作人员不能评价本人经办的事项", code="own_handling")


def is_served(handling: Handling, rater: Rater) -> bool:
    by_user = handling.person_user_id is not None and handling.person_user_id == rater.user_id
    by_subject = (
        handling.person_subject_id is not None
        and rater.subject_id is not None
        and handling.person_subject_id == rater.subject_id
    )
    return rater.is_public and (by_user or by_subject)


def check_rating(channel: Channel, rating: Rating) -> None:
    if rating.rating not in LEVELS:
        raise InvalidInput("评价等级应为1到5", code="invalid_rating")
    expected = set(DIMENSIONS[channel])
    given = set(rating.dimensions)
    if given != expected:
        missing = "、".join(d for d in DIMENSIONS[channel] if d not in given)
        extra = "、".join(sorted(given - expected))
        parts = [f"缺少：{missing}" if missing else "", f"不适用：{extra}" if extra else ""]
        raise InvalidInput(
            "评价维度与办理渠道不符（" + "；".join(p for p in parts if p) + "）",
            code="invalid_dimensions",
        )
    if any(v not in LEVELS for v in rating.dimensions.values()):
        raise InvalidInput("各维度评价应为1到5", code="invalid_rating")
    if rating.rating <= 2 and not rating.comment.strip():
        raise InvalidInput("“不满意”或“非常不满意”须填写评价内容", code="comment_required")


def new_review(
    handling: Handling,
    rater: Rater,
    rating: Rating,
    kind: ReviewKind,
    now: datetime,
    *,
    rectification_closed: bool = False,
) -> Review:
    check_rater(handling, rater)
    if not handling.completed:
        raise RuleViolation("事项办结后才能评价", code="handling_not_complete")
    if kind is ReviewKind.FOLLOW_UP and not rectification_closed:
        raise RuleViolation("整改完成后才能追评", code="follow_up_not_open")
    check_rating(handling.channel, rating)
    return Review(
        review_id=review_id_for(handling, kind),
        kind=kind,
        handling_type=handling.handling_type,
        handling_id=handling.handling_id,
        department_id=handling.department_id,
        centre_id=handling.centre_id,
        channel=handling.channel,
        rating=rating.rating,
        dimensions=dict(rating.dimensions),
        tags=tuple(t.strip() for t in rating.tags if t.strip()),
        comment=rating.comment.strip(),
        anonymous=rating.anonymous,
        rater_user_id=rater.user_id,
        rater_subject_id=rater.subject_id,
        created_at=now,
    )


def opens_task(review: Review) -> bool:
    return review.kind is ReviewKind.INITIAL and review.is_bad and bool(review.comment)


# ---- appeals --------------------------------------------------------------------------------

APPEAL_REASONS = {"mistaken": "误评", "malicious": "恶意差评"}


def appeal(
    review: Review, reason: str, statement: str, evidence: tuple[str, ...], by: str, now: datetime
) -> Review:
    if not review.is_bad:
        raise RuleViolation("只能对差评提出申诉", code="appeal_not_applicable")
    if review.appeal is not None:
        raise RuleViolation("该评价已提出过申诉", code="already_appealed")
    if reason not in APPEAL_REASONS:
        raise InvalidInput("申诉理由应为误评或恶意差评", code="invalid_appeal_reason")
    if not evidence:
        raise InvalidInput("申诉须提交证明材料", code="evidence_required")
    return replace(
        review,
        appeal=Appeal(AppealState.PENDING, reason, statement.strip(), evidence, by, now),
    )


def decide_appeal(review: Review, uphold: bool, note: str, by: str, now: datetime) -> Review:
    if review.appeal is None or review.appeal.state is not AppealState.PENDING:
        raise RuleViolation("没有待复核的申诉", code="no_pending_appeal")
    if not note.strip():
        raise InvalidInput("复核须说明理由", code="note_required")
    state = AppealState.UPHELD if uphold else AppealState.REJECTED
    decided = replace(
        review.appeal, state=state, decided_by=by, decided_at=now, decision_note=note.strip()
    )
    return replace(review, appeal=decided)


# ---- the rectification task ----------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    review_id: str
    department_id: str
    handling_type: HandlingType
    handling_id: str
    rating: int
    real_name: bool
    state: TaskState
    opened_at: datetime
    complex: bool = False
    round: int = 1  # +1 for each send-back
    clocks: dict[str, str] = field(default_factory=dict)  # "contact", "rectify#<round>" → id
    contact: dict[str, Any] | None = None
    rectification: dict[str, Any] | None = None  # cause, measures, evidence
    call_back: dict[str, Any] | None = None
    history: tuple[dict[str, Any], ...] = ()
    contact_on_time: bool | None = None
    rectify_on_time: bool | None = None
    version: int | None = None

    @property
    def rectify_key(self) -> str:
        return f"rectify#{self.round}"

    def event(self, at: datetime, name: str, by: str, **data: Any) -> tuple[dict[str, Any], ...]:
        return (*self.history, {"at": at.isoformat(), "event": name, "by": by, **data})


def open_task(review: Review, now: datetime) -> Task:
    return Task(
        review_id=review.review_id,
        department_id=review.department_id,
        handling_type=review.handling_type,
        handling_id=review.handling_id,
        rating=review.rating,
        real_name=review.real_name,
        state=TaskState.OPEN,
        opened_at=now,
        history=({"at": now.isoformat(), "event": "opened", "by": "system"},),
    )


def _require(task: Task, states: set[TaskState], what: str) -> None:
    if task.state not in states:
        raise RuleViolation(f"整改任务当前状态不能{what}", code="invalid_task_state")


def record_contact(
    task: Task, method: str, note: str, complex_: bool, by: str, now: datetime
) -> Task:
    _require(task, {TaskState.OPEN}, "登记联系")
    if not note.strip():
        raise InvalidInput("请填写联系情况", code="note_required")
    contact = {"method": method, "note": note.strip(), "at": now.isoformat(), "by": by}
    return replace(
        task,
        state=TaskState.CONTACTED,
        contact=contact,
        complex=complex_,
        history=task.event(now, "contacted", by, complex=complex_),
    )


def record_rectification(
    task: Task, cause: str, measures: str, evidence: tuple[str, ...], by: str, now: datetime
) -> Task:
    _require(task, {TaskState.CONTACTED}, "提交整改")
    if not cause.strip() or not measures.strip():
        raise InvalidInput("请填写差评原因和整改措施", code="rectification_incomplete")
    if not evidence:
        raise InvalidInput("请提交整改佐证材料", code="evidence_required")
    record = {
        "cause": cause.strip(),
        "measures": measures.strip(),
        "evidence": list(evidence),
        "at": now.isoformat(),
        "by": by,
    }
    return replace(
        task,
        state=TaskState.SUBMITTED,
        rectification=record,
        history=task.event(now, "rectified", by),
    )


def record_call_back(
    task: Task, reached: bool, satisfied: bool | None, note: str, by: str, now: datetime
) -> Task:
    _require(task, {TaskState.SUBMITTED}, "回访")
    if not note.strip():
        raise InvalidInput("请填写回访情况", code="note_required")
    record = {
        "reached": reached,
        "satisfied": satisfied if reached else None,
        "note": note.strip(),
        "at": now.isoformat(),
        "by": by,
    }
    return replace(task, call_back=record, history=task.event(now, "called_back", by))


def accept(task: Task, note: str, by: str, now: datetime) -> Task:
    _require(task, {TaskState.SUBMITTED}, "验收")
    if task.real_name and task.call_back is None:
        raise RuleViolation("实名差评须先回访再验收", code="call_back_required")
    return replace(task, state=TaskState.CLOSED, history=task.event(now, "accepted", by, note=note))


def send_back(task: Task, note: str, by: str, now: datetime) -> Task:
    _require(task, {TaskState.SUBMITTED}, "退回")
    if not note.strip():
        raise InvalidInput("退回整改须说明理由", code="note_required")
    return replace(
        task,
        state=TaskState.CONTACTED,
        round=task.round + 1,
        rectification=None,
        call_back=None,
        history=task.event(now, "sent_back", by, note=note.strip()),
    )


# ---- the monthly report ---------------------------------------------------------------------


@dataclass
class Figures:
    key: str  # department or centre id
    name: str
    reviews: int = 0
    good: int = 0
    bad: int = 0
    excluded: int = 0
    rectify_judged: int = 0
    rectify_on_time: int = 0
    real_name_bad: int = 0
    called_back: int = 0
    rank: int | None = None
    bottom_two: bool = False
    talk: bool = False  # 约谈

    @property
    def good_rate(self) -> float | None:
        return round(self.good / self.reviews, 4) if self.reviews else None

    @property
    def rectify_on_time_rate(self) -> float | None:
        return round(self.rectify_on_time / self.rectify_judged, 4) if self.rectify_judged else None

    @property
    def call_back_rate(self) -> float | None:
        return round(self.called_back / self.real_name_bad, 4) if self.real_name_bad else None

    def add(self, review: Review) -> None:
        if review.excluded:
            self.excluded += 1
            return
        self.reviews += 1
        if review.is_bad:
            self.bad += 1
            if review.real_name:
                self.real_name_bad += 1
                self.called_back += review.called_back
            if review.rectify_on_time is not None:
                self.rectify_judged += 1
                self.rectify_on_time += review.rectify_on_time
        else:
            self.good += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "name": self.name,
            "reviews": self.reviews,
            "good": self.good,
            "bad": self.bad,
            "excluded": self.excluded,
            "good_rate": self.good_rate,
            "rectify_judged": self.rectify_judged,
            "rectify_on_time_rate": self.rectify_on_time_rate,
            "real_name_bad": self.real_name_bad,
            "called_back": self.called_back,
            "call_back_rate": self.call_back_rate,
            "rank": self.rank,
            "bottom_two": self.bottom_two,
            "talk": self.talk,
        }


@dataclass(frozen=True)
class MonthlyReport:
    month: str
    departments: list[Figures]
    centres: list[Figures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "departments": [f.to_dict() for f in self.departments],
            "centres": [f.to_dict() for f in self.centres],
        }


def rank(rows: list[Figures]) -> list[Figures]:
    """Best good rate first (more reviews break ties); the last two ranked are the bottom two.
    Departments without reviews this month are listed unranked."""
    ranked = sorted(
        (r for r in rows if r.reviews),
        key=lambda r: (-(r.good_rate or 0), -r.reviews, r.key),
    )
    for position, row in enumerate(ranked, start=1):
        row.rank = position
        row.bottom_two = len(ranked) > 2 and position > len(ranked) - 2
    return ranked + sorted((r for r in rows if not r.reviews), key=lambda r: r.key)


def build_report(
    month: str,
    reviews: Iterable[Review],
    names: dict[str, str],
    centre_names: dict[str, str],
    previous_bottom_two: frozenset[str],
) -> MonthlyReport:
    departments: dict[str, Figures] = {}
    centres: dict[str, Figures] = {}
    for review in reviews:
        if review.kind is not ReviewKind.INITIAL:
            continue  # 追评 are kept, not counted twice
        d = review.department_id
        if d not in departments:
            departments[d] = Figures(d, names.get(d, d))
        departments[d].add(review)
        if review.centre_id:
            c = review.centre_id
            if c not in centres:
                centres[c] = Figures(c, centre_names.get(c, c))
            centres[c].add(review)
    ranked = rank(list(departments.values()))
    for row in ranked:
        row.talk = row.bottom_two and row.key in previous_bottom_two
    return MonthlyReport(month, ranked, rank(list(centres.values())))


def previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def month_start(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


CSV_COLUMNS = (
    ("scope", "范围"),
    ("id", "编号"),
    ("name", "名称"),
    ("rank", "排名"),
    ("reviews", "评价数"),
    ("good_rate", "好评率"),
    ("bad", "差评数"),
    ("excluded", "申诉核减"),
    ("rectify_on_time_rate", "整改按时率"),
    ("call_back_rate", "回访率"),
    ("talk", "约谈"),
)


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:.2%}"
    return str(value)


# ---- alerts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertPolicy:
    """Configurable (stored as data); these are the defaults."""

    good_rate_threshold: float = 0.9
    window_days: int = 30
    min_reviews: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.good_rate_threshold <= 1:
            raise InvalidInput("好评率阈值应在0到1之间", code="invalid_threshold")
        if not 1 <= self.window_days <= 366 or self.min_reviews < 1:
            raise InvalidInput("统计窗口应为1到366天，最少评价数至少为1", code="invalid_window")


def alert_window(policy: AlertPolicy, today: date) -> str:
    """The window an alert belongs to: consecutive periods of `window_days`, so a department
    is alerted at most once per period while its rolling good rate stays low."""
    index = today.toordinal() // policy.window_days
    start = date.fromordinal(index * policy.window_days)
    return f"{start.isoformat()}P{policy.window_days}D"


def needs_alert(policy: AlertPolicy, reviews: int, bad: int) -> tuple[bool, float | None]:
    """Whether the window's counts are below the threshold (with enough reviews to judge)."""
    if reviews < policy.min_reviews:
        return False, None
    rate = round((reviews - bad) / reviews, 4)
    return rate < policy.good_rate_threshold, rate


@dataclass(frozen=True)
class Invitation:
    """A person asked to rate a completed handling, and when to remind them."""

    handling_type: str
    handling_id: str
    user_id: str
    title: str
    invited_at: datetime
    remind_at: datetime
