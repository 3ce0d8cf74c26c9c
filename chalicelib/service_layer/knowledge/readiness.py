"""Readiness before a policy version takes effect: a "kb_readiness" / "answer" clock due at the
end of the last working day before it; the default ladder warns the policy's department as the
date approaches and escalates when it is missed; stopped when an article linked to that version
is approved."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain import knowledge as domain
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.clocks import ClockState, Outcome
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import SYSTEM, Principal, Role
from chalicelib.domain.knowledge import (
    ArticleState,
    Readiness,
    ReadinessState,
)
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.knowledge.common import (
    CLOCK_KIND,
    READINESS_HORIZON_DAYS,
    READINESS_SUBJECT,
    KnowledgeDeps,
    _now,
)
from chalicelib.service_layer.ports.knowledge import PolicyInfo

if TYPE_CHECKING:
    pass


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
