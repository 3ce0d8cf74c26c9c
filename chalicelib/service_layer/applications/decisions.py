"""Decisions: by the department, automatic, or recorded from another region; the effects of a
decision (licence, notices, review invitation) and their repair."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import DECIDABLE, Application, Decision, ServiceItem, State
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.applications.common import (
    ApplicationDeps,
    _audit,
    _bundle_moves_on,
    _change,
    _clock_call,
    _item_of,
    _load,
    _notify,
    _notify_department,
    _resource,
    _summary,
)
from chalicelib.service_layer.applications.kpis import _record_facts
from chalicelib.service_layer.applications.supplements import enforce_supplement_deadline
from chalicelib.service_layer.authorization import Action, require


def _auto_decide(
    deps: ApplicationDeps, app: Application, item: ServiceItem, profile: Any, now: datetime
) -> None:
    decision = domain.auto_decide(item, app, profile, now)
    if decision.outcome != "approved":

        def note(a: Application) -> Application:
            a.add_event(now, "auto_rules_failed", rules=[asdict(r) for r in decision.rules])
            return a

        _change(deps, app.application_id, note)
        _notify_department(deps, app)
        return
    _finish(deps, app.application_id, decision, SYSTEM)


def decide(
    deps: ApplicationDeps,
    principal: Principal,
    application_id: str,
    approve: bool,
    reasons: list[str],
) -> Application:
    require(principal, Action.DECIDE_APPLICATION)
    app, version = _load(deps, application_id)
    require(principal, Action.DECIDE_APPLICATION, _resource(app))
    app = enforce_supplement_deadline(deps, app, version)
    domain.require_state(app, DECIDABLE, "审批")
    if app.state is State.TOLERATED and approve:
        raise RuleViolation("容缺材料补齐前不能作出准予决定", code="supplement_pending")
    if not approve and not reasons:
        raise InvalidInput("不予批准须说明理由", code="reasons_required")
    decision = Decision(
        "approved" if approve else "rejected",
        principal.user_id,
        tuple(reasons),
        (),
        deps.clock.now().isoformat(),
    )
    return _finish(deps, application_id, decision, principal)


def _finish(
    deps: ApplicationDeps, application_id: str, decision: Decision, actor: Principal
) -> Application:
    now = deps.clock.now()
    approved = decision.outcome == "approved"
    item_holder: dict[str, Any] = {}

    def apply(app: Application) -> Application | None:
        if app.state not in DECIDABLE:
            return None
        before = _summary(app)
        item_holder["before"] = before
        app.state = State.APPROVED if approved else State.REJECTED
        app.decision = decision
        app.completion_pending = True
        app.effects_since = now.isoformat()
        app.add_event(
            now,
            app.state.value,
            by=decision.by,
            reasons=list(decision.reasons),
            rules=[asdict(r) for r in decision.rules],
        )
        return app

    updated = _change(deps, application_id, apply)
    if updated is None:
        raise RuleViolation("申请已办结", code="invalid_state")
    _audit(
        deps,
        actor,
        f"application.{updated.state.value}",
        "application",
        application_id,
        item_holder.get("before"),
        _summary(updated),
        rules=[asdict(r) for r in decision.rules],
    )
    from chalicelib.observability import logger

    try:
        return _completion_effects(deps, updated, now)
    except Exception:
        logger.exception(
            "completion effects failed; the repair job applies them again",
            extra={"application_id": application_id},
        )
        return updated


def _completion_effects(deps: ApplicationDeps, app: Application, now: datetime) -> Application:
    """A decision's effects, each idempotent (clock calls by clock, notices and the invitation
    by business key, the licence by its number), then one write: the licence number, if any,
    and the mark that the effects are done."""
    decision = app.decision
    approved = app.state is State.APPROVED
    _clock_call(deps, app, "promised", "stop")
    _clock_call(deps, app, "supplement", "stop", reason="办结")
    reasons = "；".join(decision.reasons) if decision else ""
    _notify(
        deps,
        app,
        app.state.value,
        f"办结通知：{app.item_name}",
        (f"您的申请已获批准。{_result_text(app)}" if approved else f"您的申请未获批准：{reasons}"),
    )
    _record_facts(deps, app)
    deps.completed("application", app.application_id)
    licence = _issue_licence(deps, app, now) if approved else None
    number = licence.number if licence else None
    if approved and deps.approved is not None:
        deps.approved(app, licence)
    _bundle_moves_on(deps, app)

    def done(a: Application) -> Application | None:
        if not a.completion_pending and (number is None or a.issued_licence == number):
            return None
        a.completion_pending = False
        a.issued_licence = number or a.issued_licence
        return a

    return _change(deps, app.application_id, done) or app


def _result_text(app: Application) -> str:
    """Where the result of a case decided in another region is: an e-licence or the mail."""
    result = (app.remote or {}).get("result") or {}
    if result.get("licence_number"):
        return f"电子证照编号：{result['licence_number']}。"
    if result.get("mail_tracking_no"):
        return f"结果文书已寄出，运单号：{result['mail_tracking_no']}。"
    return ""


def _issue_licence(
    deps: ApplicationDeps, app: Application, now: datetime
) -> domain.ELicence | None:
    """The e-licence of an approval, if the item issues one: numbered and dated by the decision,
    so applying the effects again writes the same licence."""
    item = _item_of(deps, app)
    if not item.issues_licence:
        return None
    from chalicelib.domain.applications import LICENCE_YEARS, ELicence, licence_expiry

    decided = app.decision.decided_at if app.decision else ""
    at = datetime.fromisoformat(decided).astimezone(CHINA_TZ) if decided else now
    number = f"QP{at:%Y%m%d}{app.application_id[:8].upper()}"
    licence = ELicence(
        type=item.issues_licence,
        number=number,
        holder_id=app.subject_id,
        holder_name=app.applicant_name,
        valid_from=at.date().isoformat(),
        valid_until=licence_expiry(at.date(), LICENCE_YEARS).isoformat(),
        issued_for=app.application_id,
    )
    if app.issued_licence == number:
        return licence
    deps.store.put_licence(licence)  # keyed by type and number: re-issuing overwrites
    _audit(
        deps,
        SYSTEM,
        "elicence.issued",
        "elicence",
        number,
        None,
        {"type": licence.type, "application_id": app.application_id},
    )
    return licence


def record_remote_decision(
    deps: ApplicationDeps,
    application_id: str,
    approved: bool,
    reasons: list[str],
    by: str,
    result: dict[str, Any] | None,
) -> Application:
    """The deciding region's decision on a case forwarded from here: the result it sends back
    (an e-licence number or a mail tracking number) is kept, the decision's effects run as
    for a decision made here (clocks stopped, the person told, facts recorded)."""
    now = deps.clock.now()
    if result:

        def keep(a: Application) -> Application | None:
            if a.remote is None or a.remote.get("result") == result:
                return None
            a.remote["result"] = result
            a.issued_licence = result.get("licence_number") or a.issued_licence
            return a

        _change(deps, application_id, keep)
    decision = Decision(
        "approved" if approved else "rejected", by, tuple(reasons), (), now.isoformat()
    )
    return _finish(deps, application_id, decision, SYSTEM)


def repair_effects(deps: ApplicationDeps, before: datetime, budget: int) -> list[str]:
    """Applications whose effects have been pending since before `before` (one Query on the
    sparse effects index): a decision's effects are applied again; a round still waiting for
    pre-review, or whose pre-review effects are unfinished, is handed to pre-review again
    (idempotent per round) and looked at again only after another grace period."""
    from chalicelib.observability import logger

    repaired = []
    for application_id in deps.store.effects_pending(before, budget):
        try:
            if _repair(deps, application_id):
                repaired.append(application_id)
        except Exception:
            logger.exception(
                "repairing an application's effects failed; tried again on the next run",
                extra={"application_id": application_id},
            )
    return repaired


def _repair(deps: ApplicationDeps, application_id: str) -> bool:
    app, _ = _load(deps, application_id)
    now = deps.clock.now()
    if app.completion_pending:
        _completion_effects(deps, app, now)
        return True
    if not app.effects_pending:
        return False
    if app.remote is not None and app.remote.get("state") == "forwarding":
        if deps.forward is not None:
            deps.forward({"kind": "case", "application_id": application_id})
        _change(deps, application_id, lambda a: _later(a, now))
        return True
    deps.enqueue(
        {
            "application_id": application_id,
            "round": app.review_round,
            "correlation_id": get_correlation_id(),
        }
    )

    def later(a: Application) -> Application | None:
        if not a.effects_pending:
            return None
        a.effects_since = now.isoformat()
        return a

    _change(deps, application_id, later)
    return True


def _later(app: Application, now: datetime) -> Application | None:
    if not app.effects_pending:
        return None
    app.effects_since = now.isoformat()
    return app
