"""The assistant (智能客服): a conversation of turns, what a question is about (an item, a policy,
a service, or not ours), when to ask back, and when to hand over to a person.

Pure: the use cases search and store; this module decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.knowledge.common import moment_or_none

ASK_LINK = "https://12345.sh.gov.cn"  # the city hotline's web form: for what is not ours
OFF_TOPIC_REPLY = (
    "抱歉，这个问题不在政务服务的范围内，我暂时回答不了。"
    "如有其他诉求，可以拨打12345市民服务热线或在网上留言：" + ASK_LINK
)
HANDOVER_REPLY = "已为您转接专业人工帮办，工作人员会在1分钟内接入，请稍候。"
NO_ANSWER_REPLY = (
    "抱歉，我没有找到合适的答案。您的问题已转给承办部门，5个工作日内答复；也可以说“转人工”。"
)
CLARIFY_REPLY = "您问的是下面哪一项？请回复序号或名称："
MAX_FAILED_TURNS = 2
MAX_TURNS = 40
MAX_TEXT = 300

_HUMAN = re.compile(r"转人工|人工客服|人工服务|找人工|真人|接人工|要人工|人工帮办|转接人工")
_DISSATISFIED = re.compile(
    r"^(没用|不对|不是|答非所问|没解决|看不懂|不是这个|还是不懂)[。！!？?，,]*$"
)


class ConversationState(StrEnum):
    OPEN = "open"
    HANDED_OVER = "handed_over"


class TurnKind(StrEnum):
    QUESTION = "question"  # the person
    ANSWER = "answer"
    CLARIFY = "clarify"
    OFF_TOPIC = "off_topic"
    NO_ANSWER = "no_answer"
    HANDOVER = "handover"


class IntentKind(StrEnum):
    ITEM = "item"
    POLICY = "policy"
    SERVICE = "service"
    GENERAL = "general"  # answered by articles that name no item or policy
    OFF_TOPIC = "off_topic"


@dataclass(frozen=True)
class Choice:
    kind: str  # item | policy | service
    code: str
    title: str


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    kind: TurnKind
    text: str
    at: datetime
    choices: tuple[Choice, ...] = ()
    articles: tuple[str, ...] = ()
    links: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    user_id: str
    started_at: datetime
    state: ConversationState = ConversationState.OPEN
    turns: tuple[Turn, ...] = ()
    # What is known so far: the matter ("item", "policy" or "service" with its code).
    context: dict[str, str] = field(default_factory=dict)
    failed_turns: int = 0
    help_request_id: str | None = None
    question_ids: tuple[str, ...] = ()
    version: int | None = None

    @property
    def pending_choices(self) -> tuple[Choice, ...]:
        last = self.turns[-1] if self.turns else None
        return last.choices if last and last.kind is TurnKind.CLARIFY else ()

    def transcript(self) -> tuple[str, ...]:
        return tuple(f"{'用户' if t.role == 'user' else '客服'}：{t.text}" for t in self.turns)


def check_text(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise InvalidInput(f"消息应为1到{MAX_TEXT}个字", code="invalid_message")
    return text


def check_open(conversation: Conversation) -> None:
    if conversation.state is not ConversationState.OPEN:
        raise RuleViolation("会话已转人工，请在人工帮办中继续", code="conversation_handed_over")
    if len(conversation.turns) >= MAX_TURNS:
        raise RuleViolation("会话轮次已达上限，请开始新的会话", code="conversation_too_long")


def wants_human(text: str) -> bool:
    return bool(_HUMAN.search(text))


def dissatisfied(text: str) -> bool:
    return bool(_DISSATISFIED.match(text.strip()))


_ORDINALS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}


def pick_choice(text: str, choices: tuple[Choice, ...]) -> Choice | None:
    """The option a reply names: its number ("2", "第二个"), its code or its title (or a part of
    the title at least 2 characters long that no other option shares)."""
    text = text.strip().strip("。.！!？?")
    match = re.fullmatch(r"第?([一二三四五1-5])(个|项|种)?", text)
    if match:
        number = _ORDINALS[match.group(1)]
        return choices[number - 1] if number <= len(choices) else None
    for choice in choices:
        if text.upper() == choice.code.upper() or text == choice.title:
            return choice
    named = [c for c in choices if len(text) >= 2 and (text in c.title or c.title in text)]
    return named[0] if len(named) == 1 else None


def add_turn(conversation: Conversation, turn: Turn) -> Conversation:
    return replace(conversation, turns=(*conversation.turns, turn))


def after_answer(conversation: Conversation, context: dict[str, str]) -> Conversation:
    return replace(conversation, context={**conversation.context, **context}, failed_turns=0)


def after_failure(conversation: Conversation) -> Conversation:
    return replace(conversation, failed_turns=conversation.failed_turns + 1)


def should_hand_over(conversation: Conversation, text: str) -> bool:
    return wants_human(text) or conversation.failed_turns >= MAX_FAILED_TURNS


def handed_over(conversation: Conversation, help_request_id: str) -> Conversation:
    return replace(
        conversation, state=ConversationState.HANDED_OVER, help_request_id=help_request_id
    )


# ---- serialisation --------------------------------------------------------------------------


def _choice_to_dict(c: Choice) -> dict[str, str]:
    return {"kind": c.kind, "code": c.code, "title": c.title}


def turn_to_dict(t: Turn) -> dict[str, Any]:
    return {
        "role": t.role,
        "kind": t.kind.value,
        "text": t.text,
        "at": t.at.isoformat(),
        "choices": [_choice_to_dict(c) for c in t.choices],
        "articles": list(t.articles),
        "links": [dict(link) for link in t.links],
    }


def turn_from_dict(d: dict[str, Any]) -> Turn:
    return Turn(
        role=d["role"],
        kind=TurnKind(d["kind"]),
        text=d["text"],
        at=moment_or_none(d["at"]),  # type: ignore[arg-type]
        choices=tuple(Choice(**c) for c in d.get("choices") or ()),
        articles=tuple(d.get("articles") or ()),
        links=tuple(d.get("links") or ()),
    )


def conversation_to_dict(c: Conversation) -> dict[str, Any]:
    return {
        "conversation_id": c.conversation_id,
        "user_id": c.user_id,
        "started_at": c.started_at.isoformat(),
        "state": c.state.value,
        "turns": [turn_to_dict(t) for t in c.turns],
        "context": dict(c.context),
        "failed_turns": c.failed_turns,
        "help_request_id": c.help_request_id,
        "question_ids": list(c.question_ids),
    }


def conversation_from_dict(d: dict[str, Any], version: int | None = None) -> Conversation:
    return Conversation(
        conversation_id=d["conversation_id"],
        user_id=d["user_id"],
        started_at=moment_or_none(d["started_at"]),  # type: ignore[arg-type]
        state=ConversationState(d["state"]),
        turns=tuple(turn_from_dict(t) for t in d.get("turns") or ()),
        context=dict(d.get("context") or {}),
        failed_turns=int(d.get("failed_turns") or 0),
        help_request_id=d.get("help_request_id"),
        question_ids=tuple(d.get("question_ids") or ()),
        version=version,
    )
