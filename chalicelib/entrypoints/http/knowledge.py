"""Knowledge base over HTTP: articles and their review workflow, search, unanswered questions and
readiness of answers before policy versions take effect."""

import re
from typing import Any, Literal

from chalice import Blueprint
from pydantic import Field

from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
)
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route, authenticate
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Day, Moment, Tag, Text

bp = Blueprint(__name__)

_TAGS = ("knowledge",)
_CODE = r"^[A-Za-z0-9_\-]{1,64}$"
_ID = re.compile(r"^[0-9a-f]{32}$")


class ItemLinkBody(ApiModel):
    code: str = Field(pattern=_CODE, description="办事事项编码")
    version: int | None = Field(default=None, ge=1, description="办事指南版本；不填为当前版本")


class PolicyLinkBody(ApiModel):
    policy_id: str = Field(pattern=_CODE)
    version: int = Field(ge=1)


class ArticleBody(ApiModel):
    question: Text(200, min_length=1)
    answer: Text(5000, min_length=1, multiline=True)
    department_id: str = Field(pattern=_CODE)
    tags: list[Tag] = Field(default=[], max_length=10)
    item_links: list[ItemLinkBody] = Field(default=[], max_length=20)
    policy_links: list[PolicyLinkBody] = Field(default=[], max_length=20)
    effective_from: Day | None = None
    expires_on: Day | None = None


class ArticleUpdateBody(ArticleBody):
    expected_revision: int | None = Field(default=None, ge=1, description="乐观锁：读取时的修订号")


class ActionBody(ApiModel):
    action: Literal["submit", "approve", "reject", "publish", "archive", "cancel_schedule"]
    at: Moment | None = Field(default=None, description="定时发布或下线的时间（带时区）")
    comment: Text(500, multiline=True) = ""


class ArticleView(ApiModel):
    article_id: str
    state: str
    revision: int
    question: str
    answer: str
    department_id: str
    tags: list[str]
    item_links: list[dict[str, Any]]
    policy_links: list[dict[str, Any]]
    effective_from: str | None
    expires_on: str | None
    needs_change: list[str]
    publish_at: str | None
    archive_at: str | None
    published_at: str | None
    updated_at: str
    updated_by: str
    source_question_id: str | None


class ArticlePage(ApiModel):
    items: list[ArticleView]
    next_cursor: str | None = None


class ArticleListQuery(PageQuery):
    state: Literal["draft", "in_review", "approved", "published", "archived"] = "in_review"
    needs_change: bool = Field(default=False, description="只看需要更新的条目")


class RevisionPage(ApiModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


class SearchQuery(ApiModel):
    q: str = Field(min_length=1, max_length=100, description="用自己的话提问")
    limit: int = Field(default=10, ge=1, le=50)


class SearchView(ApiModel):
    query: str
    results: list[dict[str, Any]]
    ask_url: str = Field(description="找不到满意答案时提问")


class QuestionBody(ApiModel):
    text: Text(500, min_length=1, multiline=True)
    channel: Literal["mini_program", "window", "hotline"] | None = None
    asker_user_id: str | None = Field(
        default=None, max_length=64, description="窗口或热线代为登记时：提问人的账号（如有）"
    )
    item_code: str | None = Field(default=None, pattern=_CODE)
    policy_id: str | None = Field(default=None, pattern=_CODE)
    tags: list[Tag] = Field(default=[], max_length=10)


class AnswerBody(ApiModel):
    answer: Text(5000, min_length=1, multiline=True)
    question: Text(200) | None = Field(default=None, description="整理后的问题表述")
    tags: list[Tag] = Field(default=[], max_length=10)
    item_links: list[ItemLinkBody] = Field(default=[], max_length=20)
    policy_links: list[PolicyLinkBody] = Field(default=[], max_length=20)


class QuestionView(ApiModel):
    question_id: str
    text: str
    channel: str
    state: str
    department_id: str
    routed_by: str
    created_at: str
    due_at: str | None = None
    item_code: str | None
    policy_id: str | None
    tags: list[str]
    answered_at: str | None
    answer: str | None
    article_id: str | None


class QuestionPage(ApiModel):
    items: list[QuestionView]
    next_cursor: str | None = None


class QuestionListQuery(PageQuery):
    department_id: str | None = Field(default=None, pattern=_CODE)
    state: Literal["open", "answered"] = "open"


class AnsweredView(ApiModel):
    question: QuestionView
    article: ArticleView


class ReadinessQuery(PageQuery):
    from_date: Day | None = Field(default=None, alias="from", description="生效日期起（含）")


class ReadinessView(ApiModel):
    policy_id: str
    version: int
    title: str
    department_id: str
    effective_from: str
    target_date: str = Field(description="答复须于此工作日结束前审核通过")
    status: Literal["pending", "at_risk", "missed", "ready", "withdrawn"]
    due_at: str | None
    article_id: str | None
    ready_at: str | None
    policy_url: str


class ReadinessPage(ApiModel):
    items: list[ReadinessView]
    next_cursor: str | None = None


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.knowledge import KnowledgeDeps

    return KnowledgeDeps.from_container(container())


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        code = "question_not_found" if what == "问题" else "article_not_found"
        raise NotFound(f"{what}不存在", code=code)
    return value


def _links(body: Any) -> dict[str, Any]:
    from chalicelib.domain.knowledge import ItemLink, PolicyLink

    return {
        "item_links": tuple(ItemLink(i.code, i.version) for i in body.item_links),
        "policy_links": tuple(PolicyLink(p.policy_id, p.version) for p in body.policy_links),
    }


def _content(body: Any) -> Any:
    from chalicelib.domain.knowledge import ArticleContent

    return ArticleContent(
        question=body.question,
        answer=body.answer,
        department_id=body.department_id,
        tags=tuple(body.tags),
        effective_from=body.effective_from,
        expires_on=body.expires_on,
        **_links(body),
    )


def _page(items: list[Any], last_key: dict[str, Any] | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": encode_cursor(last_key)}


def _article_view(article: Any) -> dict[str, Any]:
    from chalicelib.domain.knowledge import article_to_dict

    data = article_to_dict(article)
    return {**data["content"], **{k: v for k, v in data.items() if k != "content"}}


@api_route(
    bp,
    "/kb/articles",
    method="POST",
    summary="新建知识条目（草稿）",
    tags=_TAGS,
    body=ArticleBody,
    response=ArticleView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def create_article(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    article = knowledge.create_article(_deps(), call.user, _content(call.body))
    return _article_view(article)


@api_route(
    bp,
    "/kb/articles",
    summary="按状态列出知识条目（工作人员）",
    tags=_TAGS,
    query=ArticleListQuery,
    response=ArticlePage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_articles(call: Call) -> dict[str, Any]:
    from chalicelib.domain.knowledge import ArticleState
    from chalicelib.service_layer import knowledge

    page = knowledge.list_articles(
        _deps(),
        call.user,
        ArticleState(call.query.state),
        call.query.limit,
        decode_cursor(call.query.cursor),
        needs_change=call.query.needs_change,
    )
    return _page([_article_view(a) for a in page.items], page.last_key)


@api_route(
    bp,
    "/kb/articles/{article_id}",
    summary="读取知识条目（已发布的公开；其他状态限工作人员）",
    tags=_TAGS,
    response=ArticleView,
    public=True,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_article(call: Call, article_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    principal = authenticate(call.headers) if call.headers.get("authorization") else None
    article = knowledge.read_article(_deps(), principal, _check_id(article_id, "知识条目"))
    return _article_view(article)


@api_route(
    bp,
    "/kb/articles/{article_id}",
    method="PUT",
    summary="修改知识条目（生成新修订，回到草稿）",
    tags=_TAGS,
    body=ArticleUpdateBody,
    response=ArticleView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def update_article(call: Call, article_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    article = knowledge.update_article(
        _deps(),
        call.user,
        _check_id(article_id, "知识条目"),
        _content(call.body),
        call.body.expected_revision,
    )
    return _article_view(article)


@api_route(
    bp,
    "/kb/articles/{article_id}/actions",
    method="POST",
    summary="提交审核、审核通过、退回、发布（可定时）、下线（可定时）、取消定时",
    tags=_TAGS,
    body=ActionBody,
    response=ArticleView,
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def act_on_article(call: Call, article_id: str) -> dict[str, Any]:
    from chalicelib.domain.knowledge import ArticleAction
    from chalicelib.service_layer import knowledge

    article = knowledge.act_on_article(
        _deps(),
        call.user,
        _check_id(article_id, "知识条目"),
        ArticleAction(call.body.action),
        at=call.body.at,
        comment=call.body.comment,
    )
    return _article_view(article)


@api_route(
    bp,
    "/kb/articles/{article_id}/revisions",
    summary="知识条目的修订记录（谁改了什么）",
    tags=_TAGS,
    query=PageQuery,
    response=RevisionPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def article_revisions(call: Call, article_id: str) -> dict[str, Any]:
    from chalicelib.domain.knowledge import revision_to_dict
    from chalicelib.service_layer import knowledge

    page = knowledge.article_revisions(
        _deps(),
        call.user,
        _check_id(article_id, "知识条目"),
        call.query.limit,
        decode_cursor(call.query.cursor),
    )
    return _page([revision_to_dict(r) for r in page.items], page.last_key)


@api_route(
    bp,
    "/kb/search",
    summary="知识库搜索（中文分词、同义词、BM25 排序）",
    tags=_TAGS,
    query=SearchQuery,
    response=SearchView,
    public=True,
    errors=(InvalidInput,),
)
def search(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    results = knowledge.search(_deps(), call.query.q, call.query.limit)
    return {"query": call.query.q, "results": results, "ask_url": "/kb/questions"}


def _question_view(question: Any, due_at: str | None = None) -> dict[str, Any]:
    from chalicelib.domain.knowledge import question_to_dict

    data = question_to_dict(question)
    keep = QuestionView.model_fields.keys()
    return {**{k: v for k, v in data.items() if k in keep}, "due_at": due_at}


def _due_at(deps: Any, question: Any) -> str | None:
    if not question.clock_id:
        return None
    clock = deps.deadlines.clocks.get(question.clock_id)
    return clock.due_at.isoformat() if clock and clock.due_at else None


@api_route(
    bp,
    "/kb/questions",
    method="POST",
    summary="提交未解答的问题（5个工作日内答复）",
    tags=_TAGS,
    body=QuestionBody,
    response=QuestionView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def ask_question(call: Call) -> dict[str, Any]:
    from chalicelib.domain.knowledge import Channel
    from chalicelib.service_layer import knowledge

    deps = _deps()
    body = call.body
    question = knowledge.ask_question(
        deps,
        call.user,
        text=body.text,
        channel=Channel(body.channel) if body.channel else None,
        asker_user_id=body.asker_user_id,
        item_code=body.item_code,
        policy_id=body.policy_id,
        tags=tuple(body.tags),
        request_key=call.idempotency_key,
    )
    return _question_view(question, _due_at(deps, question))


@api_route(
    bp,
    "/kb/questions",
    summary="部门待答问题队列",
    tags=_TAGS,
    query=QuestionListQuery,
    response=QuestionPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_questions(call: Call) -> dict[str, Any]:
    from chalicelib.domain.knowledge import QuestionState
    from chalicelib.service_layer import knowledge

    deps = _deps()
    page = knowledge.list_questions(
        deps,
        call.user,
        call.query.department_id,
        QuestionState(call.query.state),
        call.query.limit,
        decode_cursor(call.query.cursor),
    )
    return _page([_question_view(q, _due_at(deps, q)) for q in page.items], page.last_key)


@api_route(
    bp,
    "/me/kb-questions",
    summary="我提过的问题",
    tags=_TAGS,
    query=PageQuery,
    response=QuestionPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_questions(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    page = knowledge.my_questions(
        _deps(), call.user, call.query.limit, decode_cursor(call.query.cursor)
    )
    return _page([_question_view(q) for q in page.items], page.last_key)


@api_route(
    bp,
    "/kb/questions/{question_id}",
    summary="读取问题及答复",
    tags=_TAGS,
    response=QuestionView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def read_question(call: Call, question_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    deps = _deps()
    question = knowledge.read_question(deps, call.user, _check_id(question_id, "问题"))
    return _question_view(question, _due_at(deps, question))


@api_route(
    bp,
    "/kb/questions/{question_id}/answer",
    method="POST",
    summary="答复问题：答复成为知识条目草稿，并通知提问人",
    tags=_TAGS,
    body=AnswerBody,
    response=AnsweredView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def answer_question(call: Call, question_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    body = call.body
    question, article = knowledge.answer_question(
        _deps(),
        call.user,
        _check_id(question_id, "问题"),
        answer=body.answer,
        question_text=body.question,
        tags=tuple(body.tags),
        **_links(body),
    )
    return {"question": _question_view(question), "article": _article_view(article)}


@api_route(
    bp,
    "/kb/readiness",
    summary="即将生效的政策版本及其知识库答复就绪情况",
    tags=_TAGS,
    query=ReadinessQuery,
    response=ReadinessPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def readiness(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import knowledge

    views, last_key = knowledge.list_readiness(
        _deps(),
        call.user,
        call.query.from_date,
        call.query.limit,
        decode_cursor(call.query.cursor),
    )
    items = []
    for view in views:
        r = view.readiness
        items.append(
            {
                "policy_id": r.policy_id,
                "version": r.version,
                "title": r.title,
                "department_id": r.department_id,
                "effective_from": r.effective_from.isoformat(),
                "target_date": r.target_date.isoformat(),
                "status": view.status,
                "due_at": view.due_at.isoformat() if view.due_at else None,
                "article_id": r.article_id,
                "ready_at": r.ready_at.isoformat() if r.ready_at else None,
                "policy_url": f"/policies/{r.policy_id}",
            }
        )
    return _page(items, last_key)
