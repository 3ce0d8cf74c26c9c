"""跨省通办 use cases: the outbound queue's consumer (a case forwarded to the region that decides
it, a step of an inbound case called back to the region it came from), the signed callbacks
that move a forwarded case, and the inbound cases other regions forward to Qingpu.

At least once everywhere: every message has a stable id (the receiver de-duplicates on it), a
failed send is retried by the queue (then its DLQ), a callback recorded twice changes nothing,
an inbound case sent twice is the same application (its id follows from region and case).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.domain import crossregion as domain
from chalicelib.domain.applications import Application, Material, State
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal, Role
from chalicelib.service_layer.applications.common import ApplicationDeps, change_application
from chalicelib.service_layer.applications.decisions import record_remote_decision
from chalicelib.service_layer.applications.submission import hand_to_prereview
from chalicelib.service_layer.audit import record_change

if TYPE_CHECKING:
    from chalicelib.service_layer.ports.crossregion import CrossRegionGateway

_NAMESPACE = uuid.UUID("5e0c9a7d-3b2f-4d18-9c61-7a4e2b8f1d05")


class SendFailed(RuntimeError):
    """The region did not take the message: the queue delivers it again."""


@dataclass
class CrossRegionDeps:
    applications: ApplicationDeps
    gateway: CrossRegionGateway

    @classmethod
    def from_container(cls, c: Any) -> CrossRegionDeps:
        return cls(applications=ApplicationDeps.from_container(c), gateway=c.cross_region_gateway)


def _region_principal(region: str) -> Principal:
    return Principal(f"region:{region}", Role.ADMIN, domain.REGIONS.get(region, region))


def _load(deps: CrossRegionDeps, application_id: str) -> Application:
    found = deps.applications.store.get(application_id)
    if found is None:
        raise NotFound("申请不存在", code="application_not_found")
    return found[0]


# ---- the outbound queue ---------------------------------------------------------------------


def deliver(deps: CrossRegionDeps, message: dict[str, Any]) -> str:
    """One message of the outbound queue. Raises SendFailed when the region did not take it."""
    app = _load(deps, str(message["application_id"]))
    leg = app.remote
    if leg is None:
        return "no_leg"
    if message.get("kind") == "case":
        return _forward_case(deps, app, leg)
    return _call_back(deps, app, leg, str(message["event"]), message)


def _forward_case(deps: CrossRegionDeps, app: Application, leg: dict[str, Any]) -> str:
    if leg["direction"] != domain.OUTBOUND or leg["state"] != "forwarding":
        return "already_forwarded"
    payload = {
        "kind": "case",
        "origin_region": domain.LOCAL_REGION,
        "origin_case_id": app.application_id,
        "item_code": app.item_code,
        "item_name": app.item_name,
        "applicant": {"name": app.applicant_name, "subject_id": app.subject_id},
        "fields": app.fields,
        "materials": [vars(m) for m in app.materials],
        "findings": [f.code for f in app.findings],
        "accepted_at": app.accepted_at,
    }
    result = deps.gateway.send(leg["region"], f"case:{app.application_id}", payload)
    if not result.delivered:
        raise SendFailed(result.error or f"http_{result.status_code}")
    now = deps.applications.clock.now()

    def forwarded(a: Application) -> Application | None:
        if a.remote is None or a.remote["state"] != "forwarding":
            return None
        a.remote["state"] = "forwarded"
        a.remote["forwarded_at"] = now.isoformat()
        a.add_event(now, "forwarded", region=leg["region"])
        return a

    updated = change_application(deps.applications, app.application_id, forwarded)
    if updated is not None:
        record_change(
            deps.applications.audit_log,
            SYSTEM,
            "application.forwarded",
            "application",
            app.application_id,
            None,
            {"region": leg["region"], "state": updated.state.value},
            {},
        )
    return "forwarded"


def _call_back(
    deps: CrossRegionDeps,
    app: Application,
    leg: dict[str, Any],
    event: str,
    message: dict[str, Any],
) -> str:
    if leg["direction"] != domain.INBOUND:
        return "not_inbound"
    payload = {
        "kind": "callback",
        "region": domain.LOCAL_REGION,
        "case_id": leg["remote_case_id"],
        "handling_case_id": app.application_id,
        "event": event,
        "state": app.state.value,
        "message": message.get("message", ""),
        "reasons": list(app.decision.reasons) if app.decision else [],
        "findings": [f.message for f in app.findings if f.blocking],
        "result": {"licence_number": app.issued_licence} if app.issued_licence else None,
    }
    message_id = f"callback:{app.application_id}:{event}:{message.get('round', 0)}"
    result = deps.gateway.send(leg["region"], message_id, payload)
    if not result.delivered:
        raise SendFailed(result.error or f"http_{result.status_code}")
    return "called_back"


# ---- callbacks on the cases forwarded from here ---------------------------------------------


@dataclass(frozen=True)
class Callback:
    region: str
    case_id: str  # ours: the application forwarded
    event: str  # received | accepted | approved | rejected
    remote_case_id: str | None = None
    reasons: tuple[str, ...] = ()
    licence_number: str | None = None
    mail_tracking_no: str | None = None


def receive_callback(
    deps: CrossRegionDeps, headers: dict[str, str], body: bytes, callback: Callback
) -> Application:
    """A signed step of a case we forwarded: received and accepted are kept on the leg, the
    decision moves the case (once: a callback sent again answers the case as it is)."""
    domain.require_region(callback.region)
    deps.gateway.verify(callback.region, headers, body)
    app = _load(deps, callback.case_id)
    leg = app.remote
    if leg is None or leg["direction"] != domain.OUTBOUND or leg["region"] != callback.region:
        raise NotFound("申请不存在", code="application_not_found")
    if callback.event not in domain.OUTBOUND_EVENTS:
        raise InvalidInput("未知的办理环节", code="unknown_event")
    now = deps.applications.clock.now()

    def keep(a: Application) -> Application | None:
        if a.remote is None:
            return None
        if a.remote["state"] == "forwarding":
            a.remote["state"] = "forwarded"  # the other side has it: our send was not lost
        if not domain.record_event(a.remote, callback.event, now.isoformat()):
            return None
        if callback.remote_case_id:
            a.remote["remote_case_id"] = callback.remote_case_id
        a.add_event(now, f"remote_{callback.event}", region=callback.region)
        return a

    updated = change_application(deps.applications, app.application_id, keep)
    if updated is not None:
        record_change(
            deps.applications.audit_log,
            _region_principal(callback.region),
            f"application.remote_{callback.event}",
            "application",
            app.application_id,
            None,
            {"region": callback.region, "event": callback.event},
            {},
        )
    if callback.event not in domain.DECISIONS:
        return updated or app
    current = _load(deps, app.application_id)
    if current.state not in (State.ACCEPTED, State.TOLERATED, State.NEEDS_MANUAL_REVIEW):
        return current
    result = {
        k: v
        for k, v in (
            ("licence_number", callback.licence_number),
            ("mail_tracking_no", callback.mail_tracking_no),
        )
        if v
    }
    try:
        return record_remote_decision(
            deps.applications,
            app.application_id,
            callback.event == "approved",
            list(callback.reasons) or ([] if callback.event == "approved" else ["办理地不予批准"]),
            f"region:{callback.region}",
            result or None,
        )
    except RuleViolation:
        return _load(deps, app.application_id)  # decided meanwhile by the same callback


# ---- inbound cases from other regions --------------------------------------------------------


@dataclass(frozen=True)
class InboundCase:
    region: str
    remote_case_id: str
    item_code: str
    applicant_name: str
    subject_id: str
    fields: dict[str, Any]
    materials: list[Material]


def receive_case(
    deps: CrossRegionDeps, headers: dict[str, str], body: bytes, case: InboundCase
) -> Application:
    """A case another region accepted for an item decided here: it becomes an application here
    (channel cross_region, owned by that region), pre-reviewed and decided here; each step is
    called back to the region (applications' notices go there). Sent twice, it is one."""
    domain.require_region(case.region)
    deps.gateway.verify(case.region, headers, body)
    app_deps = deps.applications
    item = app_deps.store.latest_item(case.item_code)
    if item is None:
        raise NotFound("办事事项不存在", code="item_not_found")
    if item.handled_in not in (None, domain.LOCAL_REGION):
        raise RuleViolation("该事项不在青浦办理", code="not_handled_here")
    application_id = uuid.uuid5(_NAMESPACE, f"{case.region}\n{case.remote_case_id}").hex
    found = app_deps.store.get(application_id)
    if found is not None:
        return found[0]
    now = app_deps.clock.now()
    names = {f.name for f in item.fields}
    app = Application(
        application_id=application_id,
        item_code=item.code,
        item_version=item.version,
        item_name=item.name,
        department_id=item.department_id,
        applicant_user_id=domain.partner_id(case.region),
        subject_id=case.subject_id,
        applicant_name=case.applicant_name,
        fields={k: v for k, v in case.fields.items() if k in names},
        materials=list(case.materials),
        locked={},
        prefilled_fields=0,
        total_fields=len(item.fields),
        exempt_materials=[],
        commitment=False,
        channel="cross_region",
        state=State.SUBMITTED,
        created_at=now.isoformat(),
        updated_at=now.isoformat(),
        effects_since=now.isoformat(),
        remote=domain.new_leg(domain.INBOUND, case.region, now.isoformat(), case.remote_case_id),
    )
    app.add_event(now, "received", region=case.region, remote_case_id=case.remote_case_id)
    if not app_deps.store.create(app):
        existing = app_deps.store.get(application_id)
        if existing is None:
            raise Conflict("申请编号冲突，请重试", code="application_id_conflict")
        return existing[0]
    record_change(
        app_deps.audit_log,
        _region_principal(case.region),
        "application.received_from_region",
        "application",
        application_id,
        None,
        {"region": case.region, "item": item.code, "state": app.state.value},
        {},
    )
    hand_to_prereview(app_deps, app)
    return app
