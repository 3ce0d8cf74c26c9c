"""Pre-fill: the values a person's earlier applications and verified data give, signed for one
sitting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.domain import applications as domain
from chalicelib.domain.applications import Prefill
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.applications.common import ApplicationDeps, _reusable
from chalicelib.service_layer.applications.guide import get_item
from chalicelib.service_layer.authorization import Action, require, require_item

PREFILL_KIND = "prefill"
# Verified values can change (a licence revoked, a profile corrected): a pre-fill is good for
# one sitting, not forever.
PREFILL_TTL = timedelta(hours=2)


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
