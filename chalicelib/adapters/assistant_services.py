"""What the assistant asks of other capabilities (the service guide, policies, live help, the
knowledge base's questions), through their use cases: the assistant's use cases do not import
theirs; the container builds this and hands it to them (`Services`)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.assistant import Conversation
from chalicelib.domain.identity import Principal
from chalicelib.service_layer import knowledge
from chalicelib.service_layer.bookings.common import BookingDeps
from chalicelib.service_layer.bookings.live_help import request_help


class ContainerServices:
    """What the assistant asks of other capabilities, through their use cases."""

    def __init__(self, c: Any):
        self._c = c
        self.knowledge = knowledge.KnowledgeDeps.from_container(c)
        self._bookings = BookingDeps.from_container(c)

    def item_name(self, code: str) -> str | None:
        item = self._c.application_store.latest_item(code)
        return str(item.name) if item else None

    def policy_title(self, policy_id: str) -> str | None:
        info = self.knowledge.catalog().latest(policy_id)
        return str(info.title) if info else None

    def hand_over(self, principal: Principal, conversation: Conversation, item: str | None) -> str:
        """A live-help request carrying the transcript (one per conversation)."""
        first = next((t.text for t in conversation.turns if t.role == "user"), "")
        topic = first if len(first) >= 2 else "智能客服转人工"
        request = request_help(
            self._bookings,
            principal,
            topic[:200],
            item,
            f"assistant\n{conversation.conversation_id}",
            conversation_id=conversation.conversation_id,
            transcript=conversation.transcript(),
        )
        return request.request_id

    def file_question(
        self, principal: Principal, conversation: Conversation, text: str, key: str
    ) -> str | None:
        """A knowledge-base question with its 5-working-day clock (people asking for
        themselves; staff file on someone's behalf through the questions route)."""
        if not principal.is_public or len(text) < 4:
            return None
        context = conversation.context
        question = knowledge.ask_question(
            self.knowledge,
            principal,
            text=text,
            item_code=context.get("item"),
            policy_id=context.get("policy"),
            request_key=key,
        )
        return question.question_id
