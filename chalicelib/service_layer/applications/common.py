"""What every application use case shares: its dependencies, loading and changing an
application on the version read, its clocks, notices and audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import Application, ServiceItem
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.identity import Principal
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Resource, require_item

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.deadlines import DeadlineDeps
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import TimeSource
    from chalicelib.service_layer.ports.applications import ApplicationStore
    from chalicelib.service_layer.ports.bookings import BookingStore
    from chalicelib.service_layer.ports.signing import Signer
    from chalicelib.service_layer.ports.transactions import Transactions
    from chalicelib.service_layer.ports.wallet import MaterialLibrary


QUEUE = "application-prereview"
CROSS_REGION_QUEUE = "cross-region-outbound"


_SAVE_ATTEMPTS = 3


@dataclass
class ApplicationDeps:
    store: ApplicationStore
    notifier: Notifier
    audit_log: AuditLog
    clock: TimeSource
    deadlines: DeadlineDeps
    enqueue: Callable[[dict[str, Any]], None]
    signer: Signer
    completed: Callable[[str, str], None]  # (handling type, id): the container invites a review
    transactions: Transactions | None = None  # a pre-review's writes in one; None: one by one
    directory: Any = None  # department names in reports
    # Materials accepted in earlier approved applications (免于提交); None: none kept.
    library: MaterialLibrary | None = None
    # An approval's wallet effects (materials kept, licence expiry reminder); idempotent.
    approved: Callable[[Application, domain.ELicence | None], None] | None = None
    # A case of a 一件事 bundle reached its end (id): the bundle moves on. None: no bundles.
    case_finished: Callable[[str], None] | None = None
    bookings: BookingStore | None = None  # video sessions that accept an application
    # 跨省通办: hands a message to the outbound cross-region queue (a case to forward, or a
    # step of an inbound case to call back). None: no partner regions.
    forward: Callable[[dict[str, Any]], None] | None = None

    @classmethod
    def from_container(cls, c: Any) -> ApplicationDeps:
        from chalicelib.service_layer.deadlines import DeadlineDeps

        def enqueue(message: dict[str, Any]) -> None:
            c.aws.client("sqs").send_message(
                QueueUrl=c.aws.queue_url(QUEUE), MessageBody=json.dumps(message)
            )

        def forward(message: dict[str, Any]) -> None:
            c.aws.client("sqs").send_message(
                QueueUrl=c.aws.queue_url(CROSS_REGION_QUEUE),
                MessageBody=json.dumps({**message, "correlation_id": get_correlation_id()}),
            )

        return cls(
            store=c.application_store,
            directory=c.directory,
            notifier=c.notifier,
            audit_log=c.audit_log,
            clock=c.clock,
            deadlines=DeadlineDeps.from_container(c),
            enqueue=enqueue,
            signer=c.signer,
            completed=c.handling_completed_strict,
            transactions=c.transactions,
            library=c.wallet_store,
            approved=c.application_approved,
            case_finished=c.bundle_case_finished,
            bookings=c.booking_store,
            forward=forward,
        )


def _audit(
    deps: ApplicationDeps,
    actor: Principal,
    action: str,
    subject_type: str,
    subject_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    **details: Any,
) -> None:
    record_change(deps.audit_log, actor, action, subject_type, subject_id, before, after, details)


def _summary(app: Application) -> dict[str, Any]:
    """What the audit keeps of an application: state and findings, no personal data."""
    return {
        "state": app.state.value,
        "item": f"{app.item_code}@v{app.item_version}",
        "findings": [f"{f.reason.value}:{f.code}:{f.target}" for f in app.findings],
        "supplement_rounds": app.supplement_rounds,
    }


def _reusable(deps: ApplicationDeps, subject: str, now: datetime) -> dict[str, str]:
    """Material code -> source of the subject's kept materials usable today."""
    from chalicelib.domain.wallet import best_library_material

    if deps.library is None or not subject:
        return {}
    today = now.astimezone(CHINA_TZ).date()
    kept = deps.library.materials(subject)
    found = {}
    for code in {m.code for m in kept}:
        best = best_library_material(kept, code, today)
        if best is not None:
            found[code] = best.source
    return found


def _enqueue_prereview(deps: ApplicationDeps, app: Application) -> bool:
    """Hand the round to pre-review. The application is stored as waiting for it, so a lost
    message is sent again by the repair job: the request that stored it need not fail."""
    from chalicelib.observability import logger

    try:
        deps.enqueue(
            {
                "application_id": app.application_id,
                "round": app.review_round,
                "correlation_id": get_correlation_id(),
            }
        )
    except Exception:
        logger.exception(
            "pre-review hand-over failed; the repair job sends it again",
            extra={"application_id": app.application_id, "round": app.review_round},
        )
        return False
    return True


def _resource(app: Application) -> Resource:
    """An application is its subject's. One filed by an agent is not the agent's own: the
    agent reaches it only while acting for the subject under an authorisation in force."""
    return Resource(
        owner_user_id=None if app.authorisation_id else app.applicant_user_id,
        owner_subject_id=app.subject_id or None,
        department_id=app.department_id,
    )


def _require_acting_item(principal: Principal, app: Application) -> None:
    if principal.authorisation_id is not None:
        require_item(principal, app.item_code)


def _load(deps: ApplicationDeps, application_id: str) -> tuple[Application, int]:
    found = deps.store.get(application_id)
    if found is None:
        raise NotFound("申请不存在", code="application_not_found")
    return found


def _item_of(deps: ApplicationDeps, app: Application) -> ServiceItem:
    """The item version an application was filed under: versions are never deleted."""
    item = deps.store.item_version(app.item_code, app.item_version)
    if item is None:
        raise NotFound(
            f"办事事项 {app.item_code} 第{app.item_version}版不存在", code="item_not_found"
        )
    return item


@overload
def _change(
    deps: ApplicationDeps, application_id: str, change: Callable[[Application], Application]
) -> Application: ...


@overload
def _change(
    deps: ApplicationDeps,
    application_id: str,
    change: Callable[[Application], Application | None],
) -> Application | None: ...


def _change(
    deps: ApplicationDeps,
    application_id: str,
    change: Callable[[Application], Application | None],
) -> Application | None:
    """Read, change, write on the version read; retried when someone wrote in between.
    `change` answers None when there is nothing to do (an idempotent redelivery)."""
    for attempt in range(_SAVE_ATTEMPTS):
        app, version = _load(deps, application_id)
        updated = change(Application.from_dict(app.to_dict()))
        if updated is None:
            return None
        try:
            deps.store.save(updated, version)
        except Conflict:
            if attempt == _SAVE_ATTEMPTS - 1:
                raise
            continue
        return updated
    raise AssertionError("unreachable")


# Read, change and write one application on the version read (see `_change`).
change_application = _change


def _clock_key(app: Application, kind: str) -> str:
    return f"{app.application_id}:{kind}:{app.supplement_rounds if kind == 'supplement' else 0}"


def _start(deps: ApplicationDeps, app: Application, kind: str, limit: int, **kw: Any) -> str:
    from chalicelib.service_layer import deadlines

    clock = deadlines.start_clock(
        deps.deadlines,
        subject_type="application",
        subject_id=app.application_id,
        kind=f"application_{kind}",
        limit=max(limit, 1),
        key=_clock_key(app, kind),
        label=app.item_name,
        **kw,
    )
    return clock.clock_id


def _clock_call(deps: ApplicationDeps, app: Application, kind: str, action: str, **kw: Any) -> None:
    """Pause, resume or stop a clock if it is in a state that allows it (redeliveries)."""
    from chalicelib.domain.clocks import ClockState
    from chalicelib.service_layer import deadlines

    clock_id = app.clocks.get(kind)
    if clock_id is None:
        return
    clock = deps.deadlines.clocks.get(clock_id)
    if clock is None:
        return
    paused = clock.state is ClockState.PAUSED
    if action == "pause" and clock.is_open and not paused:
        deadlines.pause_clock(deps.deadlines, clock_id, **kw)
    elif action == "resume" and paused:
        deadlines.resume_clock(deps.deadlines, clock_id, **kw)
    elif action == "stop" and clock.is_open:
        if paused:
            deadlines.resume_clock(deps.deadlines, clock_id)
        deadlines.stop_clock(deps.deadlines, clock_id, **kw)


# What a bundle's case tells the person itself: requests for materials. Its acceptance and
# decision are told once for the whole bundle, when every case is done.
_BUNDLE_CASE_NOTICES = frozenset({"supplement_requested", "tolerated"})


def _notify(deps: ApplicationDeps, app: Application, event: str, title: str, body: str) -> None:
    if app.remote is not None and app.remote.get("direction") == "inbound":
        # The person applied in another region: that region tells them, from our callback.
        if deps.forward is not None:
            deps.forward(
                {
                    "kind": "callback",
                    "application_id": app.application_id,
                    "event": event,
                    "round": app.review_round,
                    "message": body,
                }
            )
        return
    if app.bundle_application_id and event not in _BUNDLE_CASE_NOTICES:
        return
    deps.notifier.notify(
        NotificationRequest(
            business_key=f"application:{app.application_id}:{event}:{app.review_round}",
            recipient_kind=RecipientKind.USER,
            recipient_id=app.applicant_user_id,
            category=f"application.{event}",
            title=title,
            body=body,
            data={"application_id": app.application_id, "state": app.state.value},
            correlation_id=get_correlation_id(),
        )
    )


def _notify_department(deps: ApplicationDeps, app: Application) -> None:
    deps.notifier.notify(
        NotificationRequest(
            business_key=f"application:{app.application_id}:to_department:{app.review_round}",
            recipient_kind=RecipientKind.DEPARTMENT,
            recipient_id=app.department_id,
            category="application.accepted",
            title=f"新办件待审批：{app.item_name}",
            body=f"办件 {app.application_id} 已通过智能预审，请在承诺时限内办结。",
            data={"application_id": app.application_id, "item_code": app.item_code},
            correlation_id=get_correlation_id(),
        )
    )


def _bundle_moves_on(deps: ApplicationDeps, app: Application) -> None:
    """A bundle's case ended: its bundle starts the members waiting for it, or completes.
    Idempotent (the bundle starts a member once, notifies once), so the repair job and
    redeliveries may call it again."""
    if app.bundle_application_id and deps.case_finished is not None:
        deps.case_finished(app.application_id)


def iso(moment: datetime) -> str:
    """Fixed-width China-time text: sorts like the instants it names."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="microseconds")
