"""Application use cases: the guide, pre-fill, submission, machine pre-review (the queue
consumer), 补正 and 容缺 supplements, department and automatic decisions, monthly KPIs.

Clocks (the deadline engine, one per application and kind, keyed so retries start one):
- "application_acceptance": from submission, 5 working days to accept or list what is missing
  (行政许可法); a 补正 request pauses it, the supplement resumes it; stopped on acceptance.
- "application_promised": the department's promised limit, from acceptance to the decision.
- "application_supplement": 容缺 supplement deadline (≤ the promised limit); past it, the
  application is terminated.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, overload

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import (
    DECIDABLE,
    Application,
    Decision,
    KpiFacts,
    Material,
    Outcome,
    Prefill,
    ServiceItem,
    State,
)
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, Resource, require, require_item

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
ACCEPTANCE_DAYS = 5
PREFILL_KIND = "prefill"
# Verified values can change (a licence revoked, a profile corrected): a pre-fill is good for
# one sitting, not forever.
PREFILL_TTL = timedelta(hours=2)
_SAVE_ATTEMPTS = 3
_INTAKE_NAMESPACE = uuid.UUID("6f1c2b0e-1d5a-4c1e-9a53-3b7f2e8d4a10")


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


# ---- the guide ----------------------------------------------------------------------------


def list_items(deps: ApplicationDeps, limit: int, start_key: dict[str, Any] | None) -> Any:
    return deps.store.list_items(limit, start_key)


def get_item(deps: ApplicationDeps, code: str) -> ServiceItem:
    item = deps.store.latest_item(code)
    if item is None:
        raise NotFound("办事事项不存在", code="item_not_found")
    return item


def publish_item(deps: ApplicationDeps, principal: Principal, item: ServiceItem) -> ServiceItem:
    """A new version of the item; applications keep the version they were filed under."""
    require(principal, Action.MANAGE_ITEMS)
    for _ in range(_SAVE_ATTEMPTS):
        current = deps.store.latest_item(item.code)
        versioned = domain.validate_item(
            replace(item, version=(current.version + 1) if current else 1)
        )
        if deps.store.put_item_version(versioned):
            _audit(
                deps,
                principal,
                "application_item.published",
                "service_item",
                item.code,
                {"version": current.version} if current else None,
                {"version": versioned.version, "name": versioned.name},
            )
            return versioned
    raise Conflict("事项版本冲突，请重试", code="item_version_conflict")


# ---- pre-fill -----------------------------------------------------------------------------


def _history(deps: ApplicationDeps, principal: Principal) -> dict[str, Any]:
    """Values from the caller's latest earlier applications (unverified, editable)."""
    values: dict[str, Any] = {}
    for app in reversed(deps.store.by_owner(principal.user_id, 20, None).items):
        values.update({k: v for k, v in app.fields.items() if v not in (None, "")})
    return values


def prefill_for(deps: ApplicationDeps, principal: Principal, code: str) -> tuple[Prefill, str]:
    require(principal, Action.APPLY)
    require_item(principal, code)
    item = get_item(deps, code)
    subject = principal.subject_id or ""
    profile = deps.store.get_profile(subject) if subject else None
    licences = deps.store.licences(subject) if subject else []
    now = deps.clock.now()
    reusable = _reusable(deps, subject, now)
    result = domain.prefill(item, profile, licences, _history(deps, principal), now, reusable)
    return result, _sign(deps, principal, result)


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


def _sign(deps: ApplicationDeps, principal: Principal, result: Prefill) -> str:
    """The verified ("locked") values travel signed: a submission must bring them back
    unchanged, for this user and this item version, before the token expires."""
    data = {
        "u": principal.user_id,
        "i": result.item_code,
        "v": result.item_version,
        "l": result.locked,
        "p": result.filled,
        "t": len(result.fields),
        "x": list(result.exempt_materials),
        "xs": dict(result.exempt_sources),
    }
    return deps.signer.sign(PREFILL_KIND, data, deps.clock.now() + PREFILL_TTL)


def _verify(deps: ApplicationDeps, principal: Principal, token: str) -> dict[str, Any]:
    from chalicelib.domain.errors import TokenRefused

    try:
        data = deps.signer.verify(PREFILL_KIND, token, deps.clock.now())
    except TokenRefused as exc:
        if exc.reason == "expired":
            raise InvalidInput(
                "预填凭证已过期，请重新获取预填数据", code="invalid_prefill_token"
            ) from exc
        raise InvalidInput(
            "预填凭证无效，请重新获取预填数据", code="invalid_prefill_token"
        ) from exc
    if data.get("u") != principal.user_id:
        raise InvalidInput("预填凭证无效，请重新获取预填数据", code="invalid_prefill_token")
    return data


# ---- submission ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    item_code: str
    prefill_token: str
    fields: dict[str, Any]
    materials: list[Material]
    commitment: bool = False


def submit(
    deps: ApplicationDeps,
    principal: Principal,
    submission: Submission,
    idempotency_key: str | None,
) -> Application:
    """Store the application and hand it to the pre-review queue. A changed locked value is
    refused here, before anything is stored (checked against what the server signed)."""
    require(principal, Action.APPLY)
    require_item(principal, submission.item_code)
    token = _verify(deps, principal, submission.prefill_token)
    if token["i"] != submission.item_code:
        raise InvalidInput("预填凭证与申请事项不一致", code="invalid_prefill_token")
    tampered = domain.check_locked(token["l"], submission.fields)
    if tampered:
        raise InvalidInput(
            "核验数据不可修改",
            code="locked_field_changed",
            fields=[
                {"field": f.target, "message": f.message, "type": f.reason.value} for f in tampered
            ],
        )
    item = deps.store.item_version(submission.item_code, token["v"])
    if item is None:
        raise NotFound("办事事项不存在", code="item_not_found")
    # A keyed submission's id follows from caller + key: a rerun of a request whose first run
    # died half-way finds that application instead of storing a second one.
    application_id = (
        uuid.uuid5(_INTAKE_NAMESPACE, f"{principal.user_id}\n{idempotency_key}").hex
        if idempotency_key
        else uuid.uuid4().hex
    )
    app = _new_application(deps, principal, item, submission, token, application_id)
    if not deps.store.create(app):
        found = deps.store.get(application_id)
        if found is None:
            raise Conflict("申请编号冲突，请重试", code="application_id_conflict")
        # Pre-review is idempotent per application and round: handing it over again is safe.
        _enqueue_prereview(deps, found[0])
        return found[0]
    _audit(
        deps,
        principal,
        "application.submitted",
        "application",
        app.application_id,
        None,
        _summary(app),
    )
    _enqueue_prereview(deps, app)
    return app


def hand_to_prereview(deps: ApplicationDeps, app: Application) -> bool:
    """Hand a stored application's current round to its department's pre-review queue."""
    return _enqueue_prereview(deps, app)


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


# ---- staff filing on a person's behalf (window, video) -------------------------------------


@dataclass(frozen=True)
class OnBehalfSubmission:
    person_user_id: str
    channel: str  # window | video
    item_code: str
    fields: dict[str, Any]
    materials: list[Material]
    commitment: bool = False
    booking_id: str | None = None  # video: the person's video session


def file_on_behalf(
    deps: ApplicationDeps,
    staff: Principal,
    submission: OnBehalfSubmission,
    idempotency_key: str | None,
) -> Application:
    """Window staff file an application for the person in front of them (channel window), or
    accept it in the person's video session (channel video). The application is the person's
    (they read it, supplement it and are told); the staff member is recorded as who filed it.
    Verified values come from the registers as for an online pre-fill, and may not be changed."""
    require(staff, Action.FILE_ON_BEHALF)
    person = deps.directory.get_user(submission.person_user_id) if deps.directory else None
    if person is None or not person.principal().is_public:
        raise NotFound("办事人不存在", code="person_not_found")
    if submission.channel == "video":
        _require_video_session(deps, submission)
    principal = person.principal()
    item = get_item(deps, submission.item_code)
    subject = principal.subject_id or ""
    profile = deps.store.get_profile(subject) if subject else None
    licences = deps.store.licences(subject) if subject else []
    filled = domain.prefill(item, profile, licences, _history(deps, principal), deps.clock.now())
    tampered = domain.check_locked(filled.locked, {**filled.locked, **submission.fields})
    if tampered:
        raise InvalidInput(
            "核验数据不可修改",
            code="locked_field_changed",
            fields=[
                {"field": f.target, "message": f.message, "type": f.reason.value} for f in tampered
            ],
        )
    token = {
        "l": filled.locked,
        "p": filled.filled,
        "t": len(filled.fields),
        "x": list(filled.exempt_materials),
    }
    application_id = (
        uuid.uuid5(_INTAKE_NAMESPACE, f"{staff.user_id}\n{idempotency_key}").hex
        if idempotency_key
        else uuid.uuid4().hex
    )
    values = {f.name: f.value for f in filled.fields if f.value is not None}
    form = Submission(
        item.code,
        "",
        {**values, **submission.fields},
        list(submission.materials),
        submission.commitment,
    )
    app = _new_application(deps, principal, item, form, token, application_id)
    app.channel = submission.channel
    app.filed_by = staff.user_id
    app.timeline[-1]["filed_by"] = staff.user_id
    app.timeline[-1]["channel"] = submission.channel
    if not deps.store.create(app):
        found = deps.store.get(application_id)
        if found is None or found[0].filed_by != staff.user_id:
            raise Conflict("申请编号冲突，请重试", code="application_id_conflict")
        _enqueue_prereview(deps, found[0])
        return found[0]
    _audit(
        deps,
        staff,
        "application.submitted",
        "application",
        app.application_id,
        None,
        _summary(app),
        on_behalf_of=person.user_id,
        channel=submission.channel,
        booking_id=submission.booking_id,
    )
    _enqueue_prereview(deps, app)
    return app


def _require_video_session(deps: ApplicationDeps, submission: OnBehalfSubmission) -> None:
    """A video acceptance happens in the person's own video session for this item."""
    from chalicelib.domain.bookings.booking import BookingStatus
    from chalicelib.domain.bookings.centres import Channel

    booking = (
        deps.bookings.get_booking(submission.booking_id)
        if deps.bookings is not None and submission.booking_id
        else None
    )
    if (
        booking is None
        or booking.channel is not Channel.VIDEO
        or booking.user_id != submission.person_user_id
        or booking.item_id != submission.item_code
        or booking.status in (BookingStatus.CANCELLED, BookingStatus.NO_SHOW)
    ):
        raise RuleViolation(
            "视频受理须在办事人本人预约的该事项视频帮办中进行", code="video_session_required"
        )


def _new_application(
    deps: ApplicationDeps,
    principal: Principal,
    item: ServiceItem,
    submission: Submission,
    token: dict[str, Any],
    application_id: str,
) -> Application:
    now = deps.clock.now()
    profile = deps.store.get_profile(principal.subject_id or "")
    app = Application(
        application_id=application_id,
        item_code=item.code,
        item_version=item.version,
        item_name=item.name,
        department_id=item.department_id,
        applicant_user_id=principal.user_id,
        subject_id=principal.subject_id or "",
        applicant_name=profile.name if profile else principal.display_name,
        fields=dict(submission.fields),
        materials=list(submission.materials),
        locked=dict(token["l"]),
        prefilled_fields=int(token["p"]),
        total_fields=int(token["t"]),
        exempt_materials=list(token["x"]),
        exempt_sources=dict(token.get("xs") or {}),
        commitment=submission.commitment,
        channel="online",
        state=State.SUBMITTED,
        created_at=now.isoformat(),
        updated_at=now.isoformat(),
        effects_since=now.isoformat(),
        authorisation_id=principal.authorisation_id,
    )
    app.add_event(now, "submitted", by=principal.user_id)
    return app


# ---- reading ------------------------------------------------------------------------------


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


def read(deps: ApplicationDeps, principal: Principal, application_id: str) -> Application:
    require(principal, Action.READ_APPLICATION)
    app, version = _load(deps, application_id)
    require(principal, Action.READ_APPLICATION, _resource(app))
    _require_acting_item(principal, app)
    return enforce_supplement_deadline(deps, app, version)


def deadlines_of(deps: ApplicationDeps, app: Application) -> list[Any]:
    result = []
    for clock_id in app.clocks.values():
        clock = deps.deadlines.clocks.get(clock_id)
        if clock is not None:
            result.append(clock)
    return result


def list_mine(deps: ApplicationDeps, principal: Principal, limit: int, start_key: Any) -> Any:
    require(principal, Action.APPLY)
    page = deps.store.by_owner(principal.user_id, limit, start_key)
    acting = principal.authorisation_id is not None
    # Filed for someone else: listed only while acting for them, within the authorised items.
    kept = [
        a
        for a in page.items
        if (a.authorisation_id is None and not acting)
        or (
            acting
            and a.subject_id == principal.subject_id
            and (principal.authorised_items is None or a.item_code in principal.authorised_items)
        )
    ]
    return type(page)(kept, page.last_key)


def list_department(
    deps: ApplicationDeps, principal: Principal, department_id: str, limit: int, start_key: Any
) -> Any:
    require(principal, Action.LIST_DEPARTMENT_APPLICATIONS, Resource(department_id=department_id))
    return deps.store.by_department(department_id, limit, start_key)


# ---- changing an application ------------------------------------------------------------


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


# ---- pre-review (the queue consumer) ------------------------------------------------------


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


def _bundle_moves_on(deps: ApplicationDeps, app: Application) -> None:
    """A bundle's case ended: its bundle starts the members waiting for it, or completes.
    Idempotent (the bundle starts a member once, notifies once), so the repair job and
    redeliveries may call it again."""
    if app.bundle_application_id and deps.case_finished is not None:
        deps.case_finished(app.application_id)


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


def iso(moment: datetime) -> str:
    """Fixed-width China-time text: sorts like the instants it names."""
    return moment.astimezone(CHINA_TZ).isoformat(timespec="microseconds")


# ---- decisions ----------------------------------------------------------------------------


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


# ---- supplements (补正 and 容缺) -------------------------------------------------------------


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


def _decided_elsewhere(item: ServiceItem) -> bool:
    from chalicelib.domain.crossregion import LOCAL_REGION

    return item.handled_in is not None and item.handled_in != LOCAL_REGION


def _forward(
    deps: ApplicationDeps, app: Application, item: ServiceItem, now: datetime
) -> Application:
    """跨省通办: accepted and pre-reviewed here, the case goes to the region that decides it.
    The leg is stored as forwarding first (the repair job sends it again while it is), then
    handed to the outbound queue; the promised clock runs on for the other region's leg."""
    from chalicelib.domain import crossregion

    region = item.handled_in or ""

    def mark(a: Application) -> Application | None:
        if a.remote is not None:
            return None
        a.remote = crossregion.new_leg(crossregion.OUTBOUND, region, now.isoformat())
        a.effects_since = now.isoformat()
        a.add_event(now, "forwarding", region=region)
        return a

    updated = _change(deps, app.application_id, mark) or _load(deps, app.application_id)[0]
    if deps.forward is not None and (updated.remote or {}).get("state") == "forwarding":
        deps.forward({"kind": "case", "application_id": app.application_id})
    _notify(
        deps,
        updated,
        "accepted",
        f"已受理：{updated.item_name}",
        f"您的申请已在青浦受理并通过预审，已转交{crossregion.REGIONS.get(region, region)}办理，"
        f"承诺{item.promised_days}个工作日内办结。",
    )
    return updated


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


# ---- KPIs ---------------------------------------------------------------------------------


def _record_facts(deps: ApplicationDeps, app: Application) -> None:
    created = datetime.fromisoformat(app.created_at)
    completed = app.state in (State.APPROVED, State.REJECTED, State.TERMINATED)
    days = None
    if completed:
        calendar = deps.deadlines.calendar()
        start = datetime.fromisoformat(app.accepted_at or app.created_at).astimezone(CHINA_TZ)
        days = calendar.working_days_between(
            start.date(), deps.clock.now().astimezone(CHINA_TZ).date()
        )
    facts = KpiFacts(
        application_id=app.application_id,
        item_code=app.item_code,
        prefilled_fields=app.prefilled_fields,
        total_fields=app.total_fields,
        machine_reviewed=app.reviews > 0,
        supplement_rounds=app.supplement_rounds,
        online=app.channel == "online",
        channel=app.channel,
        completed=completed,
        accepted=app.accepted_at is not None,
        working_days=days,
    )
    deps.store.put_facts(created.astimezone(CHINA_TZ).strftime("%Y-%m"), facts)


def report(deps: ApplicationDeps, principal: Principal, month: str) -> dict[str, Any]:
    require(principal, Action.READ_APPLICATION_REPORTS)
    facts = deps.store.facts(month)
    by_item: dict[str, list[KpiFacts]] = {}
    for f in facts:
        by_item.setdefault(f.item_code, []).append(f)
    return {
        "month": month,
        "targets": domain.TARGETS,
        "overall": domain.kpis(facts),
        "online_completion": domain.online_completion(facts),
        "items": [
            {**_item_columns(deps, code), **domain.kpis(rows)}
            for code, rows in sorted(by_item.items())
        ],
    }


def _item_columns(deps: ApplicationDeps, code: str) -> dict[str, Any]:
    """The columns naming an item and its department, as every report names them."""
    item = deps.store.latest_item(code)
    department_id = item.department_id if item else None
    department = (
        deps.directory.get_department(department_id)
        if department_id and deps.directory is not None
        else None
    )
    return {
        "item_code": code,
        "item_name": item.name if item else None,
        "department_id": department_id,
        "department_name": department.name if department else None,
    }
