"""Machine pre-review (the queue consumer): the outcome and its effects, in one transaction or
left for the repair; holding for manual review."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import (
    DECIDABLE,
    Application,
    Decision,
    Outcome,
    ServiceItem,
    State,
)
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import SYSTEM
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.applications.common import (
    _SAVE_ATTEMPTS,
    ApplicationDeps,
    _audit,
    _bundle_moves_on,
    _change,
    _clock_call,
    _item_of,
    _load,
    _notify,
    _notify_department,
    _reusable,
    _start,
    _summary,
    iso,
)
from chalicelib.service_layer.applications.decisions import _auto_decide
from chalicelib.service_layer.applications.forwarding import _decided_elsewhere, _forward
from chalicelib.service_layer.applications.kpis import _record_facts

ACCEPTANCE_DAYS = 5


_OUTCOME_OF_STATE = {
    State.ACCEPTED: Outcome.PASSED,
    State.TOLERATED: Outcome.TOLERATED,
    State.SUPPLEMENT_REQUESTED: Outcome.SUPPLEMENT,
    State.REJECTED: Outcome.REJECTED,
}


# Conflicts of a transaction: the application or a clock changed meanwhile (run again on
# what is stored now), or a write it cannot hold (take the step-by-step path).
_RETRY = frozenset({"application_conflict", "clock_changed"})
_STEP_BY_STEP = frozenset({"effect_conflict", "transaction_too_large"})


def prereview(deps: ApplicationDeps, application_id: str, round_: int) -> Application | None:
    """Review one submission round: the application is read once and written once, with its
    clocks, notifications, licence, KPI facts and audit facts, in one transaction. Without a
    transaction (or when one cannot hold it) it goes step by step: the state change is one
    conditional write; its effects (clocks, notifications, the automatic decision) are keyed
    by application, kind and round and marked done afterwards, so a redelivery after a crash
    in between finishes them and a redelivery after that does nothing."""
    if deps.transactions is None:
        return _prereview(deps, application_id, round_)
    for attempt in range(_SAVE_ATTEMPTS):
        try:
            return _in_transaction(deps, lambda d: _prereview(d, application_id, round_))
        except Conflict as error:
            if error.code in _STEP_BY_STEP:
                return _prereview(deps, application_id, round_)
            if error.code not in _RETRY or attempt == _SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _in_transaction(
    deps: ApplicationDeps, work: Callable[[ApplicationDeps], Application | None]
) -> Application | None:
    """Run `work` with every write enlisted in one transaction; what must only happen once it
    is written (metrics, the review invitation) waits for the commit."""
    later: list[Callable[[], None]] = []

    def metric(*args: Any, **kwargs: Any) -> None:
        later.append(lambda: deps.deadlines.metric(*args, **kwargs))

    def completed(handling_type: str, handling_id: str) -> None:
        later.append(
            lambda: _or_leave_for_repair(
                deps,
                handling_id,
                lambda: deps.completed(handling_type, handling_id),
                "the review invitation",
            )
        )

    def case_finished(application_id: str) -> None:
        finished = deps.case_finished
        if finished is not None:
            later.append(
                lambda: _or_leave_for_repair(
                    deps, application_id, lambda: finished(application_id), "moving the bundle on"
                )
            )

    def forward(message: dict[str, Any]) -> None:
        if deps.forward is not None:
            send = deps.forward
            later.append(lambda: send(message))

    inside = replace(
        deps,
        deadlines=replace(deps.deadlines, metric=metric),
        completed=completed,
        case_finished=case_finished if deps.case_finished else None,
        forward=forward if deps.forward else None,
    )
    if deps.transactions is None:
        raise RuntimeError("a pre-review in one write needs the transactions port")
    with deps.transactions.atomic() as transaction:
        result = work(inside)
        for action in later:
            transaction.after_commit(action)
    return result


def _or_leave_for_repair(
    deps: ApplicationDeps, application_id: str, effect: Callable[[], None], what: str
) -> None:
    """After a decision's transaction: run an effect that cannot join it (the review
    invitation, moving a bundle on). The transaction marked the decision's effects done, so a
    failure marks them pending again and the repair job runs them (each is idempotent)."""
    try:
        effect()
    except Exception:
        from chalicelib.observability import logger

        logger.exception(
            f"{what} failed after the decision was stored; the repair job does it",
            extra={"application_id": application_id},
        )
        now = deps.clock.now()

        def pending(a: Application) -> Application | None:
            a.completion_pending = True
            a.effects_since = now.isoformat()
            return a

        _change(deps, application_id, pending)


def _prereview(deps: ApplicationDeps, application_id: str, round_: int) -> Application | None:
    now = deps.clock.now()
    today = now.astimezone(CHINA_TZ).date()
    app, _ = _load(deps, application_id)
    if app.reviewed_round >= round_:
        if app.reviewed_round == round_ and app.effects_round < round_:
            return _complete_effects(deps, app, round_, _OUTCOME_OF_STATE.get(app.state), now)
        return None
    if app.state is not State.SUBMITTED:
        return None
    item = _item_of(deps, app)
    profile = deps.store.get_profile(app.subject_id)
    licences = deps.store.licences(app.subject_id)
    reusable = frozenset(_reusable(deps, app.subject_id, now))
    review = domain.pre_review(item, app, profile, licences, today, reusable)
    if "acceptance" not in app.clocks:
        app.clocks["acceptance"] = _start(
            deps,
            app,
            "acceptance",
            ACCEPTANCE_DAYS,
            department_id=app.department_id,
            started_at=datetime.fromisoformat(app.created_at),
        )

    def apply(current: Application) -> Application | None:
        if current.reviewed_round >= round_ or current.state is not State.SUBMITTED:
            return None
        current.clocks.update(app.clocks)
        current.findings = list(review.findings)
        current.reviewed_round = round_
        current.reviews += 1
        return _apply_outcome(deps, current, item, review.outcome, now)

    before = _summary(app)
    updated = _change(deps, application_id, apply)
    if updated is None:
        return None
    _audit(
        deps,
        SYSTEM,
        f"application.prereview_{review.outcome.value}",
        "application",
        application_id,
        before,
        _summary(updated),
    )
    return _complete_effects(deps, updated, round_, review.outcome, now, (item, profile))


def hold_for_manual_review(
    deps: ApplicationDeps, application_id: str, reason: str
) -> Application | None:
    """Pre-review failed on this application for a data reason: instead of failing on every
    redelivery it waits, visibly, for the department, which is told once per round."""
    from chalicelib.domain.applications import Finding, Reason

    def apply(current: Application) -> Application | None:
        if current.state is not State.SUBMITTED:
            return None
        current.state = State.NEEDS_MANUAL_REVIEW
        current.findings = [
            Finding("application", Reason.INCORRECT, "needs_manual_review", reason[:300])
        ]
        return current

    before = _summary(_load(deps, application_id)[0])
    updated = _change(deps, application_id, apply)
    if updated is None:
        return None
    _audit(
        deps,
        SYSTEM,
        "application.needs_manual_review",
        "application",
        application_id,
        before,
        _summary(updated),
    )
    deps.notifier.notify(
        NotificationRequest(
            business_key=(
                f"application:{application_id}:manual_review:{updated.review_round}:"
                f"{updated.department_id}"
            ),
            recipient_kind=RecipientKind.DEPARTMENT,
            recipient_id=updated.department_id,
            category="application.needs_manual_review",
            title=f"办件需人工预审：{updated.item_name}",
            body=f"办件 {application_id} 无法自动预审（{reason[:200]}），请人工核查。",
            data={"application_id": application_id, "state": updated.state.value},
            correlation_id=get_correlation_id(),
        )
    )
    return updated


def _complete_effects(
    deps: ApplicationDeps,
    app: Application,
    round_: int,
    outcome: Outcome | None,
    now: datetime,
    loaded: tuple[ServiceItem, Any] | None = None,
) -> Application:
    if outcome is not None:
        item, profile = loaded or (
            _item_of(deps, app),
            deps.store.get_profile(app.subject_id),
        )
        _after_outcome(deps, app, item, profile, outcome, now)

    def mark(a: Application) -> Application | None:
        if a.effects_round >= round_:
            return None
        a.effects_round = round_
        return a

    final = _change(deps, app.application_id, mark) or _load(deps, app.application_id)[0]
    _record_facts(deps, final)
    return final


def _apply_outcome(
    deps: ApplicationDeps, app: Application, item: ServiceItem, outcome: Outcome, now: datetime
) -> Application:
    events = {
        Outcome.PASSED: (State.ACCEPTED, "accepted"),
        Outcome.TOLERATED: (State.TOLERATED, "tolerated"),
        Outcome.SUPPLEMENT: (State.SUPPLEMENT_REQUESTED, "supplement_requested"),
        Outcome.REJECTED: (State.REJECTED, "rejected"),
    }
    state, event = events[outcome]
    app.state = state
    if state in DECIDABLE:
        app.accepted_at = now.isoformat()
    if outcome is Outcome.REJECTED:
        app.decision = Decision(
            "rejected", "prereview", tuple(f.message for f in app.findings), (), now.isoformat()
        )
    app.add_event(now, event, findings=[f.code for f in app.findings])
    return app


def _after_outcome(
    deps: ApplicationDeps,
    app: Application,
    item: ServiceItem,
    profile: Any,
    outcome: Outcome,
    now: datetime,
) -> None:
    """Clocks, notifications and the automatic decision, after the state is stored."""
    listing = "；".join(f.message for f in app.findings if f.blocking)
    if outcome is Outcome.SUPPLEMENT:
        _clock_call(deps, app, "acceptance", "pause", reason="等待申请人补正")
        _notify(
            deps,
            app,
            "supplement_requested",
            f"请补正：{app.item_name}",
            f"您的申请需要补正：{listing}。补正后将继续办理。",
        )
        return
    _clock_call(deps, app, "acceptance", "stop")
    if outcome is Outcome.REJECTED:
        _notify(deps, app, "rejected", f"申请未通过预审：{app.item_name}", listing)
        _bundle_moves_on(deps, app)
        return
    clocks = {
        "promised": _start(
            deps, app, "promised", item.promised_days, department_id=app.department_id
        )
    }
    if outcome is Outcome.TOLERATED:
        clocks["supplement"] = _start(
            deps, app, "supplement", item.supplement_days, owner_id=app.applicant_user_id
        )
    due = _due_iso(deps, clocks.get("supplement"))
    _change(deps, app.application_id, lambda a: _with_clocks(a, clocks, due))
    app.clocks.update(clocks)
    if _decided_elsewhere(item) and outcome is Outcome.PASSED:
        _forward(deps, app, item, now)
        return
    if outcome is Outcome.TOLERATED:
        _notify(
            deps,
            app,
            "tolerated",
            f"已容缺受理：{app.item_name}",
            f"您的申请已容缺受理，请在{item.supplement_days}个工作日内补齐：{listing}。"
            "逾期未补齐的，办件将终止。",
        )
    if item.automatic and outcome is Outcome.PASSED:
        _auto_decide(deps, app, item, profile, now)
        return
    _notify_department(deps, app)
    _notify(
        deps,
        app,
        "accepted",
        f"已受理：{app.item_name}",
        f"您的申请已受理，承诺{item.promised_days}个工作日内办结。",
    )


def _with_clocks(app: Application, clocks: dict[str, str], due: str | None) -> Application | None:
    if all(app.clocks.get(k) == v for k, v in clocks.items()) and app.supplement_due == due:
        return None
    app.clocks.update(clocks)
    app.supplement_due = due
    return app


def _due_iso(deps: ApplicationDeps, clock_id: str | None) -> str | None:
    clock = deps.deadlines.clocks.get(clock_id) if clock_id else None
    return iso(clock.due_at) if clock is not None and clock.due_at else None
