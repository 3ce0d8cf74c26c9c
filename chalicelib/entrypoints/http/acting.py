"""Acting for a subject (多级授权): a request carrying `X-Acting-For: <ID number or credit code>`
is the caller acting for that person or enterprise, under an authorisation in force now."""

from __future__ import annotations

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Principal
from chalicelib.entrypoints.http.routing import Call

HEADER = "x-acting-for"
_MAX = 32


def acting_user(call: Call, item_code: str | None = None) -> Principal:
    """The caller, or the caller acting for the subject the header names (checked on every
    request, so a revocation or the end of the period counts at once); `item_code`, when the
    request names one, picks the grant the act relies on."""
    principal = call.user
    subject = (call.headers.get(HEADER) or "").strip().upper()
    if not subject:
        return principal
    if len(subject) > _MAX or not subject.isalnum():
        raise InvalidInput("X-Acting-For 应为证件号码或统一社会信用代码", code="invalid_acting_for")
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.wallet import WalletDeps, acting_principal

    deps = WalletDeps.from_container(container())
    return acting_principal(deps, principal, subject, item_code)
