"""补正 and 容缺 supplements, and the supplement deadline: past it, the application is
terminated."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import Application, Material, Outcome, State
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, InvalidInput
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.service_layer.applications.common import (
    ApplicationDeps,
    _audit,
    _bundle_moves_on,
    _change,
    _clock_call,
    _enqueue_prereview,
    _item_of,
    _load,
    _notify,
    _require_acting_item,
    _resource,
    _reusable,
    _summary,
    iso,
)
from chalicelib.service_layer.applications.forwarding import _decided_elsewhere, _forward
from chalicelib.service_layer.applications.kpis import _record_facts
from chalicelib.service_layer.authorization import Action, require


def supplement(
    deps: ApplicationDeps,
    principal: Principal,
    application_id: str,
    fields: dict[str, Any],
    materials: list[Material],
) -> Application:
    require(principal, Action.SUPPLEMENT_APPLICATION)
    app, version = _load(deps, application_id)
    require(principal, Action.SUPPLEMENT_APPLICATION, _resource(app))
    _require_acting_item(principal, app)
    app = enforce_supplement_deadline(deps, app, version)
    domain.require_state(app, {State.SUPPLEMENT_REQUESTED, State.TOLERATED}, "补充材料")
    tampered = domain.check_locked(app.locked, {**app.fields, **fields})
    if tampered:
        raise InvalidInput(
            "核验数据不可修改",
            code="locked_field_changed",
            fields=[
                {"field": f.target, "message": f.message, "type": f.reason.value} for f in tampered
            ],
        )
    now = deps.clock.now()
    was = app.state

    def apply(a: Application) -> Application:
        if a.state is not was:
            raise Conflict("申请状态已变化，请刷新后重试", code="application_conflict")
        a.fields.update(fields)
        by_code = {m.code: m for m in a.materials}
        by_code.update({m.code: m for m in materials})
        a.materials = list(by_code.values())
        if was is State.SUPPLEMENT_REQUESTED:
            a.supplement_rounds += 1
            a.review_round += 1
            a.state = State.SUBMITTED
            a.effects_since = now.isoformat()
        a.add_event(
            now, "supplemented", materials=[m.code for m in materials], fields=sorted(fields)
        )
        return a

    updated = _change(deps, application_id, apply)
    _audit(
        deps,
        principal,
        "application.supplemented",
        "application",
        application_id,
        _summary(app),
        _summary(updated),
    )
    if was is State.SUPPLEMENT_REQUESTED:
        _clock_call(deps, updated, "acceptance", "resume", actor=principal)
        _enqueue_prereview(deps, updated)
        return updated
    return _complete_tolerance(deps, updated, now)


def _complete_tolerance(deps: ApplicationDeps, app: Application, now: datetime) -> Application:
    """容缺: once every missing material is in, the supplement clock stops and the
    department decides as usual."""
    item = _item_of(deps, app)
    profile = deps.store.get_profile(app.subject_id)
    licences = deps.store.licences(app.subject_id)
    review = domain.pre_review(
        item,
        replace(app, commitment=app.commitment),
        profile,
        licences,
        now.astimezone(CHINA_TZ).date(),
        frozenset(_reusable(deps, app.subject_id, now)),
    )
    if review.outcome is not Outcome.PASSED:

        def note(a: Application) -> Application:
            a.findings = list(review.findings)
            return a

        return _change(deps, app.application_id, note) or app

    def accept(a: Application) -> Application | None:
        if a.state is not State.TOLERATED:
            return None
        a.state = State.ACCEPTED
        a.findings = list(review.findings)
        a.add_event(now, "tolerance_completed")
        return a

    updated = _change(deps, app.application_id, accept) or app
    _clock_call(deps, updated, "supplement", "stop", reason="容缺材料已补齐")
    if _decided_elsewhere(item):
        return _forward(deps, updated, item, now)
    return updated


def enforce_supplement_deadline(
    deps: ApplicationDeps, app: Application, version: int
) -> Application:
    """容缺: past the supplement clock's deadline (the deadline engine's clock) the
    application is terminated, whoever looks at it first."""
    if app.state is not State.TOLERATED or "supplement" not in app.clocks:
        return app
    clock = deps.deadlines.clocks.get(app.clocks["supplement"])
    now = deps.clock.now()
    if clock is None or clock.due_at is None or now <= clock.due_at:
        return app
    return terminate(deps, app.application_id)


SWEEP_BUDGET = 200


def terminate_overdue(deps: ApplicationDeps, budget: int = SWEEP_BUDGET) -> list[str]:
    """The scheduled side of 容缺: every application still waiting for materials after its
    supplement deadline is terminated (one Query on the sparse tolerance index, never a
    full-table read). A failing one is left for the next run; it never stops the others."""
    from chalicelib.observability import logger

    terminated = []
    for application_id in deps.store.overdue_tolerated(iso(deps.clock.now()), budget):
        try:
            if terminate(deps, application_id).state is State.TERMINATED:
                terminated.append(application_id)
        except Exception:
            logger.exception(
                "terminating an overdue application failed",
                extra={"application_id": application_id},
            )
    return terminated


def terminate(deps: ApplicationDeps, application_id: str) -> Application:
    from chalicelib.domain.clocks import Outcome as ClockOutcome

    now = deps.clock.now()

    def apply(a: Application) -> Application | None:
        if a.state is not State.TOLERATED:
            return None
        a.state = State.TERMINATED
        a.supplement_due = None
        a.add_event(now, "terminated", reason="容缺材料逾期未补齐")
        return a

    updated = _change(deps, application_id, apply)
    if updated is None:
        return _load(deps, application_id)[0]
    _clock_call(
        deps, updated, "supplement", "stop", outcome=ClockOutcome.CANCELLED, reason="逾期未补齐"
    )
    _clock_call(
        deps, updated, "promised", "stop", outcome=ClockOutcome.CANCELLED, reason="办件终止"
    )
    _audit(
        deps,
        SYSTEM,
        "application.terminated",
        "application",
        application_id,
        None,
        _summary(updated),
    )
    _notify(
        deps,
        updated,
        "terminated",
        f"办件已终止：{updated.item_name}",
        "容缺受理的材料未在期限内补齐，办件已终止。如需办理请重新申请。",
    )
    _record_facts(deps, updated)
    _bundle_moves_on(deps, updated)
    return updated
