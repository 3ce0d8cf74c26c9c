"""Knowledge-base use cases: articles and their workflow, scheduled publish and archive, "needs
change" when a linked item or policy version changes, readiness before a policy version takes
effect, unanswered questions and search.

Clocks (the deadline engine):
- "question" / "answer": 5 working days from when a question is filed, department of its topic;
  stopped when it is answered (the answer becomes a draft article, the asker is notified).
- "kb_readiness" / "answer": due at the end of the last working day before a policy version takes
  effect; the default ladder warns the policy's department as the date approaches and escalates
  when it is missed; stopped when an article linked to that version is approved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain import knowledge as domain
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import ClockState, Outcome
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal, Role
from chalicelib.domain.knowledge import (
    Article,
    ArticleAction,
    ArticleContent,
    ArticleState,
    Channel,
    ItemLink,
    Question,
    QuestionState,
    Readiness,
    ReadinessState,
)
from chalicelib.domain.notifications import RecipientKind
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.conflicts import retry_on_conflict
from chalicelib.service_layer.notify import notify
from chalicelib.service_layer.ports.knowledge import PolicyCatalog as PolicyCatalog
from chalicelib.service_layer.ports.knowledge import PolicyInfo as PolicyInfo

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
        StoredArticle,
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


def ServicePolicies(container: Any) -> Any:
    """The policy capability's use cases as a `PolicyCatalog`: the container wires them in, so
    this capability does not import that one's. (Named as the class it replaces: tests swap it.)"""
    return container.policy_catalog


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

        catalog: Any = ServicePolicies(c)
        search = c.knowledge_search
        if search.vocabulary is None:
            search.vocabulary = lambda: vocabulary(c.application_store, catalog)
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
        names = [
            item.name for link in article.content.item_links if (item := self.items(link.code))
        ]
        if self.tokenize is None:
            raise RuntimeError("KnowledgeDeps needs a tokenizer (the container has the index's)")
        return self.tokenize(article, names)


def vocabulary(items: Any, catalog: Any) -> list[str]:
    """Service-item and policy names for the search dictionary (index Queries only)."""
    names, key = [], None
    while True:
        page = items.list_items(100, key)
        names += [item.name for item in page.items]
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


# ---- readiness ----------------------------------------------------------------------------


def _readiness_clock_key(info: PolicyInfo, target: date) -> str:
    return f"kb-readiness:{info.policy_id}:{info.version}:{target.isoformat()}"


def ensure_readiness(deps: KnowledgeDeps, info: PolicyInfo) -> Readiness | None:
    """A published version with an effective date has a readiness record and, until an article
    is approved for it, a running clock due on the working day before it takes effect."""
    if info.effective_from is None:
        return None
    now = _now(deps)
    calendar = deps.deadlines.calendar()
    target = domain.readiness_target(calendar, info.effective_from)
    existing = deps.store.get_readiness(info.policy_id, info.version)
    if existing is not None:
        current, version = existing
        if current.target_date == target and current.state is not ReadinessState.WITHDRAWN:
            return current
        _cancel_clock(deps, current.clock_id, "生效日期已调整")
    else:
        current, version = None, None
    if info.effective_from <= now.date():
        return current  # already in effect: nothing left to prepare for
    ready = _approved_article_for(deps, info.policy_id, info.version)
    record = Readiness(
        policy_id=info.policy_id,
        version=info.version,
        title=info.title,
        department_id=info.department_id,
        effective_from=info.effective_from,
        target_date=target,
    )
    if ready is not None:
        record = replace(record, state=ReadinessState.READY, article_id=ready, ready_at=now)
    else:
        record = replace(record, clock_id=_start_readiness_clock(deps, info, target).clock_id)
    try:
        deps.store.save_readiness(record, version)
    except Conflict:
        stored = deps.store.get_readiness(info.policy_id, info.version)
        if stored is None:
            raise
        return stored[0]
    record_change(
        deps.audit_log,
        SYSTEM,
        "kb_readiness.opened",
        READINESS_SUBJECT,
        f"{info.policy_id}:v{info.version}",
        None,
        domain.readiness_to_dict(record),
    )
    return record


def _start_readiness_clock(deps: KnowledgeDeps, info: PolicyInfo, target: date) -> Any:
    from chalicelib.service_layer import deadlines

    now = _now(deps)
    start, limit = domain.readiness_clock_plan(deps.deadlines.calendar(), now.date(), target)
    started_at = (
        now
        if start == now.date()
        else datetime.combine(start, datetime.min.time(), tzinfo=CHINA_TZ)
    )
    return deadlines.start_clock(
        deps.deadlines,
        subject_type=READINESS_SUBJECT,
        subject_id=f"{info.policy_id}:v{info.version}",
        kind=CLOCK_KIND,
        limit=limit,
        department_id=info.department_id,
        started_at=started_at,
        key=_readiness_clock_key(info, target),
        label=f"《{info.title}》第{info.version}版（{info.effective_from}生效）知识库答复",
    )


def _cancel_clock(deps: KnowledgeDeps, clock_id: str | None, reason: str) -> None:
    from chalicelib.service_layer import deadlines

    if not clock_id:
        return
    clock = deps.deadlines.clocks.get(clock_id)
    if clock is not None and clock.is_open:
        deadlines.stop_clock(deps.deadlines, clock_id, outcome=Outcome.CANCELLED, reason=reason)


def _approved_article_for(deps: KnowledgeDeps, policy_id: str, version: int) -> str | None:
    for article_id, link in deps.store.linked("policy", policy_id):
        if version not in (link.get("versions") or []):
            continue
        stored = deps.store.get_article(article_id)
        if stored and stored.article.state in (ArticleState.APPROVED, ArticleState.PUBLISHED):
            return article_id
    return None


def mark_ready(
    deps: KnowledgeDeps, policy_id: str, version: int, article_id: str, actor: Principal
) -> None:
    from chalicelib.service_layer import deadlines

    existing = deps.store.get_readiness(policy_id, version)
    if existing is None or existing[0].state is not ReadinessState.PENDING:
        return
    record, record_version = existing
    now = _now(deps)
    if record.clock_id:
        clock = deps.deadlines.clocks.get(record.clock_id)
        if clock is not None and clock.is_open:
            deadlines.stop_clock(deps.deadlines, record.clock_id, outcome=Outcome.MET, actor=actor)
    ready = replace(record, state=ReadinessState.READY, article_id=article_id, ready_at=now)
    deps.store.save_readiness(ready, record_version)
    record_change(
        deps.audit_log,
        actor,
        "kb_readiness.ready",
        READINESS_SUBJECT,
        f"{policy_id}:v{version}",
        {"state": record.state.value},
        {"state": ready.state.value, "article_id": article_id},
    )


def withdraw_readiness(deps: KnowledgeDeps, policy_id: str, version: int) -> None:
    existing = deps.store.get_readiness(policy_id, version)
    if existing is None or existing[0].state is ReadinessState.WITHDRAWN:
        return
    record, record_version = existing
    if record.state is ReadinessState.PENDING:
        _cancel_clock(deps, record.clock_id, "政策版本已废止")
    withdrawn = replace(record, state=ReadinessState.WITHDRAWN)
    deps.store.save_readiness(withdrawn, record_version)
    record_change(
        deps.audit_log,
        SYSTEM,
        "kb_readiness.withdrawn",
        READINESS_SUBJECT,
        f"{policy_id}:v{version}",
        {"state": record.state.value},
        {"state": withdrawn.state.value},
    )


def sync_readiness(deps: KnowledgeDeps) -> int:
    """Catch up on versions the stream consumer has not seen (e.g. loaded before it ran)."""
    catalog = deps.catalog()
    if not getattr(catalog, "available", False):
        return 0
    today = _now(deps).date()
    opened = 0
    for info in catalog.effective_between(today, today + timedelta(days=READINESS_HORIZON_DAYS)):
        if info.effective_from is None or info.effective_from <= today:
            continue
        fresh = deps.store.get_readiness(info.policy_id, info.version) is None
        if fresh and ensure_readiness(deps, info) is not None:
            opened += 1
    return opened


@dataclass(frozen=True)
class ReadinessView:
    readiness: Readiness
    due_at: datetime | None
    clock_state: str | None
    steps_done: tuple[str, ...]

    @property
    def status(self) -> str:
        """ready | pending | at_risk (warned) | missed | withdrawn."""
        r = self.readiness
        if r.state is not ReadinessState.PENDING:
            return r.state.value
        if self.clock_state == ClockState.BREACHED.value:
            return ReadinessState.MISSED.value
        if "warning" in self.steps_done:
            return "at_risk"
        return ReadinessState.PENDING.value


def list_readiness(
    deps: KnowledgeDeps,
    principal: Principal,
    first: date | None,
    limit: int,
    start_key: dict[str, Any] | None,
) -> tuple[list[ReadinessView], dict[str, Any] | None]:
    """Upcoming policy versions (effective from `first`, default today) and their state."""
    require(principal, Action.READ_KB_READINESS)
    first = first or _now(deps).date()
    page = deps.store.readiness_from(first, limit, start_key)
    views = []
    for record in page.items:
        if (
            principal.role is Role.DEPARTMENT_STAFF
            and record.department_id != principal.department_id
        ):
            continue
        clock = deps.deadlines.clocks.get(record.clock_id) if record.clock_id else None
        views.append(
            ReadinessView(
                record,
                clock.due_at if clock else None,
                clock.state.value if clock else None,
                tuple(sorted(clock.steps_done)) if clock else (),
            )
        )
    return views, page.last_key


# ---- unanswered questions -----------------------------------------------------------------


def ask_question(
    deps: KnowledgeDeps,
    principal: Principal,
    *,
    text: str,
    channel: Channel | None = None,
    asker_user_id: str | None = None,
    item_code: str | None = None,
    policy_id: str | None = None,
    tags: tuple[str, ...] = (),
    request_key: str | None = None,
) -> Question:
    """File a question nobody could answer: routed to the topic's department with a 5-working-day
    clock. Citizens ask for themselves (mini-program); window and hotline staff file on behalf of
    a person (their account if they have one, else staff call them back)."""
    require(principal, Action.ASK_KB_QUESTION)
    text = text.strip()
    if not 4 <= len(text) <= 500:
        raise InvalidInput("问题应为4到500个字", code="invalid_question")
    if principal.is_public:
        channel, asker_user_id = Channel.MINI_PROGRAM, principal.user_id
    elif channel is None or channel is Channel.MINI_PROGRAM:
        channel = Channel.WINDOW if principal.role is Role.WINDOW_STAFF else Channel.HOTLINE
    department, why = _route(deps, item_code, policy_id, tags, text)
    now = _now(deps)
    key = request_key or uuid.uuid4().hex
    question_id = uuid.uuid5(_ID_NAMESPACE, f"{principal.user_id}:{key}").hex
    question = Question(
        question_id=question_id,
        text=text,
        channel=channel,
        department_id=department,
        routed_by=why,
        filed_by=principal.user_id,
        created_at=now,
        asker_user_id=asker_user_id,
        item_code=item_code,
        policy_id=policy_id,
        tags=tags,
    )
    if not deps.store.create_question(question):
        found = deps.store.get_question(question_id)
        if found is None:
            raise Conflict("问题提交冲突，请重试", code="question_changed")
        return found[0]  # a retried request: the question it filed
    clock = _start_question_clock(deps, question)
    question = replace(question, clock_id=clock.clock_id)
    deps.store.save_question(question, 1)
    record_change(
        deps.audit_log,
        principal,
        "kb_question.filed",
        "kb_question",
        question_id,
        None,
        {"state": question.state.value, "department_id": department},
        {"routed_by": why, "channel": channel.value},
    )
    notify(
        deps.notifier,
        f"kb-question:{question_id}:routed:{department}",
        RecipientKind.DEPARTMENT,
        department,
        "knowledge.question",
        "新的知识库问题待解答",
        f"群众提问：“{text[:60]}”，请于 {clock.due_at.strftime('%Y-%m-%d')} 前答复。",
        {"question_id": question_id, "due_at": clock.due_at.isoformat() if clock.due_at else None},
    )
    return question


def _route(
    deps: KnowledgeDeps,
    item_code: str | None,
    policy_id: str | None,
    tags: tuple[str, ...],
    text: str,
) -> tuple[str, str]:
    item = None
    if item_code:
        found = deps.items(item_code)
        if found is None:
            raise InvalidInput(f"办事事项 {item_code} 不存在", code="item_not_found")
        item = (item_code, found.department_id)
    policy = None
    if policy_id and item is None:
        info = deps.catalog().latest(policy_id)
        if info is not None:
            policy = (policy_id, info.department_id)
    return domain.route_question(item=item, policy=policy, tags=tags, text=text)


def _start_question_clock(deps: KnowledgeDeps, question: Question) -> Any:
    from chalicelib.service_layer import deadlines

    return deadlines.start_clock(
        deps.deadlines,
        subject_type=QUESTION_SUBJECT,
        subject_id=question.question_id,
        kind=CLOCK_KIND,
        limit=domain.QUESTION_ANSWER_DAYS,
        department_id=question.department_id,
        key=f"kb-question:{question.question_id}:answer",
        label=question.text[:30],
    )


def _question_resource(question: Question) -> Resource:
    return Resource(owner_user_id=question.asker_user_id, department_id=question.department_id)


def read_question(deps: KnowledgeDeps, principal: Principal, question_id: str) -> Question:
    found = deps.store.get_question(question_id)
    if found is None:
        raise NotFound("问题不存在", code="question_not_found")
    question = found[0]
    if principal.user_id == question.filed_by:
        return question
    require(principal, Action.READ_KB_QUESTION, _question_resource(question))
    return question


def list_questions(
    deps: KnowledgeDeps,
    principal: Principal,
    department_id: str | None,
    state: QuestionState,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Any:
    """A department's queue (department staff: their own)."""
    require(principal, Action.LIST_KB_QUESTIONS)
    department = department_id or principal.department_id
    if department is None:
        raise InvalidInput("请指定部门", code="department_required")
    require(principal, Action.LIST_KB_QUESTIONS, Resource(department_id=department))
    return deps.store.questions_of_department(department, state, limit, start_key)


def my_questions(
    deps: KnowledgeDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Any:
    require(principal, Action.ASK_KB_QUESTION)
    return deps.store.questions_of_asker(principal.user_id, limit, start_key)


def answer_question(
    deps: KnowledgeDeps,
    principal: Principal,
    question_id: str,
    *,
    answer: str,
    question_text: str | None = None,
    tags: tuple[str, ...] = (),
    item_links: tuple[ItemLink, ...] = (),
    policy_links: tuple[domain.PolicyLink, ...] = (),
) -> tuple[Question, Article]:
    """The department answers: the answer becomes a draft article (reviewed before it is
    published), the clock stops, the asker is notified."""
    from chalicelib.service_layer import deadlines

    found = deps.store.get_question(question_id)
    if found is None:
        raise NotFound("问题不存在", code="question_not_found")
    question, version = found
    require(principal, Action.ANSWER_KB_QUESTION, _question_resource(question))
    if question.state is not QuestionState.OPEN:
        raise RuleViolation("该问题已答复", code="question_answered")
    if item_links == () and question.item_code:
        item_links = (ItemLink(question.item_code),)
    content = ArticleContent(
        question=question_text or question.text,
        answer=answer,
        department_id=question.department_id,
        tags=tags or question.tags,
        item_links=item_links,
        policy_links=policy_links,
    )
    article = create_article(
        deps,
        principal,
        content,
        source_question_id=question_id,
        article_id=uuid.uuid5(_ID_NAMESPACE, f"answer:{question_id}").hex,
    )
    now = _now(deps)
    answered = domain.answer_question(question, principal.user_id, now, article.article_id, answer)
    deps.store.save_question(answered, version)
    if question.clock_id:
        clock = deps.deadlines.clocks.get(question.clock_id)
        if clock is not None and clock.is_open:
            deadlines.stop_clock(deps.deadlines, question.clock_id, actor=principal)
    record_change(
        deps.audit_log,
        principal,
        "kb_question.answered",
        "kb_question",
        question_id,
        {"state": question.state.value},
        {"state": answered.state.value, "article_id": article.article_id},
    )
    _notify_asker(deps, answered)
    return answered, article


def _notify_asker(deps: KnowledgeDeps, question: Question) -> None:
    recipient = question.asker_user_id or question.filed_by
    answer = (question.answer or "")[:200]
    body = f"您的提问“{question.text[:40]}”已有答复：{answer}"
    if question.asker_user_id is None:
        body = f"您代为登记的提问“{question.text[:40]}”已有答复，请回复提问人：{answer}"
    notify(
        deps.notifier,
        f"kb-question:{question.question_id}:answered:{recipient}",
        RecipientKind.USER,
        recipient,
        "knowledge.answered",
        "您的提问已答复",
        body,
        {"question_id": question.question_id, "article_id": question.article_id},
    )


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
