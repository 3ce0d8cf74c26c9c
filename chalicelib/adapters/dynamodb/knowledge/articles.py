"""Articles, their revisions, links and the search feed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError

from chalicelib.adapters.dynamodb.base import iso
from chalicelib.adapters.dynamodb.knowledge.models import (
    FEED,
    KnowledgeRecord,
    PlainKnowledgeRecord,
    get_item,
    save_item,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.knowledge import (
    Article,
    ArticleState,
    Revision,
    article_from_dict,
    article_to_dict,
    revision_from_dict,
    revision_to_dict,
)
from chalicelib.service_layer.ports import Page
from chalicelib.service_layer.ports.knowledge import FeedEntry, StoredArticle


def _article_pk(article_id: str) -> str:
    return f"article#{article_id}"


def _stored(item: KnowledgeRecord) -> StoredArticle:
    return StoredArticle(
        article_from_dict(item.data, item.version),
        int(item.last_seq or 0),
        item.tokens.split(" ") if item.tokens else None,
    )


class DynamoArticleStore:
    def get_article(self, article_id: str) -> StoredArticle | None:
        item = get_item(KnowledgeRecord, _article_pk(article_id), "article")
        return _stored(item) if item is not None else None

    def save_article(
        self,
        article: Article,
        revision: Revision,
        now: datetime,
        tokens: list[str] | None = None,
        previous: Article | None = None,
    ) -> Article:
        """Write the article if nobody changed it since it was read (Conflict otherwise), then
        its revision record and any changed links."""
        item = self._article_item(article, revision.seq, now, tokens)
        save_item(item, Conflict("条目已被他人修改，请刷新后重试", code="article_changed"))
        PlainKnowledgeRecord(
            _article_pk(article.article_id),
            f"rev#{revision.seq:06d}",
            data=revision_to_dict(revision),
        ).save()
        self._update_links(article, previous)
        return article_from_dict(item.data, item.version)

    def _article_item(
        self, article: Article, seq: int, now: datetime, tokens: list[str] | None
    ) -> KnowledgeRecord:
        item = KnowledgeRecord(
            _article_pk(article.article_id),
            "article",
            data=article_to_dict(article),
            list_key=f"article#{article.state.value}",
            list_sort=f"{iso(article.updated_at)}#{article.article_id}",
            feed=FEED,
            changed_at=f"{iso(now)}#{article.article_id}",
            last_seq=str(seq),
        )
        if article.state is ArticleState.PUBLISHED and tokens:
            item.tokens = " ".join(t for t in tokens if t and not t.isspace())
        if article.version is not None:
            item.version = article.version
        return item

    def _update_links(self, article: Article, previous: Article | None) -> None:
        def keys(a: Article | None) -> dict[str, dict[str, Any]]:
            if a is None:
                return {}
            found: dict[str, dict[str, Any]] = {
                f"link#item#{i.code}": {"version": i.version} for i in a.content.item_links
            }
            for p in a.content.policy_links:
                entry = found.setdefault(f"link#policy#{p.policy_id}", {"versions": []})
                entry["versions"].append(p.version)
            return found

        old, new = keys(previous), keys(article)
        sk = _article_pk(article.article_id)
        for pk, data in new.items():
            if old.get(pk) != data:
                PlainKnowledgeRecord(pk, sk, data=data).save()
        for pk in old.keys() - new.keys():
            with contextlib.suppress(DeleteError):
                PlainKnowledgeRecord(pk, sk).delete()

    def revisions(
        self, article_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Revision]:
        result = PlainKnowledgeRecord.query(
            _article_pk(article_id),
            PlainKnowledgeRecord.sk.startswith("rev#"),
            limit=limit,
            last_evaluated_key=start_key,
        )
        items = [revision_from_dict(r.data) for r in result]
        return Page(items, result.last_evaluated_key)

    def by_state(
        self, state: ArticleState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Article]:
        result = KnowledgeRecord.list_index.query(
            f"article#{state.value}",
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=start_key,
        )
        items = [article_from_dict(r.data, r.version) for r in result]
        return Page(items, result.last_evaluated_key)

    def published(self) -> Iterator[StoredArticle]:
        """Every published article with its tokens (the search index's first load)."""
        for item in KnowledgeRecord.list_index.query(f"article#{ArticleState.PUBLISHED.value}"):
            yield _stored(item)

    def changed_since(self, since: str) -> Iterator[FeedEntry]:
        """Articles written after `since` (a feed position: "<iso>#<id>" or an iso time)."""
        for item in KnowledgeRecord.feed_index.query(FEED, KnowledgeRecord.changed_at > since):
            stored = _stored(item)
            yield FeedEntry(stored.article, stored.tokens, item.changed_at)

    def linked(self, kind: str, key: str) -> list[tuple[str, dict[str, Any]]]:
        """(article id, link data) of the articles linking an item code or a policy id."""
        return [
            (r.sk.removeprefix("article#"), r.data or {})
            for r in PlainKnowledgeRecord.query(f"link#{kind}#{key}")
        ]
