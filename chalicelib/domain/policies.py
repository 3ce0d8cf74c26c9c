"""Policy benefits: policy versions (rules as data), grants (免申即享) and their transitions.

A policy has versions; each version carries its effective period, legal reference, benefit,
mode (直接兑现 / 确认兑现 / 快申), tags and declarative conditions (validated by
`domain/policy_rules.py`). A grant is one benefit for one subject under one policy version.
Pure Python: callers pass the time in.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from chalicelib.domain.errors import InvalidInput, RuleViolation


class Mode(StrEnum):
    DIRECT = "direct"  # 直接兑现: paid without confirmation
    CONFIRM = "confirm"  # 确认兑现: the subject confirms or declines first
    APPLY = "apply"  # 快申: an application of a service item is still needed


MODE_LABELS = {Mode.DIRECT: "直接兑现", Mode.CONFIRM: "确认兑现", Mode.APPLY: "快申"}


class VersionState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class GrantState(StrEnum):
    PENDING_CONFIRMATION = "pending_confirmation"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    EXPIRED = "expired"
    PAYING = "paying"
    PAID = "paid"
    # The payment could not be made for a data reason: it waits for a person, visibly.
    NEEDS_MANUAL_REVIEW = "needs_manual_review"


GRANT_STATE_LABELS = {
    GrantState.PENDING_CONFIRMATION: "待确认",
    GrantState.CONFIRMED: "已确认",
    GrantState.DECLINED: "已放弃",
    GrantState.EXPIRED: "已过期",
    GrantState.PAYING: "拨付中",
    GrantState.PAID: "已到账",
    GrantState.NEEDS_MANUAL_REVIEW: "需人工核查",
}

SUBJECT_KINDS = ("enterprise", "person")
# A subject granted a benefit is barred from the same benefit for this long (DOMAIN.md).
DUPLICATE_BAR_YEARS = 5
CONFIRM_WORKING_DAYS = 10


@dataclass(frozen=True)
class PolicyVersion:
    policy_id: str
    version: int
    title: str
    department_id: str
    effective_from: date
    effective_to: date | None
    legal_ref: str
    benefit: str  # what the subject receives, in Chinese (e.g. "一次性奖励25万元")
    amount: int | None  # 元; None for a non-monetary benefit
    benefit_key: str  # versions with the same key grant "the same benefit"
    mode: Mode
    conditions: dict[str, Any]  # data; validated by policy_rules.parse_conditions
    subject_kind: str = "enterprise"
    service_item_code: str | None = None  # 快申: the item whose application is pre-filled
    tags: tuple[str, ...] = ()
    summary: str = ""
    state: VersionState = VersionState.DRAFT
    created_by: str = ""
    created_at: str = ""
    published_by: str | None = None
    published_at: str | None = None
    retired_at: str | None = None

    @property
    def key(self) -> str:
        return f"{self.policy_id}#v{self.version}"

    @property
    def mode_label(self) -> str:
        return MODE_LABELS[self.mode]

    def is_effective_on(self, day: date) -> bool:
        if self.state is not VersionState.PUBLISHED:
            return False
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def overlaps(self, start: date, end: date) -> bool:
        return self.effective_from <= end and (
            self.effective_to is None or start <= self.effective_to
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["effective_from"] = self.effective_from.isoformat()
        d["effective_to"] = self.effective_to.isoformat() if self.effective_to else None
        d["mode"] = self.mode.value
        d["state"] = self.state.value
        d["tags"] = list(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyVersion:
        return cls(
            **{
                **d,
                "effective_from": date.fromisoformat(d["effective_from"]),
                "effective_to": date.fromisoformat(d["effective_to"])
                if d.get("effective_to")
                else None,
                "mode": Mode(d["mode"]),
                "state": VersionState(d.get("state", "draft")),
                "tags": tuple(d.get("tags", ())),
            }
        )


def validate_version(version: PolicyVersion) -> PolicyVersion:
    """Refuse a version that cannot be evaluated or paid; conditions are checked as data."""
    from chalicelib.domain import policy_rules

    problems: list[dict[str, str]] = []
    if version.effective_to is not None and version.effective_to < version.effective_from:
        problems.append({"field": "effective_to", "message": "失效日期不能早于生效日期"})
    if version.mode is Mode.APPLY and not version.service_item_code:
        problems.append({"field": "item_code", "message": "快申政策须指明办事事项"})
    if version.mode is not Mode.APPLY and version.amount is None and not version.benefit:
        problems.append({"field": "benefit", "message": "请填写兑现内容或金额"})
    if not (version.legal_ref or "").strip():
        # Rules carry a legal reference (DOMAIN.md): a benefit paid must say on what basis.
        problems.append({"field": "legal_ref", "message": "请填写政策依据（文号）"})
    if version.subject_kind not in SUBJECT_KINDS:
        problems.append({"field": "subject_kind", "message": "适用对象应为企业或个人"})
    if not version.benefit_key.strip():
        problems.append({"field": "benefit_key", "message": "请填写兑现项目标识"})
    try:
        policy_rules.parse_conditions(version.conditions)
    except Exception as error:  # the rules module raises its own error type
        problems.append({"field": "conditions", "message": _message(error)})
    if problems:
        raise InvalidInput("政策内容有误，请检查标注的字段", code="invalid_policy", fields=problems)
    return version


def _message(error: Exception) -> str:
    return str(getattr(error, "message", None) or error) or "适用条件格式不正确"


def require_version_state(version: PolicyVersion, allowed: set[VersionState], action: str) -> None:
    if version.state not in allowed:
        raise RuleViolation(
            f"政策版本当前状态为{_VERSION_LABELS[version.state]}，不能{action}",
            code="policy_state",
        )


_VERSION_LABELS = {
    VersionState.DRAFT: "草稿",
    VersionState.PUBLISHED: "已发布",
    VersionState.RETIRED: "已废止",
}


def publish(version: PolicyVersion, *, by: str, at: datetime) -> PolicyVersion:
    require_version_state(version, {VersionState.DRAFT}, "发布")
    validate_version(version)
    return replace(
        version, state=VersionState.PUBLISHED, published_by=by, published_at=at.isoformat()
    )


def retire(version: PolicyVersion, *, at: datetime) -> PolicyVersion:
    require_version_state(version, {VersionState.PUBLISHED}, "废止")
    return replace(version, state=VersionState.RETIRED, retired_at=at.isoformat())


# ---- grants ------------------------------------------------------------------------------


def grant_id_for(subject_id: str, policy_id: str, version: int) -> str:
    """One grant per subject and policy version: the id is derived from both."""
    raw = f"{subject_id}|{policy_id}|{version}".encode()
    return "g" + hashlib.sha256(raw).hexdigest()[:24]


@dataclass(frozen=True)
class Grant:
    grant_id: str
    subject_id: str
    subject_kind: str
    policy_id: str
    version: int
    title: str
    benefit: str
    benefit_key: str
    amount: int | None
    mode: Mode
    state: GrantState
    created_at: str
    trace: dict[str, Any] = field(default_factory=dict)  # policy_rules.Evaluation.trace()
    confirm_due: str | None = None  # 确认兑现: the deadline to confirm or decline
    clock_id: str | None = None
    payment_ref: str | None = None
    paid_at: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state_label(self) -> str:
        return GRANT_STATE_LABELS[self.state]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mode"] = self.mode.value
        d["state"] = self.state.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grant:
        return cls(**{**d, "mode": Mode(d["mode"]), "state": GrantState(d["state"])})


def new_grant(
    version: PolicyVersion,
    subject_id: str,
    trace: dict[str, Any],
    at: datetime,
    *,
    clock_id: str | None = None,
    confirm_due: str | None = None,
) -> Grant:
    if version.mode is Mode.APPLY:
        raise ValueError("快申 policies hand off to an application; they create no grant")
    state = GrantState.PAYING if version.mode is Mode.DIRECT else GrantState.PENDING_CONFIRMATION
    return Grant(
        grant_id=grant_id_for(subject_id, version.policy_id, version.version),
        subject_id=subject_id,
        subject_kind=version.subject_kind,
        policy_id=version.policy_id,
        version=version.version,
        title=version.title,
        benefit=version.benefit,
        benefit_key=version.benefit_key,
        amount=version.amount,
        mode=version.mode,
        state=state,
        created_at=at.isoformat(),
        trace=trace,
        clock_id=clock_id if version.mode is Mode.CONFIRM else None,
        confirm_due=confirm_due if version.mode is Mode.CONFIRM else None,
        events=[{"at": at.isoformat(), "event": "granted", "state": state.value}],
    )


# Who may move a grant from which state to which.
TRANSITIONS: dict[str, tuple[frozenset[GrantState], GrantState]] = {
    "confirm": (frozenset({GrantState.PENDING_CONFIRMATION}), GrantState.CONFIRMED),
    "decline": (frozenset({GrantState.PENDING_CONFIRMATION}), GrantState.DECLINED),
    "expire": (frozenset({GrantState.PENDING_CONFIRMATION}), GrantState.EXPIRED),
    "start_payment": (frozenset({GrantState.CONFIRMED}), GrantState.PAYING),
    "mark_paid": (frozenset({GrantState.PAYING}), GrantState.PAID),
    "hold": (frozenset({GrantState.PAYING}), GrantState.NEEDS_MANUAL_REVIEW),
}

_ACTION_LABELS = {
    "confirm": "确认兑现",
    "decline": "放弃兑现",
    "expire": "逾期处理",
    "start_payment": "发起拨付",
    "mark_paid": "确认到账",
    "hold": "转人工核查",
}


def transition(grant: Grant, action: str, at: datetime, **details: Any) -> Grant:
    allowed, target = TRANSITIONS[action]
    if grant.state not in allowed:
        raise RuleViolation(
            f"该兑现当前状态为{grant.state_label}，不能{_ACTION_LABELS[action]}",
            code="grant_state",
        )
    event = {"at": at.isoformat(), "event": action, "state": target.value, **details}
    return replace(grant, state=target, events=[*grant.events, event], **_fields(action, details))


def _fields(action: str, details: dict[str, Any]) -> dict[str, Any]:
    if action == "mark_paid":
        return {"payment_ref": details.get("payment_ref"), "paid_at": details.get("paid_at")}
    return {}


def is_barred(previous_grant_at: str | None, as_of: date) -> bool:
    """A subject granted the same benefit within the bar period may not be granted it again."""
    if previous_grant_at is None:
        return False
    granted = date.fromisoformat(previous_grant_at[:10])
    try:
        until = granted.replace(year=granted.year + DUPLICATE_BAR_YEARS)
    except ValueError:  # 29 February
        until = granted.replace(year=granted.year + DUPLICATE_BAR_YEARS, day=28)
    return as_of < until


def payable(grant: Grant) -> bool:
    return grant.state is GrantState.PAYING
