"""Submitting an application: by the person, or by staff on their behalf (window, video)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import Application, Material, ServiceItem, State
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.applications.common import (
    ApplicationDeps,
    _audit,
    _enqueue_prereview,
    _summary,
)
from chalicelib.service_layer.applications.guide import get_item
from chalicelib.service_layer.applications.prefill import _history, _verify
from chalicelib.service_layer.authorization import Action, require, require_item

_INTAKE_NAMESPACE = uuid.UUID("6f1c2b0e-1d5a-4c1e-9a53-3b7f2e8d4a10")


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
