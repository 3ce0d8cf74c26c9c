"""What the knowledge base's use cases share: their deps, the policy catalogue seen from here,
clock kinds and subjects."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain import knowledge as domain
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.knowledge import (
    Article,
)
from chalicelib.service_layer.ports.knowledge import PolicyCatalog, PolicyInfo

if TYPE_CHECKING:
    from chalicelib.domain.applications import ServiceItem
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.deadlines import DeadlineDeps
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import TimeSource
    from chalicelib.service_layer.ports.due import DueStore
    from chalicelib.service_layer.ports.knowledge import (
        KnowledgeSearch,
        KnowledgeStore,
    )


ARTICLE_DUE_KIND = "kb.article"
READINESS_HORIZON_DAYS = 120  # policy versions taking effect this far ahead get a readiness clock
_ID_NAMESPACE = uuid.UUID("2b7c0f1e-7d7a-4f55-9a4e-5b0b1f7c9e21")
QUESTION_SUBJECT = "question"
READINESS_SUBJECT = "kb_readiness"
CLOCK_KIND = "answer"


# ---- ports --------------------------------------------------------------------------------


class NoPolicies:
    """Used where the policy capability is absent: no links can be checked."""

    available = False

    def get(self, policy_id: str, version: int) -> PolicyInfo | None:
        return None

    def latest(self, policy_id: str) -> PolicyInfo | None:
        return None

    def effective_between(self, start: date, end: date) -> list[PolicyInfo]:
        return []

    def names(self) -> list[str]:
        return []


def policy_info(version: Any) -> PolicyInfo:
    """From a `PolicyVersion` (domain/policies.py) or its stored dict."""
    d = version if isinstance(version, dict) else version.to_dict()
    effective = d.get("effective_from")
    return PolicyInfo(
        policy_id=str(d["policy_id"]),
        version=int(d["version"]),
        title=str(d.get("title") or d["policy_id"]),
        department_id=str(d.get("department_id") or domain.DEFAULT_DEPARTMENT_ID),
        effective_from=date.fromisoformat(effective) if isinstance(effective, str) else effective,
        state=str(d.get("state") or "draft"),
        item_code=d.get("service_item_code"),
        tags=tuple(d.get("tags") or ()),
    )


@dataclass
class KnowledgeDeps:
    store: KnowledgeStore
    search: KnowledgeSearch
    notifier: Notifier
    audit_log: AuditLog
    clock: TimeSource
    deadlines: DeadlineDeps
    items: Callable[[str], ServiceItem | None]  # code -> latest version
    policies: PolicyCatalog | None = None
    tokenize: Callable[[Article, Iterable[str]], list[str]] | None = None
    due: DueStore | None = None

    @classmethod
    def from_container(cls, c: Any) -> KnowledgeDeps:
        from chalicelib.service_layer.deadlines import DeadlineDeps

        catalog: PolicyCatalog = c.policy_catalog
        search = c.knowledge_search
        if search.vocabulary is None:
            search.vocabulary = lambda: vocabulary(c.application_store, catalog)
        if getattr(search, "lexicon", None) is None:
            search.lexicon = c.assistant_store.approved_pairs
        return cls(
            store=c.knowledge_store,
            search=search,
            notifier=c.notifier,
            audit_log=c.audit_log,
            clock=c.clock,
            deadlines=DeadlineDeps.from_container(c),
            items=c.application_store.latest_item,
            policies=catalog,
            due=c.due_store,
            tokenize=c.article_tokens,
        )

    def catalog(self) -> Any:
        return self.policies or NoPolicies()

    def tokens(self, article: Article) -> list[str]:
        self.search.ensure_vocabulary()
        # What a linked item says (its name, conditions, materials and what it bundles) is
        # found through the article too: "要上传什么" is answered by the guide's materials.
        names = [
            text
            for link in article.content.item_links
            if (item := self.items(link.code))
            for text in (
                item.name,
                *item.conditions,
                *(m.name for m in item.materials),
                *item.bundle,
            )
        ]
        # And what a linked policy version is called and tagged with.
        catalog = self.catalog()
        names += [
            text
            for link in article.content.policy_links
            if (info := catalog.get(link.policy_id, link.version))
            for text in (info.title, *info.tags)
        ]
        if self.tokenize is None:
            raise RuntimeError("KnowledgeDeps needs a tokenizer (the container has the index's)")
        return self.tokenize(article, names)


def vocabulary(items: Any, catalog: Any) -> list[str]:
    """Service-item and policy names for the search dictionary (index Queries only)."""
    names, key = [], None
    while True:
        page = items.list_items(100, key)
        names += [
            name
            for item in page.items
            for name in (item.name, *(m.name for m in item.materials), *item.bundle)
        ]
        key = page.last_key
        if not key:
            break
    names_of = getattr(catalog, "names", None)
    return names + (list(names_of()) if names_of else [])


def _now(deps: KnowledgeDeps) -> datetime:
    return deps.clock.now().astimezone(CHINA_TZ)


def _summary(article: Article) -> dict[str, Any]:
    return {
        "state": article.state.value,
        "revision": article.revision,
        "publish_at": article.publish_at.isoformat() if article.publish_at else None,
        "archive_at": article.archive_at.isoformat() if article.archive_at else None,
        "needs_change": list(article.needs_change),
    }
