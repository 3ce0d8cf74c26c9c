"""The assistant (智能客服) over HTTP: conversations that ask back, keep context and hand over to
live help, and the colloquial lexicon staff maintain with review."""

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
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Text

bp = Blueprint(__name__)

_TAGS = ("assistant",)


class StartBody(ApiModel):
    text: Text(300, min_length=1, multiline=True) | None = Field(
        default=None, description="第一句话；不填则只开启会话"
    )


class MessageBody(ApiModel):
    text: Text(300, min_length=1, multiline=True) = Field(
        description="用户的话；可回复澄清选项的序号或名称，说“转人工”转接人工帮办"
    )


class ChoiceView(ApiModel):
    kind: str
    code: str
    title: str


class TurnView(ApiModel):
    role: Literal["user", "assistant"]
    kind: Literal["question", "answer", "clarify", "off_topic", "no_answer", "handover"]
    text: str
    at: str
    choices: list[ChoiceView] = Field(default=[])
    articles: list[str] = Field(default=[], description="答案引用的知识库文章")
    links: list[dict[str, Any]] = Field(
        default=[], description="下一步：办事指南、预约、政策体检、反映表单（已预填）、人工帮办"
    )


class ConversationView(ApiModel):
    conversation_id: str
    state: Literal["open", "handed_over"]
    started_at: str
    context: dict[str, str] = Field(description="会话已确定的事项或政策")
    failed_turns: int
    help_request_id: str | None = None
    question_ids: list[str] = Field(default=[])
    turns: list[TurnView]


class LexiconBody(ApiModel):
    colloquial: Text(12, min_length=1) = Field(description="群众的说法（口语、方言、常见错字）")
    official: Text(12, min_length=1) = Field(description="对应的规范用语")
    note: Text(200) = ""


class ReviewBody(ApiModel):
    decision: Literal["approve", "reject"]
    comment: Text(200) = ""


class LexiconView(ApiModel):
    entry_id: str
    colloquial: str
    official: str
    state: Literal["proposed", "approved", "rejected"]
    proposed_by: str
    proposed_at: str
    note: str
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    comment: str


class LexiconQuery(PageQuery):
    state: Literal["proposed", "approved", "rejected"] = "proposed"


class LexiconPage(ApiModel):
    items: list[LexiconView]
    next_cursor: str | None = None


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.assistant import AssistantDeps

    return AssistantDeps.from_container(container())


def _view(conversation: Any) -> dict[str, Any]:
    from chalicelib.domain.assistant import conversation_to_dict

    data = conversation_to_dict(conversation)
    data.pop("user_id")
    return data


def _entry_view(entry: Any) -> dict[str, Any]:
    from chalicelib.domain.knowledge.lexicon import entry_to_dict

    return entry_to_dict(entry)


@api_route(
    bp,
    "/assistant/conversations",
    method="POST",
    summary="开启智能客服会话（可带第一句话）",
    tags=_TAGS,
    body=StartBody,
    response=ConversationView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def start_conversation(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import assistant

    return _view(
        assistant.start_conversation(_deps(), call.user, call.body.text, call.idempotency_key)
    )


@api_route(
    bp,
    "/assistant/conversations/{conversation_id}/messages",
    method="POST",
    summary="在会话中发言：回答、反问澄清或转人工",
    tags=_TAGS,
    body=MessageBody,
    response=ConversationView,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def post_message(call: Call, conversation_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import assistant

    return _view(assistant.post_message(_deps(), call.user, conversation_id, call.body.text))


@api_route(
    bp,
    "/assistant/conversations/{conversation_id}",
    summary="会话详情与对话记录（本人或接入的帮办人员）",
    tags=_TAGS,
    response=ConversationView,
    errors=(InvalidInput, Forbidden, NotFound),
)
def get_conversation(call: Call, conversation_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import assistant

    return _view(assistant.get_conversation(_deps(), call.user, conversation_id))


class ConversationSummary(ApiModel):
    conversation_id: str
    state: Literal["open", "handed_over"]
    started_at: str
    first_message: str | None = None
    turns: int


class ConversationPage(ApiModel):
    items: list[ConversationSummary]
    next_cursor: str | None = None


@api_route(
    bp,
    "/me/assistant/conversations",
    summary="我的智能客服会话（新的在前）",
    tags=_TAGS,
    query=PageQuery,
    response=ConversationPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def my_conversations(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import assistant

    page = assistant.my_conversations(
        _deps(), call.user, call.query.limit, decode_cursor(call.query.cursor)
    )
    return {
        "items": [
            {
                "conversation_id": c.conversation_id,
                "state": c.state.value,
                "started_at": c.started_at.isoformat(),
                "first_message": next((t.text for t in c.turns if t.role == "user"), None),
                "turns": len(c.turns),
            }
            for c in page.items
        ],
        "next_cursor": encode_cursor(page.last_key),
    }


@api_route(
    bp,
    "/assistant/lexicon",
    method="POST",
    summary="提交口语词与规范用语的对应（审核通过后生效）",
    tags=_TAGS,
    body=LexiconBody,
    response=LexiconView,
    status=201,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict),
)
def propose_lexicon(call: Call) -> dict[str, Any]:
    from chalicelib.service_layer import assistant

    body = call.body
    entry = assistant.propose_lexicon_entry(
        _deps(), call.user, body.colloquial, body.official, body.note, call.idempotency_key
    )
    return _entry_view(entry)


@api_route(
    bp,
    "/assistant/lexicon/{entry_id}/review",
    method="POST",
    summary="审核口语词条（不能审核自己提交的）",
    tags=_TAGS,
    body=ReviewBody,
    response=LexiconView,
    idempotency="optional",
    errors=(InvalidInput, Forbidden, NotFound, Conflict, RuleViolation),
)
def review_lexicon(call: Call, entry_id: str) -> dict[str, Any]:
    from chalicelib.service_layer import assistant

    entry = assistant.review_lexicon_entry(
        _deps(), call.user, entry_id, call.body.decision == "approve", call.body.comment
    )
    return _entry_view(entry)


@api_route(
    bp,
    "/assistant/lexicon",
    summary="口语词条列表（按状态）",
    tags=_TAGS,
    query=LexiconQuery,
    response=LexiconPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_lexicon(call: Call) -> dict[str, Any]:
    from chalicelib.domain.knowledge.lexicon import LexiconState
    from chalicelib.service_layer import assistant

    page = assistant.list_lexicon(
        _deps(),
        call.user,
        LexiconState(call.query.state),
        call.query.limit,
        decode_cursor(call.query.cursor),
    )
    return {
        "items": [_entry_view(e) for e in page.items],
        "next_cursor": encode_cursor(page.last_key),
    }
