"""Unanswered questions: a "question" / "answer" clock of 5 working days from when a question
is filed, on the department of its topic; stopped when it is answered (the answer becomes a draft
article, the asker is notified)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain import knowledge as domain
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.knowledge import (
    Article,
    ArticleContent,
    Channel,
    ItemLink,
    Question,
    QuestionState,
)
from chalicelib.domain.notifications import RecipientKind
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.knowledge.articles import create_article
from chalicelib.service_layer.knowledge.common import (
    _ID_NAMESPACE,
    CLOCK_KIND,
    QUESTION_SUBJECT,
    KnowledgeDeps,
    _now,
)
from chalicelib.service_layer.notify import notify

if TYPE_CHECKING:
    pass


# ---- unanswered questions -----------------------------------------------------------------


def ask_question(
    deps: KnowledgeDeps,
    principal: Principal,
    *,
    text: str,
    channel: Channel | None = None,
    asker_user_id: str | None = None,
    item_code: str | None = None,
    policy_id: str | None = None,
    tags: tuple[str, ...] = (),
    request_key: str | None = None,
) -> Question:
    """File a question nobody could answer: routed to the topic's department with a 5-working-day
    clock. Citizens ask for themselves (mini-program); window and hotline staff file on behalf of
    a person (their account if they have one, else staff call them back)."""
    require(principal, Action.ASK_KB_QUESTION)
    text = text.strip()
    if not 4 <= len(text) <= 500:
        raise InvalidInput("问题应为4到500个字", code="invalid_question")
    if principal.is_public:
        channel, asker_user_id = Channel.MINI_PROGRAM, principal.user_id
    elif channel is None or channel is Channel.MINI_PROGRAM:
        channel = Channel.WINDOW if principal.role is Role.WINDOW_STAFF else Channel.HOTLINE
    department, why = _route(deps, item_code, policy_id, tags, text)
    now = _now(deps)
    key = request_key or uuid.uuid4().hex
    question_id = uuid.uuid5(_ID_NAMESPACE, f"{principal.user_id}:{key}").hex
    question = Question(
        question_id=question_id,
        text=text,
        channel=channel,
        department_id=department,
        routed_by=why,
        filed_by=principal.user_id,
        created_at=now,
        asker_user_id=asker_user_id,
        item_code=item_code,
        policy_id=policy_id,
        tags=tags,
    )
    if not deps.store.create_question(question):
        found = deps.store.get_question(question_id)
        if found is None:
            raise Conflict("问题提交冲突，请重试", code="question_changed")
        return found[0]  # a retried request: the question it filed
    clock = _start_question_clock(deps, question)
    question = replace(question, clock_id=clock.clock_id)
    deps.store.save_question(question, 1)
    record_change(
        deps.audit_log,
        principal,
        "kb_question.filed",
        "kb_question",
        question_id,
        None,
        {"state": question.state.value, "department_id": department},
        {"routed_by": why, "channel": channel.value},
    )
    notify(
        deps.notifier,
        f"kb-question:{question_id}:routed:{department}",
        RecipientKind.DEPARTMENT,
        department,
        "knowledge.question",
        "新的知识库问题待解答",
        f"群众提问：“{text[:60]}”，请于 {clock.due_at.strftime('%Y-%m-%d')} 前答复。",
        {"question_id": question_id, "due_at": clock.due_at.isoformat() if clock.due_at else None},
    )
    return question


def _route(
    deps: KnowledgeDeps,
    item_code: str | None,
    policy_id: str | None,
    tags: tuple[str, ...],
    text: str,
) -> tuple[str, str]:
    item = None
    if item_code:
        found = deps.items(item_code)
        if found is None:
            raise InvalidInput(f"办事事项 {item_code} 不存在", code="item_not_found")
        item = (item_code, found.department_id)
    policy = None
    if policy_id and item is None:
        info = deps.catalog().latest(policy_id)
        if info is not None:
            policy = (policy_id, info.department_id)
    return domain.route_question(item=item, policy=policy, tags=tags, text=text)


def _start_question_clock(deps: KnowledgeDeps, question: Question) -> Any:
    from chalicelib.service_layer import deadlines

    return deadlines.start_clock(
        deps.deadlines,
        subject_type=QUESTION_SUBJECT,
        subject_id=question.question_id,
        kind=CLOCK_KIND,
        limit=domain.QUESTION_ANSWER_DAYS,
        department_id=question.department_id,
        key=f"kb-question:{question.question_id}:answer",
        label=question.text[:30],
    )


def _question_resource(question: Question) -> Resource:
    return Resource(owner_user_id=question.asker_user_id, department_id=question.department_id)


def read_question(deps: KnowledgeDeps, principal: Principal, question_id: str) -> Question:
    found = deps.store.get_question(question_id)
    if found is None:
        raise NotFound("问题不存在", code="question_not_found")
    question = found[0]
    if principal.user_id == question.filed_by:
        return question
    require(principal, Action.READ_KB_QUESTION, _question_resource(question))
    return question


def list_questions(
    deps: KnowledgeDeps,
    principal: Principal,
    department_id: str | None,
    state: QuestionState,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Any:
    """A department's queue (department staff: their own)."""
    require(principal, Action.LIST_KB_QUESTIONS)
    department = department_id or principal.department_id
    if department is None:
        raise InvalidInput("请指定部门", code="department_required")
    require(principal, Action.LIST_KB_QUESTIONS, Resource(department_id=department))
    return deps.store.questions_of_department(department, state, limit, start_key)


def my_questions(
    deps: KnowledgeDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Any:
    require(principal, Action.ASK_KB_QUESTION)
    return deps.store.questions_of_asker(principal.user_id, limit, start_key)


def answer_question(
    deps: KnowledgeDeps,
    principal: Principal,
    question_id: str,
    *,
    answer: str,
    question_text: str | None = None,
    tags: tuple[str, ...] = (),
    item_links: tuple[ItemLink, ...] = (),
    policy_links: tuple[domain.PolicyLink, ...] = (),
) -> tuple[Question, Article]:
    """The department answers: the answer becomes a draft article (reviewed before it is
    published), the clock stops, the asker is notified."""
    from chalicelib.service_layer import deadlines

    found = deps.store.get_question(question_id)
    if found is None:
        raise NotFound("问题不存在", code="question_not_found")
    question, version = found
    require(principal, Action.ANSWER_KB_QUESTION, _question_resource(question))
    if question.state is not QuestionState.OPEN:
        raise RuleViolation("该问题已答复", code="question_answered")
    if item_links == () and question.item_code:
        item_links = (ItemLink(question.item_code),)
    content = ArticleContent(
        question=question_text or question.text,
        answer=answer,
        department_id=question.department_id,
        tags=tags or question.tags,
        item_links=item_links,
        policy_links=policy_links,
    )
    article = create_article(
        deps,
        principal,
        content,
        source_question_id=question_id,
        article_id=uuid.uuid5(_ID_NAMESPACE, f"answer:{question_id}").hex,
    )
    now = _now(deps)
    answered = domain.answer_question(question, principal.user_id, now, article.article_id, answer)
    deps.store.save_question(answered, version)
    if question.clock_id:
        clock = deps.deadlines.clocks.get(question.clock_id)
        if clock is not None and clock.is_open:
            deadlines.stop_clock(deps.deadlines, question.clock_id, actor=principal)
    record_change(
        deps.audit_log,
        principal,
        "kb_question.answered",
        "kb_question",
        question_id,
        {"state": question.state.value},
        {"state": answered.state.value, "article_id": article.article_id},
    )
    _notify_asker(deps, answered)
    return answered, article


def _notify_asker(deps: KnowledgeDeps, question: Question) -> None:
    recipient = question.asker_user_id or question.filed_by
    answer = (question.answer or "")[:200]
    body = f"您的提问“{question.text[:40]}”已有答复：{answer}"
    if question.asker_user_id is None:
        body = f"您代为登记的提问“{question.text[:40]}”已有答复，请回复提问人：{answer}"
    notify(
        deps.notifier,
        f"kb-question:{question.question_id}:answered:{recipient}",
        RecipientKind.USER,
        recipient,
        "knowledge.answered",
        "您的提问已答复",
        body,
        {"question_id": question.question_id, "article_id": question.article_id},
    )
