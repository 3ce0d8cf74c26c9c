"""Knowledge base on DynamoDB: one table ("knowledge", keys pk/sk).

Items:
- article    ("article#<id>", "article"): the article (explicit mapping in `data`), a version
             attribute (conditional writes), the search tokens while published (`tokens`, space
             separated: segmentation happens once per revision, not per search), and index keys:
             `list_index` ("article#<state>", "<updated_at>#<id>") lists articles by state;
             `feed_index` ("article", "<changed_at>#<id>") is the "changed since" feed the
             in-process search index refreshes from. A scheduled publish or archive is a due
             item (table "due-items", kind "kb.article"), filed by the service layer.
- revision   ("article#<id>", "rev#<seq>"): written once; who changed what.
- link       ("link#item#<code>" | "link#policy#<policy_id>", "article#<id>"): which articles
             a changed item or policy version affects (one Query).
- question   ("question#<id>", "question"): `list_index` ("questions#<dept>#<state>",
             "<created_at>#<id>") is a department's queue; `owner_index` ("asker#<user>", ...)
             the asker's own questions.
- readiness  ("readiness#<policy>#<version>", "readiness"): `list_index` ("readiness",
             "<effective_from>#<policy>#<version>") lists upcoming policy versions.
No full-table read anywhere: every read is a GetItem or a Query on a key or an index.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, iso, meta
from chalicelib.domain.errors import Conflict
from chalicelib.domain.knowledge import (
    Article,
    ArticleState,
    Question,
    QuestionState,
    Readiness,
    Revision,
    article_from_dict,
    article_to_dict,
    question_from_dict,
    question_to_dict,
    readiness_from_dict,
    readiness_to_dict,
    revision_from_dict,
    revision_to_dict,
)
from chalicelib.service_layer.ports import Page
from chalicelib.service_layer.ports.knowledge import FeedEntry, StoredArticle

FEED = "article"


def _get(model: Any, pk: str, sk: str) -> Any:
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def _save(item: Any, conflict: Conflict) -> None:
    """Save the item only if nobody changed it since it was read (versioned); else `conflict`."""
    try:
        item.save()
    except PutError as error:
        if condition_failed(error):
            raise conflict from error
        raise


class ListIndex(GlobalSecondaryIndex["KnowledgeRecord"]):
    class Meta:
        index_name = "list_index"
        projection = AllProjection()

    list_key = UnicodeAttribute(hash_key=True)
    list_sort = UnicodeAttribute(range_key=True)


class OwnerIndex(GlobalSecondaryIndex["KnowledgeRecord"]):
    class Meta:
        index_name = "owner_index"
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    owner_sort = UnicodeAttribute(range_key=True)


class FeedIndex(GlobalSecondaryIndex["KnowledgeRecord"]):
    class Meta:
        index_name = "feed_index"
        projection = AllProjection()

    feed = UnicodeAttribute(hash_key=True)
    changed_at = UnicodeAttribute(range_key=True)


class KnowledgeRecord(Model):
    """Versioned items (articles, questions, readiness): every save is conditional."""

    Meta = meta("knowledge")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    tokens = UnicodeAttribute(null=True)
    list_key = UnicodeAttribute(null=True)
    list_sort = UnicodeAttribute(null=True)
    owner_key = UnicodeAttribute(null=True)
    owner_sort = UnicodeAttribute(null=True)
    feed = UnicodeAttribute(null=True)
    changed_at = UnicodeAttribute(null=True)
    last_seq = UnicodeAttribute(null=True)
    version = VersionAttribute()

    list_index = ListIndex()
    owner_index = OwnerIndex()
    feed_index = FeedIndex()


class PlainKnowledgeRecord(Model):
    """Unversioned items of the same table (revisions, links)."""

    Meta = meta("knowledge")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute(null=True)


def _article_pk(article_id: str) -> str:
    return f"article#{article_id}"


def _stored(item: KnowledgeRecord) -> StoredArticle:
    return StoredArticle(
        article_from_dict(item.data, item.version),
        int(item.last_seq or 0),
        item.tokens.split(" ") if item.tokens else None,
    )


class DynamoKnowledgeStore:
    # ---- articles -------------------------------------------------------------------------

    def get_article(self, article_id: str) -> StoredArticle | None:
        item = _get(KnowledgeRecord, _article_pk(article_id), "article")
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
        _save(item, Conflict("条目已被他人修改，请刷新后重试", code="article_changed"))
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

    # ---- questions ------------------------------------------------------------------------

    def _question_item(self, question: Question, version: int | None) -> KnowledgeRecord:
        item = KnowledgeRecord(
            f"question#{question.question_id}",
            "question",
            data=question_to_dict(question),
            list_key=f"questions#{question.department_id}#{question.state.value}",
            list_sort=f"{iso(question.created_at)}#{question.question_id}",
        )
        if question.asker_user_id:
            item.owner_key = f"asker#{question.asker_user_id}"
            item.owner_sort = item.list_sort
        if version is not None:
            item.version = version
        return item

    def create_question(self, question: Question) -> bool:
        try:
            self._question_item(question, None).save()
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def get_question(self, question_id: str) -> tuple[Question, int] | None:
        item = _get(KnowledgeRecord, f"question#{question_id}", "question")
        return (question_from_dict(item.data), item.version) if item is not None else None

    def save_question(self, question: Question, version: int) -> None:
        conflict = Conflict("问题已被他人处理，请刷新", code="question_changed")
        _save(self._question_item(question, version), conflict)

    def questions_of_department(
        self, department_id: str, state: QuestionState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Question]:
        result = KnowledgeRecord.list_index.query(
            f"questions#{department_id}#{state.value}", limit=limit, last_evaluated_key=start_key
        )
        return Page([question_from_dict(r.data) for r in result], result.last_evaluated_key)

    def questions_of_asker(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Question]:
        result = KnowledgeRecord.owner_index.query(
            f"asker#{user_id}",
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=start_key,
        )
        return Page([question_from_dict(r.data) for r in result], result.last_evaluated_key)

    # ---- readiness ------------------------------------------------------------------------

    def get_readiness(self, policy_id: str, version: int) -> tuple[Readiness, int] | None:
        item = _get(KnowledgeRecord, f"readiness#{policy_id}#{version}", "readiness")
        return (readiness_from_dict(item.data), item.version) if item is not None else None

    def save_readiness(self, readiness: Readiness, version: int | None) -> None:
        """Create (version None: only if absent) or update (if unchanged since read)."""
        item = KnowledgeRecord(
            f"readiness#{readiness.policy_id}#{readiness.version}",
            "readiness",
            data=readiness_to_dict(readiness),
            list_key="readiness",
            list_sort=(
                f"{readiness.effective_from.isoformat()}#{readiness.policy_id}#{readiness.version}"
            ),
        )
        if version is not None:
            item.version = version
        _save(item, Conflict("就绪记录已被更新，请重试", code="readiness_changed"))

    def readiness_from(
        self, first: date, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Readiness]:
        result = KnowledgeRecord.list_index.query(
            "readiness",
            KnowledgeRecord.list_sort >= first.isoformat(),
            limit=limit,
            last_evaluated_key=start_key,
        )
        return Page([readiness_from_dict(r.data) for r in result], result.last_evaluated_key)
