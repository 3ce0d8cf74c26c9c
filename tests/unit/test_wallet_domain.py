"""The wallet's rules, pure: licence status on a day, what a shown code discloses, how far an
authorisation and its sub-authorisations reach, which kept materials pre-fill may offer; and
the Ed25519 signer of shown codes."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest

from chalicelib.adapters.presentation_keys import Ed25519PresentationSigner
from chalicelib.adapters.signing import SigningKeys
from chalicelib.domain import applications as apps
from chalicelib.domain import wallet as w
from chalicelib.domain.applications import ELicence
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput, RuleViolation, TokenRefused

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
DAY = NOW.date()


def _licence(**kw) -> ELicence:
    base = {
        "type": "food_sale_filing",
        "number": "QP1",
        "holder_id": "91310118MA1JL0000N",
        "holder_name": "上海绿境科技有限公司",
        "valid_from": "2026-01-01",
        "valid_until": "2027-01-01",
    }
    return ELicence(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({}, w.LicenceStatus.VALID),
        ({"valid_until": None}, w.LicenceStatus.VALID),
        ({"valid_until": "2026-12-26"}, w.LicenceStatus.EXPIRING),  # 30 days
        ({"valid_until": "2026-12-27"}, w.LicenceStatus.VALID),  # 31 days
        ({"valid_until": "2026-11-26"}, w.LicenceStatus.EXPIRING),  # its last day
        ({"valid_until": "2026-11-25"}, w.LicenceStatus.EXPIRED),
        ({"valid_from": "2026-11-27"}, w.LicenceStatus.NOT_YET_VALID),
        ({"status": "revoked"}, w.LicenceStatus.REVOKED),
    ],
)
def test_a_licence_status_on_a_day(kw, status):
    assert w.licence_status(_licence(**kw), DAY) is status


def test_the_reminder_falls_thirty_days_before_the_end_and_never_for_long_term():
    assert w.reminder_day(_licence()) == date(2026, 12, 2)
    assert w.reminder_day(_licence(valid_until=None)) is None
    assert w.reminder_day(_licence(status="revoked")) is None


def test_the_licence_id_is_stable_and_does_not_carry_the_holder():
    lid = w.licence_id(_licence())
    assert lid == w.licence_id(_licence(holder_name="别名")) and len(lid) == 24
    assert lid != w.licence_id(_licence(number="QP2"))
    assert "91310118" not in lid


def test_only_known_fields_are_disclosed_each_once():
    assert w.chosen_fields(w.LICENCE_FIELDS, ["number", "number", "holder_name"]) == (
        "number",
        "holder_name",
    )
    with pytest.raises(InvalidInput):
        w.chosen_fields(w.LICENCE_FIELDS, ["address"])
    with pytest.raises(InvalidInput):
        w.chosen_fields(w.LICENCE_FIELDS, [])
    values = _licence().to_dict()
    assert w.disclose(values, ("number",)) == {"number": "QP1"}


def _grant(**kw) -> w.Authorisation:
    base = {
        "authorisation_id": "a1",
        "subject_id": "91310118MA1JL0000N",
        "grantor_user_id": "u-enterprise",
        "agent_user_id": "u-zhang",
        "items": ["QP-RS-201"],
        "valid_from": NOW,
        "valid_until": NOW + timedelta(days=30),
        "may_sub_authorise": True,
        "now": NOW,
    }
    return w.new_authorisation(**{**base, **kw})


def test_an_authorisation_holds_for_its_items_and_period_until_revoked():
    grant = _grant()
    assert grant.covers_item("QP-RS-201") and not grant.covers_item("QP-SC-103")
    assert grant.in_force(NOW) and not grant.in_force(NOW + timedelta(days=30))
    assert not grant.in_force(NOW - timedelta(seconds=1))
    revoked = grant.revoke("u-enterprise", NOW + timedelta(minutes=1))
    assert not revoked.in_force(NOW + timedelta(minutes=1))
    assert revoked.status(NOW) == "revoked"
    assert w.Authorisation.from_dict(json.loads(json.dumps(revoked.to_dict()))) == revoked
    assert _grant(items=["*"]).covers_item("QP-SC-103")


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"agent_user_id": "u-enterprise"}, "self_authorisation"),
        ({"valid_until": NOW}, "invalid_period"),
        ({"items": []}, "no_items"),
    ],
)
def test_a_grant_that_makes_no_sense_is_refused(kw, code):
    with pytest.raises(InvalidInput) as refused:
        _grant(**kw)
    assert refused.value.code == code


def test_a_sub_authorisation_stays_within_its_parent():
    parent = _grant(items=["QP-RS-201", "QP-SC-103"])
    sub = _grant(
        authorisation_id="a2",
        grantor_user_id="u-zhang",
        agent_user_id="u-li",
        items=["QP-SC-103"],
        valid_until=NOW + timedelta(days=10),
        may_sub_authorise=False,
        parent=parent,
    )
    assert sub.parent_id == "a1" and sub.depth == 1
    for kw, code in [
        ({"items": ["QP-GA-601"]}, "beyond_authorised_items"),
        ({"items": ["*"]}, "beyond_authorised_items"),
        ({"valid_until": NOW + timedelta(days=31)}, "beyond_authorised_period"),
    ]:
        with pytest.raises(RuleViolation) as refused:
            _grant(grantor_user_id="u-zhang", agent_user_id="u-li", parent=parent, **kw)
        assert refused.value.code == code
    with pytest.raises(RuleViolation) as refused:
        _grant(grantor_user_id="u-li", agent_user_id="u-wang", parent=sub)
    assert refused.value.code == "sub_authorisation_not_allowed"


def _kept(**kw) -> w.LibraryMaterial:
    base = {
        "subject_id": "s",
        "code": "labour_contract",
        "content_hash": "a" * 64,
        "file_name": "c.pdf",
        "file_type": "pdf",
        "size_kb": 10,
        "source_application_id": "app1",
        "source_item_code": "QP-RS-201",
        "accepted_at": NOW.isoformat(),
    }
    return w.LibraryMaterial(**{**base, **kw})


def test_only_a_usable_kept_material_is_offered_the_longest_lasting_first():
    expired = _kept(content_hash="b" * 64, valid_until="2026-11-25")
    revoked = _kept(content_hash="c" * 64, revoked_at=NOW.isoformat())
    short = _kept(content_hash="d" * 64, valid_until="2026-12-31", source_application_id="s1")
    long = _kept(content_hash="e" * 64, valid_until="2027-12-31", source_application_id="s2")
    assert w.best_library_material([expired, revoked], "labour_contract", DAY) is None
    best = w.best_library_material([expired, short, long, revoked], "labour_contract", DAY)
    assert best is long and best.source == "application:s2"


def test_prefill_offers_a_reusable_material_with_its_source_and_review_accepts_it():
    item = apps.ServiceItem(
        code="X",
        name="x",
        department_id="d",
        kind=apps.ItemKind.PROMISED,
        statutory_days=5,
        promised_days=1,
        subject_kind="enterprise",
        materials=(apps.MaterialSpec("labour_contract", "劳动合同"),),
    )
    result = apps.prefill(item, None, [], {}, NOW, {"labour_contract": "application:app1"})
    assert result.exempt_materials == ("labour_contract",)
    assert result.exempt_sources == (("labour_contract", "application:app1"),)
    assert apps.prefill(item, None, [], {}, NOW).exempt_materials == ()


def test_the_presentation_signer_signs_and_verifies_with_rotation():
    old = SigningKeys("k1", {"k1": b"x" * 32})
    new = SigningKeys("k2", {"k2": b"y" * 32, "k1": b"x" * 32})
    code = Ed25519PresentationSigner(old).sign({"jti": "p1", "dsc": {"name": "张伟"}})
    assert Ed25519PresentationSigner(new).claims_of(code)["dsc"] == {"name": "张伟"}
    keys = Ed25519PresentationSigner(new).key_set()
    assert [k["kid"] for k in keys] == ["k2", "k1"] and all(k["crv"] == "Ed25519" for k in keys)
    # The same secret always gives the same key; a retired key id is refused.
    assert keys[1] == Ed25519PresentationSigner(old).key_set()[0]
    with pytest.raises(TokenRefused) as refused:
        Ed25519PresentationSigner(SigningKeys("k3", {"k3": b"z" * 32})).claims_of(code)
    assert refused.value.reason == "unknown_key"
    head, body, sig = code.split(".")
    with pytest.raises(TokenRefused) as refused:
        Ed25519PresentationSigner(old).claims_of(f"{head}.{body}x.{sig}")
    assert refused.value.reason in ("signature", "malformed")
    for junk in ("", "a.b", "x" * 5000):
        with pytest.raises(TokenRefused):
            Ed25519PresentationSigner(old).claims_of(junk)
