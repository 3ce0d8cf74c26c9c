"""Unanswered questions: routed by topic to a department, answered once (the answer becomes a
draft article)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import RuleViolation
from chalicelib.domain.knowledge.common import (
    DEFAULT_DEPARTMENT_ID,
    iso_or_none,
    moment_or_none,
)

# ---- unanswered questions -------------------------------------------------------------------


class QuestionState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class Channel(StrEnum):
    MINI_PROGRAM = "mini_program"
    WINDOW = "window"
    HOTLINE = "hotline"


@dataclass(frozen=True)
class Question:
    question_id: str
    text: str
    channel: Channel
    department_id: str
    routed_by: str  # "item:<code>", "policy:<id>", "tag:<tag>" or "default"
    filed_by: str  # the user who filed it (the asker, or staff on their behalf)
    created_at: datetime
    asker_user_id: str | None = None  # who gets the answer (None: staff call back)
    item_code: str | None = None
    policy_id: str | None = None
    tags: tuple[str, ...] = ()
    state: QuestionState = QuestionState.OPEN
    clock_id: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None
    article_id: str | None = None
    answer: str | None = None


# Topic tags → owning department (data; a question with neither item nor policy is routed by them).
TAG_DEPARTMENTS: dict[str, str] = {
    "食品": "dept-scjgj",
    "食品经营": "dept-scjgj",
    "营业执照": "dept-scjgj",
    "市场监管": "dept-scjgj",
    "个体工商户": "dept-scjgj",
    "社保": "dept-rsj",
    "就业": "dept-rsj",
    "灵活就业": "dept-rsj",
    "人才": "dept-rsj",
    "失业": "dept-rsj",
    "医保": "dept-ybj",
    "异地就医": "dept-ybj",
    "医疗保险": "dept-ybj",
    "出生": "dept-zwb",
    "一件事": "dept-zwb",
}


def route_question(
    *,
    item: tuple[str, str] | None,
    policy: tuple[str, str] | None,
    tags: tuple[str, ...],
    text: str = "",
) -> tuple[str, str]:
    """(department, why): the linked item's department, else the policy's, else a topic tag's
    (given, or named in the text), else the district office."""
    if item is not None:
        return item[1], f"item:{item[0]}"
    if policy is not None:
        return policy[1], f"policy:{policy[0]}"
    for tag in tags:
        if tag in TAG_DEPARTMENTS:
            return TAG_DEPARTMENTS[tag], f"tag:{tag}"
    for tag, department in sorted(TAG_DEPARTMENTS.items(), key=lambda t: -len(t[0])):
        if tag in text:
            return department, f"tag:{tag}"
    return DEFAULT_DEPARTMENT_ID, "default"


def answer_question(
    question: Question, by: str, now: datetime, article_id: str, answer: str
) -> Question:
    if question.state is not QuestionState.OPEN:
        raise RuleViolation("该问题已答复", code="question_answered")
    return replace(
        question,
        state=QuestionState.ANSWERED,
        answered_by=by,
        answered_at=now,
        article_id=article_id,
        answer=answer,
    )


def question_to_dict(q: Question) -> dict[str, Any]:
    return {
        "question_id": q.question_id,
        "text": q.text,
        "channel": q.channel.value,
        "department_id": q.department_id,
        "routed_by": q.routed_by,
        "filed_by": q.filed_by,
        "created_at": iso_or_none(q.created_at),
        "asker_user_id": q.asker_user_id,
        "item_code": q.item_code,
        "policy_id": q.policy_id,
        "tags": list(q.tags),
        "state": q.state.value,
        "clock_id": q.clock_id,
        "answered_by": q.answered_by,
        "answered_at": iso_or_none(q.answered_at),
        "article_id": q.article_id,
        "answer": q.answer,
    }


def question_from_dict(d: dict[str, Any]) -> Question:
    return Question(
        question_id=d["question_id"],
        text=d["text"],
        channel=Channel(d["channel"]),
        department_id=d["department_id"],
        routed_by=d["routed_by"],
        filed_by=d["filed_by"],
        created_at=moment_or_none(d["created_at"]),  # type: ignore[arg-type]
        asker_user_id=d.get("asker_user_id"),
        item_code=d.get("item_code"),
        policy_id=d.get("policy_id"),
        tags=tuple(d.get("tags") or ()),
        state=QuestionState(d["state"]),
        clock_id=d.get("clock_id"),
        answered_by=d.get("answered_by"),
        answered_at=moment_or_none(d.get("answered_at")),
        article_id=d.get("article_id"),
        answer=d.get("answer"),
    )
