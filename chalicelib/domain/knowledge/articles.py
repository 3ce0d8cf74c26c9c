"""Knowledge base: articles (question and answer) with a review workflow, scheduled publishing
and archiving, revisions, links to service items and policy versions; unanswered questions;
readiness of answers before a policy version takes effect.

Pure: every instant is passed in; the working-day calendar is passed in where dates are counted.

Article states: draft → in_review → approved → published → archived. A reviewer sends an article
back (in_review → draft). Editing an approved or published article makes it a draft again: what
is published has always been reviewed. Publishing and archiving may be scheduled (`publish_at`,
`archive_at`); an expiry date schedules the archive for the start of the next day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.knowledge.common import (
    day_or_none,
    iso_or_none,
    moment_or_none,
)

_TAG = re.compile(r"^[\w\u4e00-\u9fff\-]{1,20}$")
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class ArticleState(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PUBLISHED = "published"
    ARCHIVED = "archived"


class ArticleAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    PUBLISH = "publish"  # now, or at `at` (scheduled)
    ARCHIVE = "archive"  # now, or at `at` (scheduled)
    CANCEL_SCHEDULE = "cancel_schedule"


# (state, action) → state after; scheduled publish/archive keep the state until the time comes.
TRANSITIONS: dict[tuple[ArticleState, ArticleAction], ArticleState] = {
    (ArticleState.DRAFT, ArticleAction.SUBMIT): ArticleState.IN_REVIEW,
    (ArticleState.IN_REVIEW, ArticleAction.APPROVE): ArticleState.APPROVED,
    (ArticleState.IN_REVIEW, ArticleAction.REJECT): ArticleState.DRAFT,
    (ArticleState.APPROVED, ArticleAction.PUBLISH): ArticleState.PUBLISHED,
    (ArticleState.APPROVED, ArticleAction.ARCHIVE): ArticleState.ARCHIVED,
    (ArticleState.PUBLISHED, ArticleAction.ARCHIVE): ArticleState.ARCHIVED,
    (ArticleState.DRAFT, ArticleAction.ARCHIVE): ArticleState.ARCHIVED,
    (ArticleState.APPROVED, ArticleAction.CANCEL_SCHEDULE): ArticleState.APPROVED,
    (ArticleState.PUBLISHED, ArticleAction.CANCEL_SCHEDULE): ArticleState.PUBLISHED,
}

STATE_LABELS = {
    ArticleState.DRAFT: "草稿",
    ArticleState.IN_REVIEW: "待审核",
    ArticleState.APPROVED: "已审核",
    ArticleState.PUBLISHED: "已发布",
    ArticleState.ARCHIVED: "已下线",
}

# Fields of an article a revision records changes of.
CONTENT_FIELDS = (
    "question",
    "answer",
    "tags",
    "item_links",
    "policy_links",
    "department_id",
    "effective_from",
    "expires_on",
)


@dataclass(frozen=True)
class ItemLink:
    code: str
    version: int | None = None  # the guide version the answer was written against


@dataclass(frozen=True)
class PolicyLink:
    policy_id: str
    version: int


@dataclass(frozen=True)
class ArticleContent:
    question: str
    answer: str
    department_id: str
    tags: tuple[str, ...] = ()
    item_links: tuple[ItemLink, ...] = ()
    policy_links: tuple[PolicyLink, ...] = ()
    effective_from: date | None = None
    expires_on: date | None = None


@dataclass(frozen=True)
class Article:
    article_id: str
    content: ArticleContent
    state: ArticleState
    revision: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    submitted_by: str | None = None  # who sent the current revision to review
    approved_by: str | None = None
    published_at: datetime | None = None
    archived_at: datetime | None = None
    publish_at: datetime | None = None  # scheduled publish (state approved)
    archive_at: datetime | None = None  # scheduled archive (state published or approved)
    needs_change: tuple[str, ...] = ()  # reasons, e.g. "policy:P-1:v3" (newest last)
    source_question_id: str | None = None
    version: int | None = None  # optimistic lock, kept by the repository

    @property
    def is_public(self) -> bool:
        return self.state is ArticleState.PUBLISHED

    @property
    def next_due(self) -> datetime | None:
        """When the job runner must look at this article next (scheduled publish or archive)."""
        moments = []
        if self.publish_at and self.state is ArticleState.APPROVED:
            moments.append(self.publish_at)
        if self.archive_at and self.state in (ArticleState.APPROVED, ArticleState.PUBLISHED):
            moments.append(self.archive_at)
        return min(moments) if moments else None


@dataclass(frozen=True)
class Revision:
    """Who changed what: one per content change or state change of an article."""

    article_id: str
    revision: int
    seq: int  # 1-based order of revision records of the article
    at: datetime
    by: str
    action: str  # "created", "edited", "submit", "approve", ..., "needs_change"
    state: ArticleState
    changes: dict[str, Any] = field(default_factory=dict)  # field → [before, after]
    comment: str = ""


# ---- validation -----------------------------------------------------------------------------


def validate_content(content: ArticleContent) -> ArticleContent:
    problems: list[dict[str, str]] = []
    if not 4 <= len(content.question.strip()) <= 200:
        problems.append({"field": "question", "message": "问题应为4到200个字"})
    if not 10 <= len(content.answer.strip()) <= 5000:
        problems.append({"field": "answer", "message": "答复应为10到5000个字"})
    if len(content.tags) > 10 or any(not _TAG.match(t) for t in content.tags):
        problems.append({"field": "tags", "message": "标签最多10个，每个不超过20个字"})
    if any(not _CODE.match(link.code) for link in content.item_links):
        problems.append({"field": "item_links", "message": "事项编码格式不正确"})
    if any(not _CODE.match(p.policy_id) or p.version < 1 for p in content.policy_links):
        problems.append({"field": "policy_links", "message": "政策编号或版本不正确"})
    if (
        content.effective_from
        and content.expires_on
        and content.expires_on < content.effective_from
    ):
        problems.append({"field": "expires_on", "message": "失效日期不能早于生效日期"})
    if problems:
        raise InvalidInput(
            "知识条目内容有误，请检查标注的字段", code="invalid_article", fields=problems
        )
    return replace(
        content,
        question=content.question.strip(),
        answer=content.answer.strip(),
        tags=tuple(dict.fromkeys(t.strip() for t in content.tags)),
        item_links=tuple(dict.fromkeys(content.item_links)),
        policy_links=tuple(dict.fromkeys(content.policy_links)),
    )


def diff(before: ArticleContent | None, after: ArticleContent) -> dict[str, Any]:
    """Changed fields, each as [before, after] in JSON-friendly form."""
    old = content_to_dict(before) if before else {}
    new = content_to_dict(after)
    return {k: [old.get(k), new[k]] for k in CONTENT_FIELDS if old.get(k) != new[k]}


# ---- lifecycle ------------------------------------------------------------------------------


def new_article(
    article_id: str,
    content: ArticleContent,
    by: str,
    now: datetime,
    source_question_id: str | None = None,
) -> tuple[Article, Revision]:
    content = validate_content(content)
    article = Article(
        article_id=article_id,
        content=content,
        state=ArticleState.DRAFT,
        revision=1,
        created_by=by,
        created_at=now,
        updated_by=by,
        updated_at=now,
        source_question_id=source_question_id,
    )
    return article, _revision(article, 1, now, by, "created", diff(None, content))


def edit(
    article: Article, content: ArticleContent, by: str, now: datetime, last_seq: int
) -> tuple[Article, Revision]:
    """A new revision of the text. Anything but an archived article may be edited; a reviewed
    or published one becomes a draft again (and leaves search) until it is reviewed."""
    if article.state is ArticleState.ARCHIVED:
        raise RuleViolation("已下线的条目不能修改", code="article_archived")
    content = validate_content(content)
    changes = diff(article.content, content)
    if not changes:
        raise InvalidInput("内容没有变化", code="nothing_changed")
    edited = replace(
        article,
        content=content,
        state=ArticleState.DRAFT,
        revision=article.revision + 1,
        updated_by=by,
        updated_at=now,
        submitted_by=None,
        approved_by=None,
        publish_at=None,
        archive_at=None,
        needs_change=(),
    )
    return edited, _revision(edited, last_seq + 1, now, by, "edited", changes)


def transition(
    article: Article,
    action: ArticleAction,
    by: str,
    now: datetime,
    last_seq: int,
    *,
    at: datetime | None = None,
    comment: str = "",
) -> tuple[Article, Revision]:
    """Apply a workflow action. `at` in the future schedules a publish or archive."""
    target = TRANSITIONS.get((article.state, action))
    if target is None:
        raise RuleViolation(
            f"“{STATE_LABELS[article.state]}”状态的条目不能{_ACTION_LABELS[action]}",
            code="invalid_transition",
        )
    changed = _apply(article, action, target, by, now, at, comment)
    details: dict[str, Any] = {}
    if at is not None and at > now:
        details["scheduled_at"] = [None, at.isoformat()]
    return changed, _revision(changed, last_seq + 1, now, by, action.value, details, comment)


_ACTION_LABELS = {
    ArticleAction.SUBMIT: "提交审核",
    ArticleAction.APPROVE: "审核通过",
    ArticleAction.REJECT: "退回",
    ArticleAction.PUBLISH: "发布",
    ArticleAction.ARCHIVE: "下线",
    ArticleAction.CANCEL_SCHEDULE: "取消定时",
}


def _apply(
    article: Article,
    action: ArticleAction,
    target: ArticleState,
    by: str,
    now: datetime,
    at: datetime | None,
    comment: str,
) -> Article:
    base = replace(article, updated_by=by, updated_at=now)
    scheduled = at is not None and at > now
    if action is ArticleAction.SUBMIT:
        return replace(base, state=target, submitted_by=by)
    if action is ArticleAction.APPROVE:
        if by == article.submitted_by:
            raise RuleViolation("提交人不能审核自己提交的条目", code="four_eyes")
        return replace(base, state=target, approved_by=by)
    if action is ArticleAction.REJECT:
        if not comment.strip():
            raise InvalidInput("退回须说明理由", code="reason_required")
        return replace(base, state=target, submitted_by=None)
    if action is ArticleAction.PUBLISH:
        if scheduled:
            return replace(base, publish_at=at)
        return publish_now(base, now)
    if action is ArticleAction.ARCHIVE:
        if scheduled:
            if article.state is ArticleState.DRAFT:
                raise RuleViolation("草稿不能定时下线", code="invalid_transition")
            return replace(base, archive_at=at)
        return archive_now(base, now)
    return replace(base, publish_at=None, archive_at=None)


def publish_now(article: Article, now: datetime) -> Article:
    archive_at = article.archive_at or expiry_moment(article.content.expires_on)
    return replace(
        article,
        state=ArticleState.PUBLISHED,
        published_at=now,
        publish_at=None,
        archive_at=archive_at,
    )


def archive_now(article: Article, now: datetime) -> Article:
    return replace(
        article, state=ArticleState.ARCHIVED, archived_at=now, publish_at=None, archive_at=None
    )


def expiry_moment(expires_on: date | None) -> datetime | None:
    """An article expiring on a day is taken off at the start of the next day."""
    if expires_on is None:
        return None
    return datetime.combine(expires_on + timedelta(days=1), time(0, 0), tzinfo=CHINA_TZ)


def run_schedule(article: Article, now: datetime, last_seq: int) -> tuple[Article, Revision] | None:
    """What the job runner does to an article whose scheduled time has come (None: nothing)."""
    if (
        article.archive_at
        and article.archive_at <= now
        and article.state in (ArticleState.APPROVED, ArticleState.PUBLISHED)
    ):
        changed = archive_now(replace(article, updated_by="system", updated_at=now), now)
        return changed, _revision(changed, last_seq + 1, now, "system", "scheduled_archive", {})
    if article.publish_at and article.publish_at <= now and article.state is ArticleState.APPROVED:
        changed = publish_now(replace(article, updated_by="system", updated_at=now), now)
        return changed, _revision(changed, last_seq + 1, now, "system", "scheduled_publish", {})
    return None


def flag_needs_change(
    article: Article, reason: str, now: datetime, last_seq: int
) -> tuple[Article, Revision] | None:
    """Raise "needs change" (idempotent per reason); archived articles are left alone."""
    if article.state is ArticleState.ARCHIVED or reason in article.needs_change:
        return None
    flagged = replace(article, needs_change=(*article.needs_change, reason))
    return flagged, _revision(
        flagged, last_seq + 1, now, "system", "needs_change", {"needs_change": [None, reason]}
    )


def _revision(
    article: Article,
    seq: int,
    now: datetime,
    by: str,
    action: str,
    changes: dict[str, Any],
    comment: str = "",
) -> Revision:
    return Revision(
        article_id=article.article_id,
        revision=article.revision,
        seq=seq,
        at=now,
        by=by,
        action=action,
        state=article.state,
        changes=changes,
        comment=comment,
    )


# ---- mapping (explicit, JSON-friendly) ------------------------------------------------------


def content_to_dict(content: ArticleContent) -> dict[str, Any]:
    return {
        "question": content.question,
        "answer": content.answer,
        "department_id": content.department_id,
        "tags": list(content.tags),
        "item_links": [{"code": i.code, "version": i.version} for i in content.item_links],
        "policy_links": [
            {"policy_id": p.policy_id, "version": p.version} for p in content.policy_links
        ],
        "effective_from": iso_or_none(content.effective_from),
        "expires_on": iso_or_none(content.expires_on),
    }


def content_from_dict(d: dict[str, Any]) -> ArticleContent:
    return ArticleContent(
        question=d["question"],
        answer=d["answer"],
        department_id=d["department_id"],
        tags=tuple(d.get("tags") or ()),
        item_links=tuple(
            ItemLink(i["code"], int(i["version"]) if i.get("version") is not None else None)
            for i in d.get("item_links") or ()
        ),
        policy_links=tuple(
            PolicyLink(p["policy_id"], int(p["version"])) for p in d.get("policy_links") or ()
        ),
        effective_from=day_or_none(d.get("effective_from")),
        expires_on=day_or_none(d.get("expires_on")),
    )


def article_to_dict(a: Article) -> dict[str, Any]:
    return {
        "article_id": a.article_id,
        "content": content_to_dict(a.content),
        "state": a.state.value,
        "revision": a.revision,
        "created_by": a.created_by,
        "created_at": iso_or_none(a.created_at),
        "updated_by": a.updated_by,
        "updated_at": iso_or_none(a.updated_at),
        "submitted_by": a.submitted_by,
        "approved_by": a.approved_by,
        "published_at": iso_or_none(a.published_at),
        "archived_at": iso_or_none(a.archived_at),
        "publish_at": iso_or_none(a.publish_at),
        "archive_at": iso_or_none(a.archive_at),
        "needs_change": list(a.needs_change),
        "source_question_id": a.source_question_id,
    }


def article_from_dict(d: dict[str, Any], version: int | None = None) -> Article:
    return Article(
        article_id=d["article_id"],
        content=content_from_dict(d["content"]),
        state=ArticleState(d["state"]),
        revision=int(d["revision"]),
        created_by=d["created_by"],
        created_at=moment_or_none(d["created_at"]),  # type: ignore[arg-type]
        updated_by=d["updated_by"],
        updated_at=moment_or_none(d["updated_at"]),  # type: ignore[arg-type]
        submitted_by=d.get("submitted_by"),
        approved_by=d.get("approved_by"),
        published_at=moment_or_none(d.get("published_at")),
        archived_at=moment_or_none(d.get("archived_at")),
        publish_at=moment_or_none(d.get("publish_at")),
        archive_at=moment_or_none(d.get("archive_at")),
        needs_change=tuple(d.get("needs_change") or ()),
        source_question_id=d.get("source_question_id"),
        version=version,
    )


def revision_to_dict(r: Revision) -> dict[str, Any]:
    return {
        "article_id": r.article_id,
        "revision": r.revision,
        "seq": r.seq,
        "at": iso_or_none(r.at),
        "by": r.by,
        "action": r.action,
        "state": r.state.value,
        "changes": r.changes,
        "comment": r.comment,
    }


def revision_from_dict(d: dict[str, Any]) -> Revision:
    return Revision(
        article_id=d["article_id"],
        revision=int(d["revision"]),
        seq=int(d["seq"]),
        at=moment_or_none(d["at"]),  # type: ignore[arg-type]
        by=d["by"],
        action=d["action"],
        state=ArticleState(d["state"]),
        changes=dict(d.get("changes") or {}),
        comment=d.get("comment") or "",
    )


# ---- search vocabulary (data) ---------------------------------------------------------------

# Synonym groups: the first word is the canonical form; documents and queries are both mapped
# to it, so "医保" finds an answer that says "医疗保险" and "医疗保险" one that says "医保".
# People's words (生孩子, 开饭店, 养老金) sit in the group of the official word (出生, 餐饮, 退休).
# A word belongs to one group only (tests check it).
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("医保", "医疗保险", "医保卡", "社保卡医保"),
    ("社保", "社会保险", "五险", "社保费", "社会保险费"),
    ("营业执照", "执照", "营业证", "工商执照", "电子营业执照"),
    ("设立登记", "注册公司", "开公司", "公司注册", "开办企业", "企业开办", "办执照", "办营业执照"),
    ("个体工商户", "个体户", "个体经营", "个体老板"),
    ("异地就医", "外地看病", "外地就医", "异地看病", "跨省就医", "跨省看病"),
    ("备案", "登记备案", "报备"),
    ("新生儿", "宝宝", "婴儿", "刚出生", "小孩出生", "孩子出生", "小宝宝"),
    ("出生", "生孩子", "生小孩", "生宝宝", "生娃", "生完孩子", "生二胎", "生育后"),
    ("出生医学证明", "出生证", "出生证明"),
    ("户口", "户籍", "落户", "报户口", "上户口"),
    ("补贴", "补助", "津贴", "资助", "奖励", "奖金", "补助金", "奖补", "扶持资金"),
    ("灵活就业", "打零工", "自由职业", "自由职业者", "零工", "临时工", "打短工"),
    (
        "餐饮",
        "饭店",
        "餐馆",
        "饭馆",
        "餐厅",
        "小吃店",
        "快餐店",
        "饮品店",
        "奶茶店",
        "开饭店",
        "开餐馆",
        "开餐厅",
        "开店卖吃的",
        "卖吃的",
        "做餐饮",
        "堂食",
    ),
    (
        "食品经营许可证",
        "食品许可证",
        "食品经营许可",
        "食品证",
        "餐饮许可证",
        "餐饮证",
        "餐饮服务许可证",
    ),
    ("预包装食品", "包装食品", "定型包装食品"),
    ("申请", "申领", "办理", "申报"),
    ("材料", "资料", "证件", "文件"),
    ("地址", "场所", "地点", "门店地址"),
    ("变更", "更改", "修改", "换", "改", "搬家", "搬迁", "迁址"),
    ("多久", "多长时间", "几天", "时限", "期限"),
    ("费用", "收费", "多少钱", "要钱", "花钱"),
    ("网上", "线上", "手机上", "随申办", "一网通办"),
    ("企业", "公司", "单位", "用人单位", "工厂"),
    ("高新技术企业", "高企", "高新企业"),
    ("退休", "退休人员", "退休职工", "养老金", "退休金", "退休工资", "领养老金"),
    ("失业", "下岗", "没工作", "失业金"),
    ("参保", "交社保", "缴社保", "买社保", "上社保", "办社保", "参保登记", "社会保险登记"),
    ("缴费记录", "社保记录", "缴费明细", "参保证明", "社保证明", "参保记录"),
    ("预约", "挂号", "排号", "约号"),
    ("帮办", "代办", "帮忙办"),
)

# Words that carry no topic: dropped from documents and queries.
_STOPWORD_TEXT = (
    "的 了 吗 呢 吧 啊 呀 么 嘛 是 在 和 与 及 或 我 你 他 她 它 我们 你们 他们 要 想 请问 "
    "请 问 一下 怎么 怎么样 怎样 如何 哪里 哪儿 哪些 什么 可以 能 能否 能不能 会 需要 "
    "应该 该 有 没有 这个 那个 这 那 一个 还 也 都 就 到 去 给 让 对 为 被 把 从 "
    "如果 因为 所以 但是 而且 已经 现在 还是 自己 之后 以后 之前 以前 时候 我家 家里 "
    "的话 一些 得 地 着 过 后 后要 啥 咋 咋办 弄 搞 ~ … — /"
)
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split(" "))

# Words that say what kind of thing is asked (materials, time, cost, "a certificate") but not
# about which matter: an article that matches a question only on these is not an answer to it,
# so search answers nothing (and offers to ask) rather than an unrelated article. Canonical
# forms (申请 stands for 办理, 材料 for 资料...).
_GENERIC_TEXT = (
    "办 办好 办下来 能办 怎么办 申请 材料 手续 流程 步骤 条件 要求 东西 问题 事 事情 事项 "
    "证 证明 多久 时间 费用 网上 窗口 部门 政府 服务 信息 查 查询 准备 带 交 拿 领 用 做 "
    "看 找 开 新 人 个人 上海 上海市 青浦 青浦区 区 市 企业 地址 变更 登记"
)
GENERIC_WORDS: frozenset[str] = frozenset(_GENERIC_TEXT.split(" "))


def canonical_words() -> dict[str, str]:
    """Word → canonical synonym."""
    mapping: dict[str, str] = {}
    for group in SYNONYM_GROUPS:
        for word in group:
            mapping[word] = group[0]
    return mapping
