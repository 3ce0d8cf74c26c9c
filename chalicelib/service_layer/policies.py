"""Policy benefits use cases: drafting and publishing policy versions, 政策体检, 免申即享 grants
(population match, change-driven match, confirm / decline / expire, queued payment) and the
daily push digest. Every use case takes its dependencies in `PolicyDeps`; time comes from
`deps.clock`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain import policies as domain
from chalicelib.domain import policy_rules as rules
from chalicelib.domain.applications import ELicence, Profile
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import RecipientKind
from chalicelib.domain.policies import Grant, GrantState, Mode, PolicyVersion, VersionState
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.conflicts import retry_on_conflict
from chalicelib.service_layer.notify import notify

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.deadlines import DeadlineDeps
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import Finance, TimeSource
    from chalicelib.service_layer.ports.applications import ApplicationStore
    from chalicelib.service_layer.ports.policies import PolicyStore


MATCH_QUEUE = "policy-match"
PAYMENT_QUEUE = "policy-payments"
MATCH_PAGE_SIZE = 200
MATCH_PAGES_PER_RUN = 10  # a segment's bound per invocation; the rest continues in a new message
SWEEP_BUDGET = 200
DIGEST_BUDGET = 500

# screen(condition, facts of many subjects, as_of) -> which subjects may be eligible.
Screen = Callable[[Any, Sequence[dict[str, Any]], date], Sequence[bool]]


@dataclass
class PolicyDeps:
    store: PolicyStore
    profiles: ApplicationStore  # profiles, e-licences
    notifier: Notifier
    audit_log: AuditLog
    clock: TimeSource
    deadlines: DeadlineDeps
    finance: Finance
    enqueue: Callable[[str, dict[str, Any]], None]

    @classmethod
    def from_container(cls, c: Any) -> PolicyDeps:
        from chalicelib.service_layer.deadlines import DeadlineDeps

        def enqueue(queue: str, message: dict[str, Any]) -> None:
            c.aws.client("sqs").send_message(
                QueueUrl=c.aws.queue_url(queue), MessageBody=json.dumps(message)
            )

        return cls(
            store=c.policy_store,
            profiles=c.application_store,
            notifier=c.notifier,
            audit_log=c.audit_log,
            clock=c.clock,
            deadlines=DeadlineDeps.from_container(c),
            finance=c.finance,
            enqueue=enqueue,
        )

    def today(self) -> date:
        return self.clock.now().astimezone(CHINA_TZ).date()


def _version_summary(v: PolicyVersion) -> dict[str, Any]:
    return {
        "policy_id": v.policy_id,
        "version": v.version,
        "state": v.state.value,
        "effective_from": v.effective_from.isoformat(),
        "effective_to": v.effective_to.isoformat() if v.effective_to else None,
    }


def _grant_summary(g: Grant) -> dict[str, Any]:
    return {"grant_id": g.grant_id, "state": g.state.value, "policy_id": g.policy_id}


def _record_version(
    deps: PolicyDeps,
    actor: Principal,
    action: str,
    before: PolicyVersion | None,
    after: PolicyVersion,
) -> None:
    summary = _version_summary(before) if before else None
    record_change(
        deps.audit_log, actor, action, "policy", after.policy_id, summary, _version_summary(after)
    )


def _record_grant(
    deps: PolicyDeps,
    actor: Principal,
    action: str,
    before: Grant | None,
    after: Grant,
    details: dict[str, Any] | None = None,
) -> None:
    summary = _grant_summary(before) if before else None
    record_change(
        deps.audit_log,
        actor,
        action,
        "grant",
        after.grant_id,
        summary,
        _grant_summary(after),
        details,
    )


# ---- policy versions ------------------------------------------------------------------------


def draft_policy(deps: PolicyDeps, principal: Principal, fields: dict[str, Any]) -> PolicyVersion:
    """A new policy (version 1, draft) by department staff of the policy's department."""
    require(principal, Action.DRAFT_POLICY, Resource(department_id=fields.get("department_id")))
    policy_id = fields.pop("policy_id", None) or f"pol-{uuid.uuid4().hex[:12]}"
    version = _build(policy_id, 1, fields, principal, deps.clock.now())
    if not deps.store.create_version(version):
        raise RuleViolation("该政策编号已存在", code="policy_exists")
    _record_version(deps, principal, "policy.drafted", None, version)
    return version


def new_version(
    deps: PolicyDeps, principal: Principal, policy_id: str, fields: dict[str, Any]
) -> PolicyVersion:
    """The next version of a policy, as a draft: the latest version's content, amended."""
    head = deps.store.head(policy_id)
    if head is None:
        raise NotFound("政策不存在", code="policy_not_found")
    latest = deps.store.get_version(policy_id, head["latest_version"])
    if latest is None:
        raise NotFound("政策不存在", code="policy_not_found")
    require(principal, Action.DRAFT_POLICY, Resource(department_id=latest.department_id))
    base = _editable(latest)
    base.update({k: v for k, v in fields.items() if v is not None})
    if base.get("department_id") != latest.department_id:
        require(principal, Action.DRAFT_POLICY, Resource(department_id=base["department_id"]))
    version = _build(policy_id, latest.version + 1, base, principal, deps.clock.now())
    if not deps.store.create_version(version):
        raise RuleViolation("版本号冲突，请重试", code="policy_version_conflict")
    _record_version(deps, principal, "policy.version_drafted", None, version)
    return version


def update_draft(
    deps: PolicyDeps, principal: Principal, policy_id: str, number: int, fields: dict[str, Any]
) -> PolicyVersion:
    current = _version(deps, policy_id, number)
    require(principal, Action.DRAFT_POLICY, Resource(department_id=current.department_id))
    domain.require_version_state(current, {VersionState.DRAFT}, "修改")
    base = _editable(current)
    base.update({k: v for k, v in fields.items() if v is not None})
    updated = _build(policy_id, number, base, principal, deps.clock.now())
    updated = replace(updated, created_by=current.created_by, created_at=current.created_at)
    deps.store.save_version(updated)
    _record_version(deps, principal, "policy.draft_updated", current, updated)
    return updated


def publish_version(
    deps: PolicyDeps, principal: Principal, policy_id: str, number: int
) -> PolicyVersion:
    """An approver publishes a draft; the population match starts (one message per segment).
    The version is stored with its match marked pending, cleared once every message is sent;
    a publication whose messages were lost is completed by the repair job."""
    from chalicelib.observability import logger

    published = _approve(
        deps,
        principal,
        policy_id,
        number,
        "policy.published",
        lambda v, now: domain.publish(v, by=principal.user_id, at=now),
        effects=True,
    )
    try:
        start_population_match(deps, published)
    except Exception:
        logger.exception(
            "population match hand-over failed; the repair job sends it again",
            extra={"policy_id": policy_id, "version": number},
        )
        return published
    deps.store.effects_done(policy_id, number)
    return published


def repair_effects(deps: PolicyDeps, before: datetime, budget: int) -> list[str]:
    """Publications whose match messages have been pending since before `before`: the
    segments that never started are handed over again (a segment is idempotent: grants are
    claimed once per subject and benefit), then the mark is cleared."""
    from chalicelib.observability import logger

    repaired = []
    for policy_id, number in deps.store.effects_pending(before, budget):
        try:
            version = deps.store.get_version(policy_id, number)
            if version is not None and version.state is VersionState.PUBLISHED:
                started = deps.store.started_shards(policy_id, number)
                for shard in range(match_shards()):
                    if shard not in started:
                        _enqueue_segment(deps, version, shard)
            deps.store.effects_done(policy_id, number)
            repaired.append(f"{policy_id}#v{number}")
        except Exception:
            logger.exception(
                "repairing a publication's match failed; tried again on the next run",
                extra={"policy_id": policy_id, "version": number},
            )
    return repaired


def retire_version(
    deps: PolicyDeps, principal: Principal, policy_id: str, number: int
) -> PolicyVersion:
    return _approve(
        deps,
        principal,
        policy_id,
        number,
        "policy.retired",
        lambda v, now: domain.retire(v, at=now),
    )


def _approve(
    deps: PolicyDeps,
    principal: Principal,
    policy_id: str,
    number: int,
    action: str,
    change: Callable[[PolicyVersion, datetime], PolicyVersion],
    *,
    effects: bool = False,
) -> PolicyVersion:
    """An approver's change of a version's state, saved and audited."""
    require(principal, Action.PUBLISH_POLICY)
    current = _version(deps, policy_id, number)
    now = deps.clock.now()
    changed = change(current, now)
    deps.store.save_version(changed, effects_since=now if effects else None)
    _record_version(deps, principal, action, current, changed)
    return changed


def get_version(policy_id: str, version: int, deps: PolicyDeps) -> PolicyVersion | None:
    """One version as stored (any state); None if there is none."""
    return deps.store.get_version(policy_id, version)


def versions_effective_between(start: date, end: date, deps: PolicyDeps) -> list[PolicyVersion]:
    """Published versions whose effective period overlaps [start, end] (index Query)."""
    return deps.store.effective_between(start, end)


def active_versions(deps: PolicyDeps, as_of: date) -> list[PolicyVersion]:
    return [v for v in deps.store.effective_between(as_of, as_of) if v.is_effective_on(as_of)]


def read_policy(deps: PolicyDeps, policy_id: str) -> tuple[dict[str, Any], list[PolicyVersion]]:
    """Public: the policy and its published versions (drafts and retired ones are not shown)."""
    head = deps.store.head(policy_id)
    if head is None or head.get("published_version") is None:
        raise NotFound("政策不存在或尚未发布", code="policy_not_found")
    versions = [v for v in deps.store.versions(policy_id) if v.state is VersionState.PUBLISHED]
    return head, versions


def read_version_for_staff(
    deps: PolicyDeps, principal: Principal, policy_id: str, number: int
) -> PolicyVersion:
    """A draft or retired version: for its department's drafters, and for those who may
    publish it (they must read what they publish)."""
    version = _version(deps, policy_id, number)
    if version.state is not VersionState.PUBLISHED and not can(
        principal, Action.PUBLISH_POLICY, Resource(department_id=version.department_id)
    ):
        require(principal, Action.DRAFT_POLICY, Resource(department_id=version.department_id))
    return version


def _version(deps: PolicyDeps, policy_id: str, number: int) -> PolicyVersion:
    version = deps.store.get_version(policy_id, number)
    if version is None:
        raise NotFound("政策版本不存在", code="policy_version_not_found")
    return version


_EDITABLE = (
    "title",
    "department_id",
    "effective_from",
    "effective_to",
    "legal_ref",
    "benefit",
    "amount",
    "benefit_key",
    "mode",
    "conditions",
    "subject_kind",
    "service_item_code",
    "tags",
    "summary",
)


def _editable(version: PolicyVersion) -> dict[str, Any]:
    data = version.to_dict()
    return {k: data[k] for k in _EDITABLE}


def _build(
    policy_id: str, number: int, fields: dict[str, Any], principal: Principal, now: datetime
) -> PolicyVersion:
    data = {k: fields.get(k) for k in _EDITABLE if k in fields}
    missing = [
        k
        for k in ("title", "department_id", "effective_from", "legal_ref", "mode", "conditions")
        if data.get(k) in (None, "")
    ]
    if missing:
        raise InvalidInput(
            "政策内容不完整",
            code="invalid_policy",
            fields=[{"field": k, "message": "必填项"} for k in missing],
        )
    data.setdefault("benefit", "")
    data.setdefault("amount", None)
    data["benefit_key"] = data.get("benefit_key") or policy_id
    try:
        version = PolicyVersion.from_dict(
            {
                **data,
                "policy_id": policy_id,
                "version": number,
                "effective_from": str(data["effective_from"]),
                "effective_to": str(data["effective_to"]) if data.get("effective_to") else None,
                "tags": tuple(data.get("tags") or ()),
                "subject_kind": data.get("subject_kind") or "enterprise",
                "summary": data.get("summary") or "",
                "state": VersionState.DRAFT.value,
                "created_by": principal.user_id,
                "created_at": now.isoformat(),
            }
        )
    except ValueError as error:
        raise InvalidInput("政策内容格式不正确", code="invalid_policy") from error
    return domain.validate_version(version)


# ---- evaluation -----------------------------------------------------------------------------


def subject_facts(deps: PolicyDeps, subject_id: str) -> tuple[Profile | None, dict[str, Any]]:
    profile = deps.profiles.get_profile(subject_id)
    if profile is None:
        return None, {}
    licences: list[ELicence] = deps.profiles.licences(subject_id)
    return profile, rules.facts_from(profile, licences)


def evaluate_version(version: PolicyVersion, facts: dict[str, Any], as_of: date) -> Any:
    return rules.evaluate(rules.parse_conditions(version.conditions), facts, as_of)


def checkup(
    deps: PolicyDeps, principal: Principal, subject_id: str | None, as_of: date | None
) -> dict[str, Any]:
    """政策体检: every policy active on `as_of` for one subject, grouped by outcome."""
    subject = subject_id or principal.subject_id
    if not subject:
        raise InvalidInput("当前账号未关联办事主体，请指定主体", code="subject_required")
    require(principal, Action.READ_POLICY_CHECKUP, Resource(owner_subject_id=subject))
    day = as_of or deps.today()
    profile, facts = subject_facts(deps, subject)
    if profile is None:
        raise NotFound("未找到该主体的档案", code="profile_not_found")
    groups: dict[str, list[dict[str, Any]]] = {
        "eligible_exempt": [],
        "eligible_quick_apply": [],
        "not_eligible": [],
        "unknown": [],
    }
    for version in sorted(active_versions(deps, day), key=lambda v: v.policy_id):
        if version.subject_kind != profile.kind:
            continue
        evaluation = evaluate_version(version, facts, day)
        groups[_group(version, evaluation)].append(_checkup_entry(version, evaluation))
    return {"subject_id": subject, "as_of": day.isoformat(), **groups}


def _group(version: PolicyVersion, evaluation: Any) -> str:
    if evaluation.outcome is rules.Outcome.ELIGIBLE:
        return "eligible_quick_apply" if version.mode is Mode.APPLY else "eligible_exempt"
    if evaluation.outcome is rules.Outcome.NOT_ELIGIBLE:
        return "not_eligible"
    return "unknown"


def _checkup_entry(version: PolicyVersion, evaluation: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "policy_id": version.policy_id,
        "version": version.version,
        "title": version.title,
        "benefit": version.benefit,
        "amount": version.amount,
        "mode": version.mode.value,
        "mode_label": version.mode_label,
        "tags": list(version.tags),
        "legal_ref": version.legal_ref,
        "outcome": evaluation.outcome.value,
        "reasons": [
            r.explanation for r in evaluation.results if r.outcome is not rules.Outcome.ELIGIBLE
        ]
        if evaluation.outcome is not rules.Outcome.ELIGIBLE
        else [],
        "explanations": [r.explanation for r in evaluation.results],
        "missing_facts": [{"fact": f, "label": _fact_label(f)} for f in evaluation.missing_facts],
    }
    if version.mode is Mode.APPLY and version.service_item_code:
        code = version.service_item_code
        entry["hand_off"] = {
            "item_code": code,
            "item_url": f"/items/{code}",
            "prefill_url": f"/items/{code}/prefill",
        }
    return entry


def _fact_label(name: str) -> str:
    spec = rules.FACTS.get(name)
    return spec.label if spec else name


# ---- grants: creation -----------------------------------------------------------------------


@dataclass
class MatchResult:
    granted: bool = False
    quick_apply: bool = False
    reason: str = ""


def grant_if_eligible(
    deps: PolicyDeps,
    version: PolicyVersion,
    subject_id: str,
    facts: dict[str, Any],
    as_of: date,
) -> MatchResult:
    """Evaluate one subject against one version (scalar, with the trace) and act on it:
    a grant (exactly once per subject and version; once per benefit) or a 快申 digest item."""
    evaluation = evaluate_version(version, facts, as_of)
    if evaluation.outcome is not rules.Outcome.ELIGIBLE:
        return MatchResult(reason=evaluation.outcome.value)
    if version.mode is Mode.APPLY:
        ref = f"apply#{version.policy_id}#v{version.version}"
        if not deps.store.first_time(subject_id, ref, deps.clock.now().isoformat()):
            return MatchResult(reason="already_matched")
        _queue_digest(deps, subject_id, ref, _apply_item(version))
        return MatchResult(quick_apply=True)
    if _barred(facts, as_of):
        return MatchResult(reason="barred")
    return _create_grant(deps, version, subject_id, evaluation.trace())


def _barred(facts: dict[str, Any], as_of: date) -> bool:
    """A duplicate subsidy bars a subject for five years (DOMAIN.md)."""
    since = facts.get("duplicate_subsidy_on")
    if isinstance(since, date):
        since = since.isoformat()
    return domain.is_barred(since if isinstance(since, str) else None, as_of)


def _create_grant(
    deps: PolicyDeps, version: PolicyVersion, subject_id: str, trace: dict[str, Any]
) -> MatchResult:
    now = deps.clock.now()
    grant_id = domain.grant_id_for(subject_id, version.policy_id, version.version)
    if not deps.store.claim_benefit(subject_id, version.benefit_key, grant_id, now.isoformat()):
        return MatchResult(reason="already_granted")
    clock_id, due = (None, None)
    if version.mode is Mode.CONFIRM:
        clock_id, due = _confirm_clock(deps, version, subject_id, grant_id)
    grant = domain.new_grant(version, subject_id, trace, now, clock_id=clock_id, confirm_due=due)
    created = deps.store.create_grant(grant)
    if not created:
        stored = deps.store.get_grant(grant_id)
        grant = stored[0] if stored else grant
    else:
        _record_grant(
            deps,
            SYSTEM,
            "grant.created",
            None,
            grant,
            {"subject": subject_id, "version": version.version},
        )
    if grant.state is GrantState.PAYING:
        deps.enqueue(PAYMENT_QUEUE, {"grant_id": grant_id, "correlation_id": get_correlation_id()})
    if created:
        _queue_digest(deps, subject_id, f"grant#{grant_id}", _grant_item(grant, version.tags))
    return MatchResult(granted=created)


def _confirm_clock(
    deps: PolicyDeps, version: PolicyVersion, subject_id: str, grant_id: str
) -> tuple[str, str | None]:
    from chalicelib.service_layer import deadlines

    owners = deps.store.accounts(subject_id)
    clock = deadlines.start_clock(
        deps.deadlines,
        subject_type="grant",
        subject_id=grant_id,
        kind="confirm",
        limit=domain.CONFIRM_WORKING_DAYS,
        department_id=version.department_id,
        owner_id=owners[0] if owners else None,
        key=f"grant:{grant_id}:confirm",
        label=version.title,
    )
    return clock.clock_id, clock.due_at.isoformat() if clock.due_at else None


# ---- grants: the subject's decisions, expiry, payment -------------------------------------


def my_grants(
    deps: PolicyDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Any:
    if not principal.subject_id:
        raise InvalidInput("当前账号未关联办事主体", code="subject_required")
    require(principal, Action.READ_GRANT, Resource(owner_subject_id=principal.subject_id))
    return deps.store.grants_of(principal.subject_id, limit, start_key)


def confirm_grant(deps: PolicyDeps, principal: Principal, grant_id: str) -> Grant:
    return _decide(deps, principal, grant_id, "confirm")


def decline_grant(deps: PolicyDeps, principal: Principal, grant_id: str) -> Grant:
    return _decide(deps, principal, grant_id, "decline")


def _decide(deps: PolicyDeps, principal: Principal, grant_id: str, action: str) -> Grant:
    from chalicelib.domain.clocks import Outcome as ClockOutcome

    grant, _ = _load_grant(deps, grant_id)
    require(principal, Action.DECIDE_GRANT, Resource(owner_subject_id=grant.subject_id))
    if grant.state in _ALREADY[action]:
        return grant  # a retry of a decision already taken answers as the first did
    now = deps.clock.now()
    if grant.confirm_due and action == "confirm" and now.isoformat() > grant.confirm_due:
        expire_grant(deps, grant_id)
        raise RuleViolation("确认期限已过，该兑现已过期", code="grant_expired")
    updated = _change(
        deps, grant_id, lambda g: domain.transition(g, action, now, by=principal.user_id)
    )
    outcome = ClockOutcome.MET if action == "confirm" else ClockOutcome.CANCELLED
    _stop_clock(deps, updated, outcome, "已确认" if action == "confirm" else "已放弃")
    _record_grant(deps, principal, _DECISION_EVENTS[action], grant, updated)
    if action == "confirm":
        updated = _change(deps, grant_id, lambda g: domain.transition(g, "start_payment", now))
        deps.enqueue(PAYMENT_QUEUE, {"grant_id": grant_id, "correlation_id": get_correlation_id()})
    return updated


_DECISION_EVENTS = {"confirm": "grant.confirmed", "decline": "grant.declined"}
# The states a grant is in once the decision was taken (payment follows a confirmation).
_ALREADY = {
    "confirm": {GrantState.CONFIRMED, GrantState.PAYING, GrantState.PAID},
    "decline": {GrantState.DECLINED},
}


def expire_overdue(deps: PolicyDeps, budget: int = SWEEP_BUDGET) -> list[str]:
    """Grants still waiting for confirmation after their deadline (sparse index Query)."""
    from chalicelib.observability import logger

    expired = []
    for grant_id in deps.store.overdue_confirmations(deps.clock.now().isoformat(), budget):
        try:
            if expire_grant(deps, grant_id).state is GrantState.EXPIRED:
                expired.append(grant_id)
        except Exception:
            logger.exception("expiring a grant failed", extra={"grant_id": grant_id})
    return expired


def expire_grant(deps: PolicyDeps, grant_id: str) -> Grant:
    from chalicelib.domain.clocks import Outcome as ClockOutcome

    grant, _ = _load_grant(deps, grant_id)
    if grant.state is not GrantState.PENDING_CONFIRMATION:
        return grant
    now = deps.clock.now()
    updated = _change(deps, grant_id, lambda g: domain.transition(g, "expire", now))
    _stop_clock(deps, updated, ClockOutcome.CANCELLED, "逾期未确认")
    _record_grant(deps, SYSTEM, "grant.expired", grant, updated)
    _notify_subject(
        deps,
        updated,
        "expired",
        f"兑现已过期：{updated.title}",
        "您未在期限内确认该政策兑现，兑现已过期。如有疑问请联系政策主管部门。",
    )
    return updated


def pay_grant(deps: PolicyDeps, grant_id: str) -> Grant:
    """The payment consumer: disburse once (the finance adapter is idempotent on the grant id),
    then mark the grant paid. A redelivered message finds it paid and does nothing."""
    from chalicelib.service_layer.ports import Disbursement

    grant, _ = _load_grant(deps, grant_id)
    if grant.state is GrantState.PAID:
        return grant
    if grant.state is not GrantState.PAYING:
        raise RuleViolation("该兑现不在拨付中", code="grant_not_payable")
    now = deps.clock.now()
    receipt = deps.finance.disburse(
        Disbursement(
            payment_id=grant_id,
            subject_id=grant.subject_id,
            amount=grant.amount,
            memo=f"{grant.title}（{grant.policy_id} 第{grant.version}版）",
            at=now.isoformat(),
        )
    )
    updated = _change(
        deps,
        grant_id,
        lambda g: domain.transition(
            g, "mark_paid", now, payment_ref=receipt.payment_ref, paid_at=now.isoformat()
        ),
        already=lambda g: g.state is GrantState.PAID,
    )
    if updated.state is GrantState.PAID and receipt.booked_now:
        _record_grant(
            deps, SYSTEM, "grant.paid", grant, updated, {"payment_ref": receipt.payment_ref}
        )
    amount = f"{updated.amount}元" if updated.amount is not None else updated.benefit
    _notify_subject(
        deps,
        updated,
        "paid",
        f"政策资金已拨付：{updated.title}",
        f"{amount}已拨付，拨付编号 {receipt.payment_ref}。",
    )
    return updated


def hold_grant(deps: PolicyDeps, grant_id: str, reason: str) -> Grant | None:
    """The payment consumer cannot pay this grant for a data reason: rather than failing on
    every redelivery the grant waits, visibly (需人工核查), and its holder is told once."""
    found = deps.store.get_grant(grant_id)
    if found is None or found[0].state is not GrantState.PAYING:
        return None
    before = found[0]
    now = deps.clock.now()
    updated = _change(
        deps,
        grant_id,
        lambda g: domain.transition(g, "hold", now, reason=reason[:300]),
        already=lambda g: g.state is GrantState.NEEDS_MANUAL_REVIEW,
    )
    _record_grant(deps, SYSTEM, "grant.needs_manual_review", before, updated, {"reason": reason})
    _notify_subject(
        deps,
        updated,
        "needs_manual_review",
        f"政策资金拨付需人工核查：{updated.title}",
        "拨付时发现数据有误，工作人员将人工核查后处理，请留意后续通知。",
    )
    return updated


def _load_grant(deps: PolicyDeps, grant_id: str) -> tuple[Grant, int]:
    found = deps.store.get_grant(grant_id)
    if found is None:
        raise NotFound("兑现记录不存在", code="grant_not_found")
    return found


def _change(
    deps: PolicyDeps,
    grant_id: str,
    apply: Callable[[Grant], Grant],
    already: Callable[[Grant], bool] | None = None,
) -> Grant:
    def attempt() -> Grant:
        grant, version = _load_grant(deps, grant_id)
        if already and already(grant):
            return grant
        updated = apply(grant)
        deps.store.save_grant(updated, version)
        return updated

    return retry_on_conflict(attempt)


def _stop_clock(deps: PolicyDeps, grant: Grant, outcome: Any, reason: str) -> None:
    from chalicelib.service_layer import deadlines

    if not grant.clock_id:
        return
    clock = deps.deadlines.clocks.get(grant.clock_id)
    if clock is not None and clock.is_open:
        deadlines.stop_clock(deps.deadlines, grant.clock_id, outcome=outcome, reason=reason)


def _notify_subject(deps: PolicyDeps, grant: Grant, event: str, title: str, body: str) -> None:
    for user_id in deps.store.accounts(grant.subject_id):
        notify(
            deps.notifier,
            f"grant:{grant.grant_id}:{event}:{user_id}",
            RecipientKind.USER,
            user_id,
            f"policy.grant_{event}",
            title,
            body,
            {"grant_id": grant.grant_id, "state": grant.state.value},
        )


# ---- population match -----------------------------------------------------------------------


def match_shards() -> int:
    from chalicelib.domain.applications import PROFILE_SHARDS

    return PROFILE_SHARDS


def start_population_match(deps: PolicyDeps, version: PolicyVersion) -> int:
    """One message per segment (profile shard): segments run in parallel, each bounded."""
    for shard in range(match_shards()):
        _enqueue_segment(deps, version, shard)
    return match_shards()


def _enqueue_segment(deps: PolicyDeps, version: PolicyVersion, shard: int) -> None:
    deps.enqueue(
        MATCH_QUEUE,
        {
            "policy_id": version.policy_id,
            "version": version.version,
            "shard": shard,
            "correlation_id": get_correlation_id(),
        },
    )


@dataclass
class SegmentReport:
    pages: int = 0
    subjects: int = 0
    candidates: int = 0
    granted: int = 0
    quick_apply: int = 0
    done: bool = False
    continued: bool = False


def match_segment(
    deps: PolicyDeps,
    job: dict[str, Any],
    screen: Screen | None = None,
    *,
    page_size: int = MATCH_PAGE_SIZE,
    pages_per_run: int = MATCH_PAGES_PER_RUN,
) -> SegmentReport:
    """Page through one shard's profiles from its checkpoint; `screen` (the columnar evaluator)
    picks the candidates, the scalar evaluator confirms each and stores the trace. The cursor is
    checkpointed after every page, so a redelivered or continued message resumes there."""
    policy_id, number, shard = job["policy_id"], int(job["version"]), int(job["shard"])
    report = SegmentReport()
    version = deps.store.get_version(policy_id, number)
    if version is None or version.state is not VersionState.PUBLISHED:
        report.done = True
        return report
    state = deps.store.checkpoint(policy_id, number, shard) or {"cursor": None, "done": False}
    if state.get("done"):
        report.done = True
        return report
    as_of = max(deps.today(), version.effective_from)
    condition = rules.parse_conditions(version.conditions)
    needs_licences = _needs_licences(condition)
    cursor = state.get("cursor")
    while report.pages < pages_per_run:
        page = deps.profiles.profiles_in_shard(version.subject_kind, shard, page_size, cursor)
        report.pages += 1
        _match_page(deps, version, condition, page.items, as_of, needs_licences, screen, report)
        cursor = page.last_key
        state = {
            **{k: v for k, v in state.items() if k not in _FAILURE_KEYS},
            "cursor": cursor,
            "done": cursor is None,
            "subjects": state.get("subjects", 0) + len(page.items),
        }
        deps.store.save_checkpoint(policy_id, number, shard, state)
        if cursor is None:
            report.done = True
            return report
    deps.enqueue(MATCH_QUEUE, {**job, "continuation": state.get("subjects", 0)})
    report.continued = True
    return report


# Facts that facts_from derives from e-licences, besides the licences themselves.
_LICENCE_DERIVED = frozenset({rules.LICENCES, "high_tech_recognised_on", "disabled"})


def _needs_licences(condition: Any) -> bool:
    """Licences cost one Query per subject: read them only for conditions that use them."""
    return bool(rules.conditions_facts(condition) & _LICENCE_DERIVED)


def _match_page(
    deps: PolicyDeps,
    version: PolicyVersion,
    condition: Any,
    profiles: list[Profile],
    as_of: date,
    needs_licences: bool,
    screen: Screen | None,
    report: SegmentReport,
) -> None:
    facts = [
        rules.facts_from(p, deps.profiles.licences(p.subject_id) if needs_licences else [])
        for p in profiles
    ]
    report.subjects += len(profiles)
    mask = screen(condition, facts, as_of) if screen else [True] * len(profiles)
    for profile, subject_facts_, candidate in zip(profiles, facts, mask, strict=True):
        if not candidate:
            continue
        report.candidates += 1
        result = grant_if_eligible(deps, version, profile.subject_id, subject_facts_, as_of)
        report.granted += int(result.granted)
        report.quick_apply += int(result.quick_apply)


_FAILURE_KEYS = ("failed", "failure", "failed_at")


def fail_segment(deps: PolicyDeps, job: dict[str, Any], reason: str) -> bool:
    """A segment that cannot go on for a data reason stops at its checkpoint, marked failed
    with the reason, so the match progress shows it to the office instead of it silently
    never finishing. A later message for the segment resumes it (and clears the mark)."""
    policy_id, number, shard = job["policy_id"], int(job["version"]), int(job["shard"])
    state = deps.store.checkpoint(policy_id, number, shard) or {"cursor": None, "done": False}
    if state.get("done") or state.get("failed"):
        return False
    failed_at = deps.clock.now().isoformat()
    deps.store.save_checkpoint(
        policy_id,
        number,
        shard,
        {**state, "shard": shard, "failed": True, "failure": reason[:300], "failed_at": failed_at},
    )
    record_change(
        deps.audit_log,
        SYSTEM,
        "policy.match_segment_failed",
        "policy",
        f"{policy_id}#v{number}",
        None,
        {"shard": shard, "failure": reason[:300]},
        None,
    )
    return True


def match_progress(deps: PolicyDeps, policy_id: str, version: int) -> dict[str, Any]:
    states = deps.store.checkpoints(policy_id, version)
    return {
        "segments": match_shards(),
        "segments_done": sum(1 for s in states if s.get("done")),
        "segments_failed": [
            {"shard": s.get("shard"), "reason": s.get("failure"), "failed_at": s.get("failed_at")}
            for s in states
            if s.get("failed")
        ],
        "subjects": sum(s.get("subjects", 0) for s in states),
    }


# ---- change-driven match --------------------------------------------------------------------


def rematch_subject(deps: PolicyDeps, subject_id: str) -> list[str]:
    """A profile or e-licence change: this subject only, against the policies active today.
    Its cost does not depend on the population (one profile, its licences, one index Query)."""
    profile, facts = subject_facts(deps, subject_id)
    if profile is None:
        return []
    today = deps.today()
    matched = []
    for version in active_versions(deps, today):
        if version.subject_kind != profile.kind:
            continue
        result = grant_if_eligible(deps, version, subject_id, facts, today)
        if result.granted or result.quick_apply:
            matched.append(version.key)
    return matched


def update_profile(
    deps: PolicyDeps, principal: Principal, subject_id: str, fields: dict[str, Any]
) -> Profile:
    """Data sharing (一人一档 / 一企一档) updates a profile; its stream re-evaluates the subject."""
    require(principal, Action.UPDATE_PROFILE)
    current = deps.profiles.get_profile(subject_id)
    if current is None and not fields.get("kind"):
        raise NotFound("未找到该主体的档案", code="profile_not_found")
    base = current.to_dict() if current else {"subject_id": subject_id}
    merged = {
        **base,
        **{k: v for k, v in fields.items() if v is not None},
        "subject_id": subject_id,
    }
    try:
        profile = Profile.from_dict(merged)
    except TypeError as error:
        raise InvalidInput("档案字段不正确", code="invalid_profile") from error
    deps.profiles.put_profile(profile)
    from chalicelib.domain.audit import changed_values

    old, new = changed_values(base if current else {}, profile.to_dict())
    record_change(
        deps.audit_log,
        principal,
        "profile.updated",
        "profile",
        subject_id,
        old if current else None,
        new,
        {"fields": sorted(fields)},
    )
    return profile


# ---- push digest ----------------------------------------------------------------------------


def _grant_item(grant: Grant, tags: Sequence[str]) -> dict[str, Any]:
    return {
        "kind": "grant",
        "grant_id": grant.grant_id,
        "title": grant.title,
        "mode": grant.mode.value,
        "amount": grant.amount,
        "benefit": grant.benefit,
        "confirm_due": grant.confirm_due,
        "tags": list(tags),
    }


def _apply_item(version: PolicyVersion) -> dict[str, Any]:
    return {
        "kind": "quick_apply",
        "policy_id": version.policy_id,
        "version": version.version,
        "title": version.title,
        "item_code": version.service_item_code,
        "tags": list(version.tags),
    }


def _queue_digest(deps: PolicyDeps, subject_id: str, ref: str, item: dict[str, Any]) -> None:
    deps.store.add_digest_item(subject_id, ref, item, deps.clock.now().isoformat())


DEFAULT_PREFERENCES: dict[str, Any] = {"default": True, "tags": {}}


def preferences(deps: PolicyDeps, principal: Principal) -> dict[str, Any]:
    subject = _own_subject(principal)
    require(principal, Action.MANAGE_PUSH_PREFERENCES, Resource(owner_subject_id=subject))
    return deps.store.preferences(subject) or dict(DEFAULT_PREFERENCES)


def set_preferences(
    deps: PolicyDeps, principal: Principal, default: bool, tags: dict[str, bool]
) -> dict[str, Any]:
    subject = _own_subject(principal)
    require(principal, Action.MANAGE_PUSH_PREFERENCES, Resource(owner_subject_id=subject))
    before = deps.store.preferences(subject)
    data = {"default": default, "tags": dict(sorted(tags.items()))}
    deps.store.put_preferences(subject, data)
    deps.store.link_account(subject, principal.user_id)
    record_change(
        deps.audit_log,
        principal,
        "policy.push_preferences_set",
        "push_preferences",
        subject,
        before,
        data,
    )
    return data


def _own_subject(principal: Principal) -> str:
    if not principal.subject_id:
        raise InvalidInput("当前账号未关联办事主体", code="subject_required")
    return principal.subject_id


def wanted(prefs: dict[str, Any], item: dict[str, Any]) -> bool:
    """A grant waiting for confirmation is always sent (it needs an answer by a deadline);
    otherwise a tag switched off silences the item, a tag switched on sends it, and an item with
    neither follows the subject's default."""
    if item.get("kind") == "grant" and item.get("mode") == Mode.CONFIRM.value:
        return True
    switches = [prefs.get("tags", {}).get(tag) for tag in item.get("tags", [])]
    if False in switches:
        return False
    if True in switches:
        return True
    return bool(prefs.get("default", True))


def send_digests(deps: PolicyDeps, budget: int = DIGEST_BUDGET) -> list[str]:
    """At most one digest per subject and calendar day: subjects already sent today keep their
    items for tomorrow. The pending subjects come from a sparse index, never a full-table read."""
    from chalicelib.observability import logger

    today = deps.today().isoformat()
    sent = []
    for subject_id in deps.store.pending_digests(budget):
        try:
            if _send_digest(deps, subject_id, today):
                sent.append(subject_id)
        except Exception:
            logger.exception("sending a policy digest failed", extra={"subject": "hidden"})
    return sent


def _send_digest(deps: PolicyDeps, subject_id: str, today: str) -> bool:
    if deps.store.digest_state(subject_id).get("last_sent_day") == today:
        return False
    items = deps.store.digest_items(subject_id)
    prefs = deps.store.preferences(subject_id) or DEFAULT_PREFERENCES
    chosen = [item for _, item in items if wanted(prefs, item)]
    accounts = deps.store.accounts(subject_id)
    if chosen and accounts:
        title, body = digest_text(chosen)
        for user_id in accounts:
            notify(
                deps.notifier,
                f"policy-digest:{subject_id}:{today}:{user_id}",
                RecipientKind.USER,
                user_id,
                "policy.digest",
                title,
                body,
                {"items": chosen, "day": today},
            )
    deps.store.finish_digest(
        subject_id, [ref for ref, _ in items], today if chosen and accounts else None
    )
    return bool(chosen and accounts)


def digest_text(items: list[dict[str, Any]]) -> tuple[str, str]:
    grants = [i for i in items if i["kind"] == "grant"]
    quick = [i for i in items if i["kind"] == "quick_apply"]
    parts = []
    if grants:
        parts.append(f"{len(grants)}项免申即享政策待兑现")
    if quick:
        parts.append(f"{len(quick)}项可快速申报的政策")
    lines = []
    for g in grants:
        how = "请在期限内确认" if g["mode"] == Mode.CONFIRM.value else "将直接拨付"
        lines.append(f"·{g['title']}：{_amount(g)}，{how}")
    for q in quick:
        lines.append(f"·{q['title']}：符合条件，可一键申报（已预填）")
    return "政策提醒：您有" + "、".join(parts), "\n".join(lines)


def _amount(item: dict[str, Any]) -> str:
    return f"{item['amount']}元" if item.get("amount") is not None else item.get("benefit", "")


def link_demo_accounts(deps: PolicyDeps, pairs: list[tuple[str, str]]) -> None:
    for subject_id, user_id in pairs:
        deps.store.link_account(subject_id, user_id)
