"""The assistant's items in the knowledge table.

- conversation ("conversation#<id>", "conversation"): the turns and context (`data`), versioned;
  `owner_index` ("talker#<user>", "<started_at>#<id>") lists a person's conversations.
- lexicon entry ("lexicon#<id>", "lexicon"): a colloquial ↔ official pair; `list_index`
  ("lexicon#<state>", "<proposed_at>#<id>") lists proposals to review and the approved entries.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.base import condition_failed, iso
from chalicelib.adapters.dynamodb.knowledge.models import KnowledgeRecord, get_item, save_item
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.assistant import (
    Conversation,
    conversation_from_dict,
    conversation_to_dict,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.knowledge.lexicon import (
    LexiconEntry,
    LexiconState,
    entry_from_dict,
    entry_to_dict,
)
from chalicelib.service_layer.ports import Page


def _conversation_exists() -> Conflict:
    return Conflict("会话已存在", code="conversation_exists")


def _conversation_changed() -> Conflict:
    return Conflict("会话已更新，请刷新后重试", code="conversation_changed")


def _create(item: KnowledgeRecord) -> bool:
    try:
        item.save()
        return True
    except PutError as error:
        if condition_failed(error):
            return False
        raise


class DynamoAssistantStore:
    # -- conversations ------------------------------------------------------------------------

    def _conversation_item(self, c: Conversation) -> KnowledgeRecord:
        sort = f"{iso(c.started_at)}#{c.conversation_id}"
        item = KnowledgeRecord(
            f"conversation#{c.conversation_id}",
            "conversation",
            data=conversation_to_dict(c),
            owner_key=f"talker#{c.user_id}",
            owner_sort=sort,
        )
        if c.version is not None:
            item.version = c.version
        return item

    def create_conversation(self, conversation: Conversation) -> bool:
        """Store a new conversation; False when one with its id exists. In a transaction the
        put is enlisted (a stored one then fails the commit with "conversation_exists")."""
        item = self._conversation_item(conversation)
        transaction = current_transaction()
        if transaction is not None:
            # A new item's version check (no version stored yet) is the "does not exist".
            transaction.put(item, on_conflict=_conversation_exists)
            return True
        return _create(item)

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        item = get_item(KnowledgeRecord, f"conversation#{conversation_id}", "conversation")
        return conversation_from_dict(item.data, item.version) if item is not None else None

    def save_conversation(self, conversation: Conversation) -> None:
        item = self._conversation_item(conversation)
        transaction = current_transaction()
        if transaction is not None:
            transaction.put(item, on_conflict=_conversation_changed)
            return
        save_item(item, _conversation_changed())

    def conversations_of(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Conversation]:
        result = KnowledgeRecord.owner_index.query(
            f"talker#{user_id}", scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        return Page(
            [conversation_from_dict(r.data, r.version) for r in result], result.last_evaluated_key
        )

    # -- lexicon ------------------------------------------------------------------------------

    def _entry_item(self, entry: LexiconEntry, version: int | None) -> KnowledgeRecord:
        item = KnowledgeRecord(
            f"lexicon#{entry.entry_id}",
            "lexicon",
            data=entry_to_dict(entry),
            list_key=f"lexicon#{entry.state.value}",
            list_sort=f"{iso(entry.proposed_at)}#{entry.entry_id}",
        )
        if version is not None:
            item.version = version
        return item

    def create_entry(self, entry: LexiconEntry) -> bool:
        return _create(self._entry_item(entry, None))

    def get_entry(self, entry_id: str) -> tuple[LexiconEntry, int] | None:
        item = get_item(KnowledgeRecord, f"lexicon#{entry_id}", "lexicon")
        return (entry_from_dict(item.data), item.version) if item is not None else None

    def save_entry(self, entry: LexiconEntry, version: int) -> None:
        conflict = Conflict("词条已被他人处理，请刷新", code="lexicon_changed")
        save_item(self._entry_item(entry, version), conflict)

    def entries(
        self, state: LexiconState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[LexiconEntry]:
        result = KnowledgeRecord.list_index.query(
            f"lexicon#{state.value}", limit=limit, last_evaluated_key=start_key
        )
        return Page([entry_from_dict(r.data) for r in result], result.last_evaluated_key)

    def approved_pairs(self) -> list[tuple[str, str]]:
        """Every approved pair (index Query, paged): what search applies."""
        pairs, key = [], None
        while True:
            page = self.entries(LexiconState.APPROVED, 200, key)
            pairs += [(e.colloquial, e.official) for e in page.items]
            key = page.last_key
            if not key:
                return pairs
