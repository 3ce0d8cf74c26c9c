"""Wallet use cases: the subject's e-licences with their status and an expiry reminder (on the
due sweep), shown codes (亮证亮码, 一人一码/一企一码) and their verification, authorisations
to act for a subject (多级授权) and the materials library kept from approved applications."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.domain import wallet as domain
from chalicelib.domain.applications import ELicence
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    TokenRefused,
)
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.notifications import RecipientKind
from chalicelib.domain.wallet import (
    ALL_ITEMS,
    Authorisation,
    LibraryMaterial,
    LicenceStatus,
    Presentation,
    PresentationKind,
    VerifyResult,
)
from chalicelib.service_layer.audit import record_change
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.ports import Page

if TYPE_CHECKING:
    from chalicelib.service_layer.audit import AuditLog
    from chalicelib.service_layer.notify import Notifier
    from chalicelib.service_layer.ports import Directory, TimeSource
    from chalicelib.service_layer.ports.due import DueStore
    from chalicelib.service_layer.ports.wallet import (
        LicenceRegistry,
        MaterialLibrary,
        PresentationSigner,
        WalletStore,
    )

T = TypeVar("T")

EXPIRY_REMINDER = "wallet.licence_expiry"
_REMIND_AT = time(9, 0)
_NAMESPACE = uuid.UUID("0b7d8f0e-4a52-4f7e-9c1d-5e2a6b3c8d41")


@dataclass
class WalletDeps:
    licences: LicenceRegistry
    store: WalletStore
    library: MaterialLibrary
    presenter: PresentationSigner
    directory: Directory
    audit_log: AuditLog
    notifier: Notifier
    due: DueStore
    clock: TimeSource

    @classmethod
    def from_container(cls, c: Any) -> WalletDeps:
        return cls(
            licences=c.application_store,
            store=c.wallet_store,
            library=c.wallet_store,
            presenter=c.presentation_signer,
            directory=c.directory,
            audit_log=c.audit_log,
            notifier=c.notifier,
            due=c.due_store,
            clock=c.clock,
        )


def _audit(
    deps: WalletDeps,
    actor: Principal,
    action: str,
    subject_type: str,
    subject_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    **details: Any,
) -> None:
    record_change(deps.audit_log, actor, action, subject_type, subject_id, before, after, details)


# ---- the wallet ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletEntry:
    licence_id: str
    licence: ELicence
    status: LicenceStatus
    days_left: int | None


def _entry(licence: ELicence, now: datetime) -> WalletEntry:
    today = now.astimezone(CHINA_TZ).date()
    days_left = None
    if licence.valid_until is not None:
        days_left = (datetime.fromisoformat(licence.valid_until).date() - today).days
    return WalletEntry(
        domain.licence_id(licence), licence, domain.licence_status(licence, today), days_left
    )


def _own_subject(principal: Principal) -> str:
    require(principal, Action.READ_WALLET)
    if not principal.subject_id:
        raise NotFound("当前账号未关联个人或企业，没有证照", code="no_subject")
    return principal.subject_id


def list_licences(
    deps: WalletDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Page[WalletEntry]:
    """The subject's licences, by type and number; a page ends after `limit` of them."""
    subject = _own_subject(principal)
    now = deps.clock.now()
    entries = sorted(
        (_entry(x, now) for x in deps.licences.licences(subject)),
        key=lambda e: (e.licence.type, e.licence.number),
    )
    return _page(entries, lambda e: e.licence_id, limit, start_key)


def _find_licence(deps: WalletDeps, subject: str, licence_id: str) -> ELicence:
    for licence in deps.licences.licences(subject):
        if domain.licence_id(licence) == licence_id:
            return licence
    raise NotFound("证照不存在", code="licence_not_found")


def get_licence(deps: WalletDeps, principal: Principal, licence_id: str) -> WalletEntry:
    subject = _own_subject(principal)
    return _entry(_find_licence(deps, subject, licence_id), deps.clock.now())


def revoke_licence(
    deps: WalletDeps, principal: Principal, subject_id: str, licence_id: str, reason: str
) -> WalletEntry:
    """The issuer withdraws a licence: its codes verify as revoked from now on, it no longer
    pre-fills or replaces a material, and its expiry reminder is dropped."""
    require(principal, Action.REVOKE_LICENCE)
    licence = _find_licence(deps, subject_id, licence_id)
    if licence.status != "revoked":
        revoked = replace(licence, status="revoked")
        deps.licences.put_licence(revoked)
        deps.due.cancel(EXPIRY_REMINDER, licence_id, deps.clock.now())
        _audit(
            deps,
            principal,
            "elicence.revoked",
            "elicence",
            licence.number,
            {"status": licence.status},
            {"status": "revoked"},
            reason=reason,
            licence_id=licence_id,
        )
        licence = revoked
    return _entry(licence, deps.clock.now())


# ---- expiry reminders (the due sweep) ---------------------------------------------------------


def schedule_expiry_reminder(deps: WalletDeps, licence: ELicence, user_id: str | None) -> None:
    """File the reminder of a licence's end (EXPIRING_DAYS before it, 09:00); a licence issued
    already inside that window is reminded at the next sweep. Refiling is harmless."""
    day = domain.reminder_day(licence)
    if day is None:
        return
    due_at = datetime.combine(day, _REMIND_AT, tzinfo=CHINA_TZ)
    lid = domain.licence_id(licence)
    deps.due.file(
        DueItem(
            EXPIRY_REMINDER,
            lid,
            due_at,
            {
                "subject_id": licence.holder_id,
                "type": licence.type,
                "number": licence.number,
                "user_id": user_id,
            },
        ),
        deps.clock.now(),
    )


def remind_expiry_due(c: Any, item: DueItem, now: datetime) -> str:
    """The due sweep's handler: remind the holder once, unless the licence was revoked or a
    newer one of the same type runs past it (the notification key makes a rerun send nothing)."""
    deps = WalletDeps.from_container(c)
    held = deps.licences.licences(item.data["subject_id"])
    licence = next((x for x in held if domain.licence_id(x) == item.subject_id), None)
    if licence is None or licence.status == "revoked":
        return "revoked"
    renewed = any(
        x.type == licence.type
        and x.number != licence.number
        and x.status != "revoked"
        and (x.valid_until is None or x.valid_until > (licence.valid_until or ""))
        for x in held
    )
    if renewed:
        return "renewed"
    user_id = item.data.get("user_id")
    if not user_id:
        return "no_recipient"
    from chalicelib.service_layer.notify import notify

    notify(
        deps.notifier,
        f"licence-expiry:{item.subject_id}:{licence.valid_until}:{user_id}",
        RecipientKind.USER,
        user_id,
        "wallet.licence_expiring",
        "证照即将到期提醒",
        f"您的电子证照（{licence.number}）将于{licence.valid_until}到期，请及时办理延续或换证。",
        {"licence_id": item.subject_id, "valid_until": licence.valid_until},
    )
    return "reminded"


# ---- shown codes (亮证亮码) ------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCode:
    code: str
    presentation: Presentation
    disclosed: dict[str, Any]


def _issue(
    deps: WalletDeps,
    principal: Principal,
    kind: PresentationKind,
    subject: str,
    lid: str | None,
    values: dict[str, Any],
    allowed: tuple[str, ...],
    fields: list[str],
    ttl_seconds: int | None,
) -> IssuedCode:
    chosen = domain.chosen_fields(allowed, fields)
    now = deps.clock.now()
    presentation = Presentation(
        presentation_id=uuid.uuid4().hex,
        kind=kind,
        subject_id=subject,
        licence_id=lid,
        fields=chosen,
        issued_at=now,
        expires_at=now + domain.presentation_ttl(ttl_seconds),
        issued_by=principal.user_id,
    )
    disclosed = domain.disclose(values, chosen)
    deps.store.put_presentation(presentation)
    code = deps.presenter.sign(presentation.claims(disclosed))
    _audit(
        deps,
        principal,
        f"presentation.{kind.value}_issued",
        "presentation",
        presentation.presentation_id,
        None,
        {"fields": list(chosen), "expires_at": presentation.expires_at.isoformat()},
        licence_id=lid,
    )
    return IssuedCode(code, presentation, disclosed)


def present_licence(
    deps: WalletDeps,
    principal: Principal,
    licence_id: str,
    fields: list[str],
    ttl_seconds: int | None = None,
) -> IssuedCode:
    """A short-lived code showing only the chosen fields of a licence in force."""
    subject = _own_subject(principal)
    entry = get_licence(deps, principal, licence_id)
    if entry.status not in (LicenceStatus.VALID, LicenceStatus.EXPIRING):
        raise RuleViolation("证照不在有效期内或已注销，不能亮证", code="licence_not_in_force")
    values = entry.licence.to_dict()
    return _issue(
        deps,
        principal,
        PresentationKind.LICENCE,
        subject,
        licence_id,
        values,
        domain.LICENCE_FIELDS,
        fields,
        ttl_seconds,
    )


def present_subject(
    deps: WalletDeps, principal: Principal, fields: list[str], ttl_seconds: int | None = None
) -> IssuedCode:
    """一人一码 / 一企一码: the person's or enterprise's own code, by the same mechanism."""
    subject = _own_subject(principal)
    profile = deps.licences.get_profile(subject)
    if profile is None:
        raise NotFound("未找到本人或本企业档案", code="profile_not_found")
    values = {"name": profile.name, "kind": profile.kind, "subject_id": profile.subject_id}
    return _issue(
        deps,
        principal,
        PresentationKind.SUBJECT,
        subject,
        None,
        values,
        domain.SUBJECT_FIELDS,
        fields,
        ttl_seconds,
    )


def withdraw_presentation(deps: WalletDeps, principal: Principal, presentation_id: str) -> None:
    subject = _own_subject(principal)
    presentation = deps.store.get_presentation(presentation_id)
    if presentation is None or presentation.subject_id != subject:
        raise NotFound("亮码不存在", code="presentation_not_found")
    if presentation.withdrawn_at is None:
        deps.store.put_presentation(replace(presentation, withdrawn_at=deps.clock.now()))
        _audit(
            deps, principal, "presentation.withdrawn", "presentation", presentation_id, None, None
        )


@dataclass(frozen=True)
class Verification:
    result: VerifyResult
    kind: str | None = None
    fields: dict[str, Any] | None = None
    expires_at: datetime | None = None


def verify(deps: WalletDeps, code: str) -> Verification:
    """What a window or a public verifier learns of a code: valid, expired or revoked (the
    licence revoked or the code withdrawn since), and the chosen fields only when valid."""
    try:
        claims = deps.presenter.claims_of(code)
    except TokenRefused:
        return Verification(VerifyResult.INVALID)
    expiry = claims.get("exp")
    presentation_id = claims.get("jti")
    if not isinstance(expiry, int) or not isinstance(presentation_id, str):
        return Verification(VerifyResult.INVALID)
    kind = str(claims.get("knd"))
    expires_at = datetime.fromtimestamp(expiry, CHINA_TZ)
    if deps.clock.now() >= expires_at:
        return Verification(VerifyResult.EXPIRED, kind, None, expires_at)
    presentation = deps.store.get_presentation(presentation_id)
    if presentation is None:
        return Verification(VerifyResult.INVALID)
    if presentation.withdrawn_at is not None or _licence_revoked(deps, presentation):
        return Verification(VerifyResult.REVOKED, kind, None, expires_at)
    disclosed = claims.get("dsc")
    return Verification(
        VerifyResult.VALID, kind, dict(disclosed) if isinstance(disclosed, dict) else {}, expires_at
    )


def _licence_revoked(deps: WalletDeps, presentation: Presentation) -> bool:
    if presentation.licence_id is None:
        return False
    for licence in deps.licences.licences(presentation.subject_id):
        if domain.licence_id(licence) == presentation.licence_id:
            today = deps.clock.now().astimezone(CHINA_TZ).date()
            return domain.licence_status(licence, today) not in (
                LicenceStatus.VALID,
                LicenceStatus.EXPIRING,
            )
    return True


def public_keys(deps: WalletDeps) -> list[dict[str, Any]]:
    return deps.presenter.key_set()


# ---- authorisations (多级授权) ------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    agent_user_id: str
    items: list[str]
    valid_until: datetime
    valid_from: datetime | None = None
    may_sub_authorise: bool = False
    subject_id: str | None = None  # default: the caller's own subject


def _is_principal_of(deps: WalletDeps, principal: Principal, subject: str) -> bool:
    """The subject itself (its own account) or, for an enterprise, its legal representative."""
    if principal.authorisation_id is not None or not principal.subject_id:
        return False
    if principal.subject_id == subject:
        return True
    profile = deps.licences.get_profile(subject)
    return (
        profile is not None
        and profile.kind == "enterprise"
        and profile.legal_representative_id is not None
        and profile.legal_representative_id == principal.subject_id
    )


def grant(
    deps: WalletDeps, principal: Principal, request: Grant, idempotency_key: str | None
) -> Authorisation:
    """The subject's principal authorises an agent; an agent allowed to pass on its grant
    sub-authorises within it."""
    require(principal, Action.MANAGE_AUTHORISATIONS)
    subject = request.subject_id or principal.subject_id
    if not subject:
        raise InvalidInput("请指定被代理的个人或企业", code="subject_required")
    now = deps.clock.now()
    # None: granting as the subject's principal; else the caller's own grants it may pass on.
    parents: list[Authorisation | None] = [None]
    if not _is_principal_of(deps, principal, subject):
        parents = [
            a
            for a in deps.store.agent_grants_for(principal.user_id, subject)
            if a.may_sub_authorise and _chain_in_force(deps, a, now)
        ]
        if not parents:
            raise Forbidden("只有法定代表人、本人或获准转授权的代理人可以授权", code="not_grantor")
    agent = deps.directory.get_user(request.agent_user_id)
    if agent is None or agent.role not in (Role.CITIZEN, Role.ENTERPRISE):
        raise InvalidInput("被授权人须为已实名的个人账号", code="agent_not_found")
    authorisation_id = (
        uuid.uuid5(_NAMESPACE, f"{principal.user_id}\n{idempotency_key}").hex
        if idempotency_key
        else uuid.uuid4().hex
    )
    authorisation = _within_one_of(
        parents,
        lambda parent: domain.new_authorisation(
            authorisation_id,
            subject,
            principal.user_id,
            request.agent_user_id,
            request.items,
            request.valid_from or now,
            request.valid_until,
            request.may_sub_authorise,
            now,
            parent,
        ),
    )
    if not deps.store.create_authorisation(authorisation):
        stored = deps.store.get_authorisation(authorisation_id)
        if stored is None:
            raise Conflict("授权编号冲突，请重试", code="authorisation_id_conflict")
        return stored
    _audit(
        deps,
        principal,
        "authorisation.granted",
        "authorisation",
        authorisation_id,
        None,
        _summary(authorisation, now),
        on_behalf_of=subject,
    )
    return authorisation


def _within_one_of(
    parents: list[Authorisation | None],
    build: Callable[[Authorisation | None], Authorisation],
) -> Authorisation:
    """The grant under the first parent that can hold it (an agent may hold several); the
    first parent's refusal when none can."""
    refusal: RuleViolation | None = None
    for parent in parents:
        try:
            return build(parent)
        except RuleViolation as error:
            refusal = refusal or error
    assert refusal is not None
    raise refusal


def _summary(a: Authorisation, now: datetime) -> dict[str, Any]:
    return {
        "subject_id": a.subject_id,
        "agent_user_id": a.agent_user_id,
        "items": list(a.items),
        "valid_from": a.valid_from.isoformat(),
        "valid_until": a.valid_until.isoformat(),
        "may_sub_authorise": a.may_sub_authorise,
        "parent_id": a.parent_id,
        "status": a.status(now),
    }


def revoke(deps: WalletDeps, principal: Principal, authorisation_id: str) -> Authorisation:
    """Takes effect at once: every request acting on it reads the record itself, and its
    sub-authorisations hold only while it does."""
    require(principal, Action.MANAGE_AUTHORISATIONS)
    found = deps.store.get_authorisation(authorisation_id)
    if found is None or not (
        found.grantor_user_id == principal.user_id
        or _is_principal_of(deps, principal, found.subject_id)
    ):
        raise NotFound("授权不存在", code="authorisation_not_found")
    now = deps.clock.now()
    if found.revoked_at is not None:
        return found
    revoked = found.revoke(principal.user_id, now)
    deps.store.save_authorisation(revoked)
    _audit(
        deps,
        principal,
        "authorisation.revoked",
        "authorisation",
        authorisation_id,
        _summary(found, now),
        _summary(revoked, now),
        on_behalf_of=found.subject_id,
    )
    return revoked


def list_authorisations(
    deps: WalletDeps,
    principal: Principal,
    role: str,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Page[Authorisation]:
    """`granted`: the grants for the caller's own subject; `received`: what the caller holds."""
    require(principal, Action.MANAGE_AUTHORISATIONS)
    if role == "received":
        return deps.store.authorisations_of_agent(principal.user_id, limit, start_key)
    if not principal.subject_id or principal.authorisation_id is not None:
        return Page([], None)
    return deps.store.authorisations_of_subject(principal.subject_id, limit, start_key)


def _chain_in_force(deps: WalletDeps, authorisation: Authorisation, now: datetime) -> bool:
    current: Authorisation | None = authorisation
    for _ in range(domain.MAX_DELEGATION_DEPTH + 1):
        if current is None or not current.in_force(now):
            return False
        if current.parent_id is None:
            return True
        current = deps.store.get_authorisation(current.parent_id)
    return False


def acting_principal(
    deps: WalletDeps, principal: Principal, subject_id: str, item_code: str | None = None
) -> Principal:
    """The caller acting for `subject_id` under an authorisation in force now (with its whole
    chain): the same user, the subject's id, and the items its grants cover. The one named is
    the grant covering `item_code` when known (the audit says which grant the act relied on)."""
    if principal.subject_id == subject_id and principal.authorisation_id is None:
        return principal
    if principal.role not in (Role.CITIZEN, Role.ENTERPRISE):
        raise Forbidden("仅个人账号可以代办", code="not_an_agent")
    now = deps.clock.now()
    grants = [
        a
        for a in deps.store.agent_grants_for(principal.user_id, subject_id)
        if _chain_in_force(deps, a, now)
    ]
    if not grants:
        raise Forbidden("没有有效的代办授权（未授权、已到期或已撤销）", code="not_authorised")
    covering = [a for a in grants if item_code is not None and item_code in a.items]
    best = next(iter(covering), next((a for a in grants if ALL_ITEMS in a.items), grants[0]))
    items = None if ALL_ITEMS in best.items else frozenset(i for a in grants for i in a.items)
    return replace(
        principal,
        subject_id=subject_id,
        authorisation_id=best.authorisation_id,
        authorised_items=items,
    )


# ---- the materials library (历史材料免于提交) ----------------------------------------------


def keep_accepted_materials(
    deps: WalletDeps,
    subject_id: str,
    application_id: str,
    item_code: str,
    materials: list[Any],
    accepted_at: str,
) -> int:
    """Materials with a content hash, accepted in an approved application, go to the subject's
    library (keyed by type and hash: keeping them again changes nothing)."""
    kept = 0
    for m in materials:
        if not m.content_hash:
            continue
        deps.library.keep_material(
            LibraryMaterial(
                subject_id=subject_id,
                code=m.code,
                content_hash=m.content_hash,
                file_name=m.file_name,
                file_type=m.file_type,
                size_kb=m.size_kb,
                source_application_id=application_id,
                source_item_code=item_code,
                accepted_at=accepted_at,
                valid_until=m.valid_until,
            )
        )
        kept += 1
    return kept


def library_page(
    deps: WalletDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Page[LibraryMaterial]:
    """The subject's kept materials, by type and hash; a page ends after `limit` of them."""
    kept = sorted(
        deps.library.materials(_own_subject(principal)), key=lambda m: (m.code, m.content_hash)
    )
    return _page(kept, lambda m: f"{m.code}#{m.content_hash}", limit, start_key)


def _page(
    ordered: list[T], key: Callable[[T], str], limit: int, start_key: dict[str, Any] | None
) -> Page[T]:
    """A page of a short list read whole (a subject's licences or materials), resumed after
    the key the last page ended on."""
    after = (start_key or {}).get("after")
    if after is not None:
        keys = [key(x) for x in ordered]
        ordered = ordered[keys.index(after) + 1 :] if after in keys else []
    page = ordered[:limit]
    more = len(ordered) > limit
    return Page(page, {"after": key(page[-1])} if more and page else None)


def revoke_material(
    deps: WalletDeps, principal: Principal, subject_id: str, content_hash: str, reason: str
) -> bool:
    require(principal, Action.REVOKE_LICENCE)
    changed = deps.library.revoke_material(subject_id, content_hash, deps.clock.now().isoformat())
    if changed:
        _audit(
            deps,
            principal,
            "material.revoked",
            "material",
            content_hash,
            None,
            {"subject_id": subject_id},
            reason=reason,
        )
    return changed


def application_approved(deps: WalletDeps, app: Any, licence: ELicence | None) -> None:
    """An approval's wallet effects, each idempotent: its accepted materials kept and the
    expiry reminder of the licence it issued filed."""
    keep_accepted_materials(
        deps,
        app.subject_id,
        app.application_id,
        app.item_code,
        app.materials,
        app.decision.decided_at if app.decision else deps.clock.now().isoformat(),
    )
    if licence is not None:
        schedule_expiry_reminder(deps, licence, app.applicant_user_id)
