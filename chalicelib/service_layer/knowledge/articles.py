"""Articles and their workflow, scheduled publish and archive, "needs change" when a linked
item or policy version changes, and search."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain import knowledge as domain
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.domain.identity import SYSTEM, Principal, Role
from chalicelib.domain.knowledge import (
    Article,
    ArticleAction,
    ArticleContent,
    ArticleState,
    ItemLink,
)
from chalicelib.domain.notifications import RecipientKind
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.conflicts import retry_on_conflict
from chalicelib.service_layer.knowledge.common import (
    ARTICLE_DUE_KIND,
    KnowledgeDeps,
    _now,
    _summary,
)
from chalicelib.service_layer.knowledge.readiness import (
    ensure_readiness,
    mark_ready,
    sync_readiness,
    withdraw_readiness,
)
from chalicelib.service_layer.notify import notify
from chalicelib.service_layer.ports.knowledge import PolicyInfo

if TYPE_CHECKING:
    from chalicelib.service_layer.ports.due import DueStore
    from chalicelib.service_layer.ports.knowledge import (
        StoredArticle,
    )


# ---- articles -----------------------------------------------------------------------------


def _resource(article: Article) -> Resource:
    return Resource(department_id=article.content.department_id)


def _checked_links(deps: KnowledgeDeps, content: ArticleContent) -> ArticleContent:
    """Linked items must exist (an unversioned link is pinned to the current guide version);
    linked policy versions must exist when the policy capability is there to ask."""
    items = []
    for link in content.item_links:
        item = deps.items(link.code)
        if item is None:
            raise InvalidInput(f"办事事项 {link.code} 不存在", code="item_not_found")
        items.append(ItemLink(link.code, link.version or item.version))
    catalog = deps.catalog()
    if catalog.available:
        for cited in content.policy_links:
            if catalog.get(cited.policy_id, cited.version) is None:
                raise InvalidInput(
                    f"政策 {cited.policy_id} 第{cited.version}版不存在", code="policy_not_found"
                )
    return replace(content, item_links=tuple(items))


def create_article(
    deps: KnowledgeDeps,
    principal: Principal,
    content: ArticleContent,
    *,
    source_question_id: str | None = None,
    article_id: str | None = None,
) -> Article:
    require(principal, Action.EDIT_KB_ARTICLE, Resource(department_id=content.department_id))
    content = _checked_links(deps, content)
    now = _now(deps)
    article, revision = domain.new_article(
        article_id or uuid.uuid4().hex, content, principal.user_id, now, source_question_id
    )
    saved = deps.store.save_article(article, revision, now)
    record_change(
        deps.audit_log,
        principal,
        "kb_article.created",
        "kb_article",
        saved.article_id,
        None,
        _summary(saved),
        {"department_id": content.department_id},
    )
    return saved


def _load(deps: KnowledgeDeps, article_id: str) -> StoredArticle:
    stored = deps.store.get_article(article_id)
    if stored is None:
        raise NotFound("知识条目不存在", code="article_not_found")
    return stored


def read_article(deps: KnowledgeDeps, principal: Principal | None, article_id: str) -> Article:
    """A published article is public; other states are for staff who may edit or review it."""
    article = _load(deps, article_id).article
    if article.is_public:
        return article
    if principal is None:
        raise NotFound("知识条目不存在", code="article_not_found")
    if principal.is_public:
        raise NotFound("知识条目不存在", code="article_not_found")
    require(principal, Action.READ_KB_DRAFTS, _resource(article))
    return article


def update_article(
    deps: KnowledgeDeps,
    principal: Principal,
    article_id: str,
    content: ArticleContent,
    expected_revision: int | None = None,
) -> Article:
    stored = _load(deps, article_id)
    before = stored.article
    require(principal, Action.EDIT_KB_ARTICLE, _resource(before))
    require(principal, Action.EDIT_KB_ARTICLE, Resource(department_id=content.department_id))
    if expected_revision is not None and expected_revision != before.revision:
        raise Conflict("条目已被他人修改，请刷新后重试", code="article_changed")
    content = _checked_links(deps, content)
    now = _now(deps)
    after, revision = domain.edit(before, content, principal.user_id, now, stored.last_seq)
    _file_due(deps, before, after, now)
    saved = deps.store.save_article(after, revision, now, previous=before)
    _cancel_due(deps, before, saved, now)
    deps.search.apply(saved, None)  # a published article edited leaves search until reviewed
    record_change(
        deps.audit_log,
        principal,
        "kb_article.edited",
        "kb_article",
        article_id,
        _summary(before),
        _summary(saved),
        {"changed": sorted(revision.changes)},
    )
    return saved


_ACTION_RIGHTS = {
    ArticleAction.SUBMIT: Action.EDIT_KB_ARTICLE,
    ArticleAction.APPROVE: Action.REVIEW_KB_ARTICLE,
    ArticleAction.REJECT: Action.REVIEW_KB_ARTICLE,
    ArticleAction.PUBLISH: Action.PUBLISH_KB_ARTICLE,
    ArticleAction.ARCHIVE: Action.PUBLISH_KB_ARTICLE,
    ArticleAction.CANCEL_SCHEDULE: Action.PUBLISH_KB_ARTICLE,
}


def act_on_article(
    deps: KnowledgeDeps,
    principal: Principal,
    article_id: str,
    action: ArticleAction,
    *,
    at: datetime | None = None,
    comment: str = "",
) -> Article:
    stored = _load(deps, article_id)
    before = stored.article
    require(principal, _ACTION_RIGHTS[action], _resource(before))
    now = _now(deps)
    if at is not None and at.tzinfo is None:
        raise InvalidInput("定时时间须带时区", code="naive_datetime")
    after, revision = domain.transition(
        before, action, principal.user_id, now, stored.last_seq, at=at, comment=comment
    )
    saved = _save_with_tokens(deps, after, revision, now, before)
    record_change(
        deps.audit_log,
        principal,
        f"kb_article.{action.value}",
        "kb_article",
        article_id,
        _summary(before),
        _summary(saved),
        {"comment": comment},
    )
    _after_state_change(deps, before, saved, principal)
    return saved


def _save_with_tokens(
    deps: KnowledgeDeps, article: Article, revision: Any, now: datetime, before: Article
) -> Article:
    tokens = deps.tokens(article) if article.state is ArticleState.PUBLISHED else None
    _file_due(deps, before, article, now)
    saved = deps.store.save_article(article, revision, now, tokens=tokens, previous=before)
    _cancel_due(deps, before, saved, now)
    deps.search.apply(saved, tokens)
    return saved


def _file_due(deps: KnowledgeDeps, before: Article, after: Article, now: datetime) -> None:
    """A new or moved publish/archive time goes on the due index before the article is saved:
    a crash in between leaves an item whose run finds nothing to do, never a lost schedule."""
    due = after.next_due
    if due is not None and due != before.next_due:
        _due(deps).file(DueItem(ARTICLE_DUE_KIND, after.article_id, due), now)


def _cancel_due(deps: KnowledgeDeps, before: Article, after: Article, now: datetime) -> None:
    if after.next_due is None and before.next_due is not None:
        _due(deps).cancel(ARTICLE_DUE_KIND, after.article_id, now)


def _due(deps: KnowledgeDeps) -> DueStore:
    if deps.due is None:
        raise RuntimeError("KnowledgeDeps needs the due store to schedule publish and archive")
    return deps.due


def _after_state_change(
    deps: KnowledgeDeps, before: Article, after: Article, actor: Principal
) -> None:
    reviewed = (ArticleState.APPROVED, ArticleState.PUBLISHED)
    if after.state in reviewed and before.state not in reviewed:
        for link in after.content.policy_links:
            mark_ready(deps, link.policy_id, link.version, after.article_id, actor)


def list_articles(
    deps: KnowledgeDeps,
    principal: Principal,
    state: ArticleState,
    limit: int,
    start_key: dict[str, Any] | None,
    *,
    needs_change: bool = False,
) -> Any:
    """Articles in a state, newest change first; department staff see their department's,
    `needs_change` keeps those flagged (a page may then hold fewer than `limit`)."""
    require(principal, Action.READ_KB_DRAFTS)
    page = deps.store.by_state(state, limit, start_key)
    visible = [
        a
        for a in page.items
        if (
            principal.role is not Role.DEPARTMENT_STAFF
            or a.content.department_id == principal.department_id
        )
        and (not needs_change or a.needs_change)
    ]
    return type(page)(visible, page.last_key)


def article_revisions(
    deps: KnowledgeDeps,
    principal: Principal,
    article_id: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Any:
    article = _load(deps, article_id).article
    require(principal, Action.READ_KB_DRAFTS, _resource(article))
    return deps.store.revisions(article_id, limit, start_key)


# ---- scheduled publish and archive --------------------------------------------------------


@dataclass
class JobReport:
    published: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    readiness_started: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "published": len(self.published),
            "archived": len(self.archived),
            "readiness_started": self.readiness_started,
        }


def run_due_jobs(deps: KnowledgeDeps) -> JobReport:
    """Make sure upcoming policy versions have a readiness clock. (Scheduled publishing and
    archiving run on the due sweep: `run_article_due`.)"""
    report = JobReport()
    report.readiness_started = sync_readiness(deps)
    return report


def run_article_due(c: Any, item: DueItem, now: datetime) -> str:
    """The due sweep's handler for a scheduled publish or archive of one article."""
    report = JobReport()
    _run_article(KnowledgeDeps.from_container(c), item.subject_id, now, report)
    if report.published:
        return "published"
    return "archived" if report.archived else "nothing_due"


def _run_article(deps: KnowledgeDeps, article_id: str, now: datetime, report: JobReport) -> None:
    def attempt() -> tuple[Article, domain.Revision, Article] | None:
        stored = deps.store.get_article(article_id)
        if stored is None:
            return None
        before = stored.article
        changed = domain.run_schedule(before, now, stored.last_seq)
        if changed is None:
            return None
        after, revision = changed
        return before, revision, _save_with_tokens(deps, after, revision, now, before)

    done = retry_on_conflict(attempt)
    if done is None:
        return
    before, revision, saved = done
    (report.published if saved.state is ArticleState.PUBLISHED else report.archived).append(
        article_id
    )
    record_change(
        deps.audit_log,
        SYSTEM,
        f"kb_article.{revision.action}",
        "kb_article",
        article_id,
        _summary(before),
        _summary(saved),
    )


# ---- "needs change" -----------------------------------------------------------------------


def flag_linked_articles(
    deps: KnowledgeDeps, kind: str, key: str, version: int, label: str, *, newer: bool
) -> list[str]:
    """An item or policy version changed: flag the articles that cite it and tell their
    department. `newer`: a new version replaced older ones (flag those citing an older version);
    otherwise this version itself changed (flag those citing it). Idempotent per article and
    reason."""
    reason = f"{kind}:{key}:v{version}"
    flagged = []
    for article_id, link in deps.store.linked(kind, key):
        raw = [link.get("version")] if kind == "item" else list(link.get("versions") or [])
        cited = [int(v) for v in raw if v is not None]
        affected = any(v < version for v in cited) if newer else version in cited
        if (cited or not newer) and not affected:
            continue
        if _flag(deps, article_id, reason, label):
            flagged.append(article_id)
    return flagged


def _flag(deps: KnowledgeDeps, article_id: str, reason: str, label: str) -> bool:
    def attempt() -> tuple[Article, Article] | None:
        stored = deps.store.get_article(article_id)
        if stored is None:
            return None
        now = _now(deps)
        changed = domain.flag_needs_change(stored.article, reason, now, stored.last_seq)
        if changed is None:
            return None
        after, revision = changed
        deps.store.save_article(after, revision, now, tokens=stored.tokens, previous=after)
        return stored.article, after

    done = retry_on_conflict(attempt)
    if done is None:
        return False
    before, after = done
    record_change(
        deps.audit_log,
        SYSTEM,
        "kb_article.needs_change",
        "kb_article",
        article_id,
        _summary(before),
        _summary(after),
        {"reason": reason},
    )
    notify(
        deps.notifier,
        f"kb-article:{article_id}:needs_change:{reason}",
        RecipientKind.DEPARTMENT,
        after.content.department_id,
        "knowledge.needs_change",
        "知识库条目需要更新",
        f"{label}已变更，知识库条目“{after.content.question}”引用了它，请核对并修改答复。",
        {"article_id": article_id, "reason": reason},
    )
    return True


def on_item_version(deps: KnowledgeDeps, code: str, version: int) -> list[str]:
    """A new version of a service guide was published."""
    item = deps.items(code)
    name = item.name if item else code
    label = f"办事指南“{name}”（第{version}版）"
    return flag_linked_articles(deps, "item", code, version, label, newer=True)


def on_policy_version(deps: KnowledgeDeps, info: PolicyInfo, change: str | None) -> list[str]:
    """A policy version was written. "published": articles citing older versions need a change
    and a readiness clock starts; "modified" or "retired": articles citing this version need a
    change (a retired version's readiness is withdrawn)."""
    label = f"政策“{info.title}”（第{info.version}版）"
    flagged: list[str] = []
    if change is not None:
        newer = change == "published"
        flagged = flag_linked_articles(
            deps, "policy", info.policy_id, info.version, label, newer=newer
        )
    if info.state == "published" and info.effective_from is not None:
        ensure_readiness(deps, info)
    elif info.state == "retired":
        withdraw_readiness(deps, info.policy_id, info.version)
    return flagged


# ---- search -------------------------------------------------------------------------------


def search(deps: KnowledgeDeps, query: str, limit: int = 10) -> list[dict[str, Any]]:
    """Published articles ranked for a question in people's own words, each with where to go
    next: the service guide of a linked item, the linked policy and the policy checkup."""
    query = query.strip()
    if not 1 <= len(query) <= 100:
        raise InvalidInput("搜索内容应为1到100个字", code="invalid_query")
    results = []
    for hit in deps.search.search(query, limit):
        links: list[dict[str, Any]] = [
            {"kind": "item", "code": c, "href": f"/items/{c}"} for c in hit.item_codes
        ]
        for policy_id, version in hit.policy_links:
            links.append(
                {
                    "kind": "policy",
                    "code": policy_id,
                    "version": version,
                    "href": f"/policies/{policy_id}",
                }
            )
        if hit.policy_links:
            links.append({"kind": "policy_checkup", "href": "/me/policy-checkup"})
        results.append(
            {
                "article_id": hit.article_id,
                "question": hit.question,
                "snippet": hit.snippet,
                "score": hit.score,
                "tags": list(hit.tags),
                "links": links,
            }
        )
    return results
