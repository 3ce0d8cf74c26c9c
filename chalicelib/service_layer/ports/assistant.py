"""Ports of the assistant capability (智能客服): conversations and the colloquial lexicon."""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.assistant import Conversation
from chalicelib.domain.knowledge.lexicon import LexiconEntry, LexiconState
from chalicelib.service_layer.ports import Page


class ConversationStore(Protocol):
    """`adapters/dynamodb/knowledge/assistant.py` DynamoAssistantStore."""

    def create_conversation(self, conversation: Conversation) -> bool: ...
    def get_conversation(self, conversation_id: str) -> Conversation | None: ...
    def save_conversation(self, conversation: Conversation) -> None: ...
    def conversations_of(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Conversation]: ...


class LexiconStore(Protocol):
    """`adapters/dynamodb/knowledge/assistant.py` DynamoAssistantStore."""

    def create_entry(self, entry: LexiconEntry) -> bool: ...
    def get_entry(self, entry_id: str) -> tuple[LexiconEntry, int] | None: ...
    def save_entry(self, entry: LexiconEntry, version: int) -> None: ...
    def entries(
        self, state: LexiconState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[LexiconEntry]: ...
    def approved_pairs(self) -> list[tuple[str, str]]: ...


class AssistantStore(ConversationStore, LexiconStore, Protocol):
    """Both, as the container provides them."""
