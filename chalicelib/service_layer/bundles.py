"""一件事 use cases: the bundles as data, one form pre-filled once, one case per member (an
ordinary application of the member item, on its department's pre-review queue, with its own
补正 and clocks), members that wait for another start when it is approved, one notice when the
whole is done, and the bundle's elapsed time (the slowest path) for the monthly report.

Event-driven: a case's end (decision, pre-review rejection, termination) calls `case_finished`
through the applications' deps; the decision's effects stay pending until it has run, so the
repair job runs it again after a crash. Every step is idempotent: a member's case id follows
from the bundle application and the member, its creation is conditional, the completion
notice has one business key.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.domain import applications as items_domain
from chalicelib.domain import bundles as domain
from chalicelib.domain.applications import Application, Material, ServiceItem, State
from chalicelib.domain.bundles import Bundle, BundleApplication, BundleFacts
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.applications.common import ApplicationDeps
from chalicelib.service_layer.applications.prefill import PREFILL_TTL
from chalicelib.service_layer.applications.submission import hand_to_prereview
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, require

if TYPE_CHECKING:
    from chalicelib.service_layer.ports.bundles import BundleStore

PREFILL_KIND = "bundle_prefill"
_NAMESPACE = uuid.UUID("0b7d3c52-8e1f-4a9b-b6c4-2f5e9a1d7c30")
_SAVE_ATTEMPTS = 3


@dataclass
class BundleDeps:
    store: BundleStore
    applications: ApplicationDeps

    @classmethod
    def from_container(cls, c: Any) -> BundleDeps:
        return cls(store=c.bundle_store, applications=ApplicationDeps.from_container(c))


# ---- bundles as data --------------------------------------------------------------------


def _members(deps: BundleDeps, bundle: Bundle) -> dict[str, ServiceItem]:
    found: dict[str, ServiceItem] = {}
    for member in bundle.members:
        item = deps.applications.store.latest_item(member.item_code)
        if item is not None:
            found[item.code] = item
    return found


def publish_bundle(deps: BundleDeps, principal: Principal, bundle: Bundle) -> Bundle:
    require(principal, Action.MANAGE_ITEMS)
    domain.validate_bundle(bundle, _members(deps, bundle))
    before = deps.store.get_bundle(bundle.code)
    deps.store.put_bundle(bundle)
    record_change(
        deps.applications.audit_log,
        principal,
        "bundle.published",
        "bundle",
        bundle.code,
        {"members": [m.item_code for m in before.members]} if before else None,
        {"members": [m.item_code for m in bundle.members]},
        {},
    )
    return bundle


def get_bundle(deps: BundleDeps, code: str) -> tuple[Bundle, dict[str, ServiceItem]]:
    bundle = deps.store.get_bundle(code)
    if bundle is None:
        raise NotFound("一件事不存在", code="bundle_not_found")
    return bundle, _members(deps, bundle)


def list_bundles(deps: BundleDeps, limit: int, start_key: dict[str, Any] | None) -> Any:
    return deps.store.list_bundles(limit, start_key)


def describe(bundle: Bundle, members: dict[str, ServiceItem]) -> dict[str, Any]:
    """What the guide shows of a bundle: members with departments and order, the fields asked
    once for all of them, the promised time of the whole (the slowest chain)."""
    known = [members[m.item_code] for m in bundle.members if m.item_code in members]
    return {
        "code": bundle.code,
        "name": bundle.name,
        "description": bundle.description,
        "subject_kind": bundle.subject_kind,
        "members": [
            {
                "item_code": m.item_code,
                "item_name": members[m.item_code].name if m.item_code in members else None,
                "department_id": (
                    members[m.item_code].department_id if m.item_code in members else None
                ),
                "promised_days": (
                    members[m.item_code].promised_days if m.item_code in members else None
                ),
                "needs": list(m.needs),
            }
            for m in bundle.members
        ],
        "order": domain.order(bundle),
        "shared_fields": domain.shared_fields(known),
        "promised_days": domain.promised_days(bundle, members)
        if len(known) == len(bundle.members)
        else None,
    }


# ---- one form, pre-filled once ------------------------------------------------------------


def prefill_for(
    deps: BundleDeps, principal: Principal, code: str
) -> tuple[list[items_domain.PrefilledField], list[str], str]:
    """The one form of the bundle: every member's fields, each name once, pre-filled once from
    the person's profile, e-licences and earlier applications."""
    require(principal, Action.APPLY)
    bundle, members = get_bundle(deps, code)
    fields, exempt, filled = _prefill(deps, principal.user_id, principal.subject_id, members)
    locked = {f.name: f.value for f in fields if f.verified}
    app_deps = deps.applications
    token = app_deps.signer.sign(
        PREFILL_KIND,
        {"u": principal.user_id, "b": bundle.code, "l": locked, "x": exempt, "p": filled},
        app_deps.clock.now() + PREFILL_TTL,
    )
    return fields, exempt, token


def _prefill(
    deps: BundleDeps, user_id: str, subject_id: str | None, members: dict[str, ServiceItem]
) -> tuple[list[items_domain.PrefilledField], list[str], dict[str, int]]:
    store = deps.applications.store
    subject = subject_id or ""
    profile = store.get_profile(subject) if subject else None
    licences = store.licences(subject) if subject else []
    history: dict[str, Any] = {}
    for app in reversed(store.by_owner(user_id, 20, None).items):
        history.update({k: v for k, v in app.fields.items() if v not in (None, "")})
    now = deps.applications.clock.now()
    fields: dict[str, items_domain.PrefilledField] = {}
    exempt: list[str] = []
    filled: dict[str, int] = {}
    for item in members.values():
        result = items_domain.prefill(item, profile, licences, history, now)
        filled[item.code] = result.filled
        for f in result.fields:
            fields.setdefault(f.name, f)
        exempt += [m for m in result.exempt_materials if m not in exempt]
    return list(fields.values()), exempt, filled


# ---- submission: one bundle application, one case per member ------------------------------


@dataclass(frozen=True)
class BundleSubmission:
    bundle_code: str
    prefill_token: str
    fields: dict[str, Any]
    materials: list[Material]


def submit(
    deps: BundleDeps,
    principal: Principal,
    submission: BundleSubmission,
    idempotency_key: str | None,
) -> BundleApplication:
    """Store the bundle application, then start the members that wait for nobody. A rerun of
    the same keyed request finds the same bundle application and starts nothing new."""
    require(principal, Action.APPLY)
    bundle, _ = get_bundle(deps, submission.bundle_code)
    token = _verify(deps, principal, submission)
    app_deps = deps.applications
    now = app_deps.clock.now()
    bundle_application_id = (
        uuid.uuid5(_NAMESPACE, f"{principal.user_id}\n{idempotency_key}").hex
        if idempotency_key
        else uuid.uuid4().hex
    )
    application = BundleApplication(
        bundle_application_id=bundle_application_id,
        bundle_code=bundle.code,
        bundle_name=bundle.name,
        applicant_user_id=principal.user_id,
        subject_id=principal.subject_id or "",
        channel="online",
        created_at=now.isoformat(),
        cases={m.item_code: _case_id(bundle_application_id, m.item_code) for m in bundle.members},
        fields=dict(submission.fields),
        materials=[asdict(m) for m in submission.materials],
        locked=dict(token["l"]),
        exempt_materials=list(token["x"]),
        prefilled={code: int(n) for code, n in dict(token["p"]).items()},
    )
    if not deps.store.create_application(application):
        found = deps.store.get_application(bundle_application_id)
        if found is None:
            raise Conflict("申请编号冲突，请重试", code="application_id_conflict")
        advance(deps, bundle_application_id)
        return found[0]
    record_change(
        app_deps.audit_log,
        principal,
        "bundle_application.submitted",
        "bundle_application",
        bundle_application_id,
        None,
        {"bundle": bundle.code, "members": sorted(application.cases)},
        {},
    )
    advance(deps, bundle_application_id)
    return application


def _case_id(bundle_application_id: str, item_code: str) -> str:
    return uuid.uuid5(_NAMESPACE, f"{bundle_application_id}\n{item_code}").hex


def _verify(deps: BundleDeps, principal: Principal, submission: BundleSubmission) -> Any:
    from chalicelib.domain.errors import TokenRefused

    app_deps = deps.applications
    try:
        token = app_deps.signer.verify(PREFILL_KIND, submission.prefill_token, app_deps.clock.now())
    except TokenRefused as exc:
        raise InvalidInput(
            "预填凭证无效或已过期，请重新获取预填数据", code="invalid_prefill_token"
        ) from exc
    if token.get("u") != principal.user_id or token.get("b") != submission.bundle_code:
        raise InvalidInput("预填凭证无效，请重新获取预填数据", code="invalid_prefill_token")
    tampered = items_domain.check_locked(token["l"], submission.fields)
    if tampered:
        raise InvalidInput(
            "核验数据不可修改",
            code="locked_field_changed",
            fields=[
                {"field": f.target, "message": f.message, "type": f.reason.value} for f in tampered
            ],
        )
    return token


# ---- moving on: members start, the whole completes ----------------------------------------


def case_finished(deps: BundleDeps, application_id: str) -> None:
    found = deps.applications.store.get(application_id)
    if found is None or not found[0].bundle_application_id:
        return
    advance(deps, found[0].bundle_application_id)


def _states(deps: BundleDeps, application: BundleApplication) -> dict[str, Application]:
    result = {}
    for code in application.started:
        found = deps.applications.store.get(application.cases[code])
        if found is not None:
            result[code] = found[0]
    return result


def advance(deps: BundleDeps, bundle_application_id: str) -> BundleApplication:
    """Start every member whose needs are approved (its case is created once, by its fixed id,
    and handed to its department's pre-review); when every member is decided or can never
    start, tell the person once and keep the bundle's facts for the report."""
    for attempt in range(_SAVE_ATTEMPTS):
        found = deps.store.get_application(bundle_application_id)
        if found is None:
            raise NotFound("一件事申请不存在", code="bundle_application_not_found")
        application, version = found
        bundle = deps.store.get_bundle(application.bundle_code)
        if bundle is None:
            raise NotFound("一件事不存在", code="bundle_not_found")
        states = {code: app.state for code, app in _states(deps, application).items()}
        starting = domain.startable(bundle, set(application.started), states)
        for code in starting:
            _start_case(deps, application, code)
        if starting:
            application.started += starting
            states.update({code: State.SUBMITTED for code in starting})
        done = not application.done and domain.finished(bundle, states)
        if done:
            _complete(deps, bundle, application, states)
            application.completed_at = deps.applications.clock.now().isoformat()
        if not starting and not done:
            return application
        try:
            deps.store.save_application(application, version)
        except Conflict:
            if attempt == _SAVE_ATTEMPTS - 1:
                raise
            continue
        return application
    raise AssertionError("unreachable")


def _start_case(deps: BundleDeps, application: BundleApplication, code: str) -> Application:
    app_deps = deps.applications
    item = app_deps.store.latest_item(code)
    if item is None:
        raise NotFound(f"事项 {code} 不存在", code="item_not_found")
    case_id = application.cases[code]
    existing = app_deps.store.get(case_id)
    if existing is not None:
        hand_to_prereview(app_deps, existing[0])
        return existing[0]
    now = app_deps.clock.now()
    names = {f.name for f in item.fields}
    codes = {m.code for m in item.materials}
    profile = app_deps.store.get_profile(application.subject_id)
    case = Application(
        application_id=case_id,
        item_code=item.code,
        item_version=item.version,
        item_name=item.name,
        department_id=item.department_id,
        applicant_user_id=application.applicant_user_id,
        subject_id=application.subject_id,
        applicant_name=profile.name if profile else "",
        fields={k: v for k, v in application.fields.items() if k in names},
        materials=[Material(**m) for m in application.materials if m["code"] in codes],
        locked={k: v for k, v in application.locked.items() if k in names},
        prefilled_fields=application.prefilled.get(code, 0),
        total_fields=len(item.fields),
        exempt_materials=[m for m in application.exempt_materials if m in codes],
        commitment=False,
        channel=application.channel,
        state=State.SUBMITTED,
        created_at=now.isoformat(),
        updated_at=now.isoformat(),
        effects_since=now.isoformat(),
        bundle_application_id=application.bundle_application_id,
        filed_by=application.filed_by,
    )
    case.add_event(
        now, "submitted", by=application.applicant_user_id, bundle=application.bundle_code
    )
    if app_deps.store.create(case):
        record_change(
            app_deps.audit_log,
            SYSTEM,
            "application.submitted",
            "application",
            case_id,
            None,
            {"state": case.state.value, "bundle_application_id": application.bundle_application_id},
            {},
        )
    hand_to_prereview(app_deps, case)
    return case


def _complete(
    deps: BundleDeps, bundle: Bundle, application: BundleApplication, states: dict[str, State]
) -> None:
    """One notice for the whole (one business key), and the bundle's facts: from submission to
    the last member's decision, beside the promised time of the slowest chain."""
    app_deps = deps.applications
    approved = [code for code in states if states[code] is State.APPROVED]
    all_approved = len(approved) == len(bundle.members)
    body = (
        f"您申请的“{bundle.name}”已全部办结（{len(approved)}项）。"
        if all_approved
        else f"您申请的“{bundle.name}”已办结：准予{len(approved)}项，"
        f"共{len(bundle.members)}项，详情请查看办件。"
    )
    app_deps.notifier.notify(
        NotificationRequest(
            business_key=f"bundle_application:{application.bundle_application_id}:completed",
            recipient_kind=RecipientKind.USER,
            recipient_id=application.applicant_user_id,
            category="bundle_application.completed",
            title=f"办结通知：{bundle.name}",
            body=body,
            data={"bundle_application_id": application.bundle_application_id},
            correlation_id=get_correlation_id(),
        )
    )
    members = _members(deps, bundle)
    created = datetime.fromisoformat(application.created_at).astimezone(CHINA_TZ)
    now = app_deps.clock.now().astimezone(CHINA_TZ)
    days = app_deps.deadlines.calendar().working_days_between(created.date(), now.date())
    deps.store.put_facts(
        created.strftime("%Y-%m"),
        BundleFacts(
            bundle_application_id=application.bundle_application_id,
            bundle_code=bundle.code,
            channel=application.channel,
            approved=all_approved,
            working_days=days,
            promised_days=domain.promised_days(bundle, members),
        ),
    )
    record_change(
        app_deps.audit_log,
        SYSTEM,
        "bundle_application.completed",
        "bundle_application",
        application.bundle_application_id,
        None,
        {"approved": sorted(approved), "working_days": days},
        {},
    )


# ---- reading ------------------------------------------------------------------------------


def read(deps: BundleDeps, principal: Principal, bundle_application_id: str) -> dict[str, Any]:
    """The whole and each case: started cases as stored, waiting members with what they wait
    for, members that can never start as blocked."""
    require(principal, Action.READ_APPLICATION)
    found = deps.store.get_application(bundle_application_id)
    if found is None:
        raise NotFound("一件事申请不存在", code="bundle_application_not_found")
    application = found[0]
    require(
        principal,
        Action.READ_APPLICATION,
        Resource(owner_user_id=application.applicant_user_id),
    )
    bundle, members = get_bundle(deps, application.bundle_code)
    started = _states(deps, application)
    states = {code: app.state for code, app in started.items()}
    stuck = domain.blocked(bundle, states)
    rows = []
    for member in bundle.members:
        case = started.get(member.item_code)
        item = members.get(member.item_code)
        state = (
            case.state.value if case else ("blocked" if member.item_code in stuck else "waiting")
        )
        rows.append(
            {
                "item_code": member.item_code,
                "item_name": item.name if item else None,
                "department_id": item.department_id if item else None,
                "needs": list(member.needs),
                "application_id": case.application_id if case else None,
                "state": state,
                "findings": [f.code for f in case.findings] if case else [],
                "supplement_rounds": case.supplement_rounds if case else 0,
            }
        )
    elapsed = None
    if application.completed_at:
        calendar = deps.applications.deadlines.calendar()
        elapsed = calendar.working_days_between(
            datetime.fromisoformat(application.created_at).astimezone(CHINA_TZ).date(),
            datetime.fromisoformat(application.completed_at).astimezone(CHINA_TZ).date(),
        )
    return {
        "bundle_application_id": application.bundle_application_id,
        "bundle_code": bundle.code,
        "bundle_name": bundle.name,
        "channel": application.channel,
        "state": "completed" if application.done else "in_progress",
        "created_at": application.created_at,
        "completed_at": application.completed_at,
        "promised_days": domain.promised_days(bundle, members)
        if len(members) == len(bundle.members)
        else None,
        "elapsed_working_days": elapsed,
        "cases": rows,
    }


def report_rows(deps: BundleDeps, month: str) -> list[dict[str, Any]]:
    """The month's completed bundle applications by bundle: elapsed time of the whole (the
    slowest path) beside the bundle's promised time."""
    by_bundle: dict[str, list[BundleFacts]] = {}
    for f in deps.store.facts(month):
        by_bundle.setdefault(f.bundle_code, []).append(f)
    rows = []
    for code, facts in sorted(by_bundle.items()):
        bundle = deps.store.get_bundle(code)
        rows.append(
            {
                "bundle_code": code,
                "bundle_name": bundle.name if bundle else None,
                "promised_working_days": max(f.promised_days for f in facts),
                **domain.bundle_kpis(facts),
            }
        )
    return rows
