"""Ports of the knowledge capability: what its use cases ask of storage and the world outside."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from chalicelib.domain.knowledge import (
    Article,
    ArticleState,
    Question,
    QuestionState,
    Readiness,
    Revision,
)
from chalicelib.service_layer.ports import Page


@dataclass(frozen=True)
class StoredArticle:
    article: Article
    last_seq: int
    tokens: list[str] | None = None


@dataclass(frozen=True)
class FeedEntry:
    article: Article
    tokens: list[str] | None
    changed_at: str


@dataclass(frozen=True)
class Hit:
    article_id: str
    question: str
    snippet: str
    score: float
    tags: tuple[str, ...]
    item_codes: tuple[str, ...]
    policy_links: tuple[tuple[str, int], ...]
    updated_at: str


@dataclass(frozen=True)
class PolicyInfo:
    """What the knowledge base needs of a policy version."""

    policy_id: str
    version: int
    title: str
    department_id: str
    effective_from: date | None
    state: str  # draft | published | retired
    item_code: str | None = None
    tags: tuple[str, ...] = ()


class PolicyCatalog(Protocol):
    """The policy capability as the knowledge base sees it (`adapters/policy_catalog.py`)."""

    @property
    def available(self) -> bool: ...

    def get(self, policy_id: str, version: int) -> PolicyInfo | None: ...
    def latest(self, policy_id: str) -> PolicyInfo | None: ...
    def effective_between(self, start: date, end: date) -> list[PolicyInfo]: ...
    def names(self) -> list[str]: ...


class KnowledgeStore(Protocol):
    """`adapters/dynamodb/knowledge.py` DynamoKnowledgeStore."""

    def get_article(self, article_id: str) -> StoredArticle | None: ...
    def save_article(
        self,
        article: Article,
        revision: Revision,
        now: datetime,
        tokens: list[str] | None = None,
        previous: Article | None = None,
    ) -> Article: ...
    def revisions(
        self, article_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Revision]: ...
    def by_state(
        self, state: ArticleState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Article]: ...
    def published(self) -> Iterator[StoredArticle]: ...
    def changed_since(self, since: str) -> Iterator[FeedEntry]: ...
    def linked(self, kind: str, key: str) -> list[tuple[str, dict[str, Any]]]: ...
    def create_question(self, question: Question) -> bool: ...
    def get_question(self, question_id: str) -> tuple[Question, int] | None: ...
    def save_question(self, question: Question, version: int) -> None: ...
    def questions_of_department(
        self, department_id: str, state: QuestionState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Question]: ...
    def questions_of_asker(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Question]: ...
    def get_readiness(self, policy_id: str, version: int) -> tuple[Readiness, int] | None: ...
    def save_readiness(self, readiness: Readiness, version: int | None) -> None: ...
    def readiness_from(
        self, first: date, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Readiness]: ...


class KnowledgeSearch(Protocol):
    """`adapters/search_index.py` SearchIndex."""

    vocabulary: Callable[[], Iterable[str]] | None

    def ensure_vocabulary(self) -> None: ...
    def refresh(self) -> int: ...
    def apply(self, article: Article, tokens: list[str] | None) -> None: ...
    def load_documents(self, pairs: Iterable[tuple[Article, list[str]]]) -> None: ...
    def search(self, query: str, limit: int = 10, refresh: bool = True) -> list[Hit]: ...
    def mentions_field(self, query: str) -> bool: ...
    def use_lexicon(self, pairs: Iterable[tuple[str, str]]) -> None: ...
