"""The e-licence wallet end to end: statuses (valid_from honoured), shown codes that verify,
expire, are revoked and disclose only the chosen fields, checked offline with the published
key; agents acting for an enterprise only within their authorisation, losing it at once on
revocation; a second application reusing the first one's accepted materials; the expiry
reminder on the due sweep."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

import jwt
import pytest

from tests.integration.audit_helpers import audit_records
from tests.integration.test_applications import Flow, pdf

ENTERPRISE = "u-enterprise-lvjing"
ENTERPRISE_ID = "91310118MA1JL0000N"
ZHANG = "u-citizen-zhang"  # an employee of the enterprise
ZHANG_ID = "310118198503121233"
LI = "u-citizen-li"
ACT = {"X-Acting-For": ENTERPRISE_ID}


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications

    seed_applications(container)
    return container


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


def _licences(api, user: str) -> dict[str, dict]:
    result = api.get("/me/licences?limit=100", user=user)
    assert result.status == 200, result
    return {x["type"]: x for x in result.json["items"]}


def _present(api, user: str, licence_id: str, fields: list[str], **extra) -> dict:
    result = api.post(
        f"/me/licences/{licence_id}/presentations", {"fields": fields, **extra}, user=user
    )
    assert result.status == 201, result
    return result.json


def _verify(api, code: str) -> dict:
    result = api.post("/presentations/verify", {"code": code})
    assert result.status == 200, result
    return result.json


# ---- the wallet -------------------------------------------------------------------------------


def test_the_wallet_shows_each_licence_with_its_status_and_honours_valid_from(api, seeded):
    # The clock is 2026-11-26: the food licence ended 2026-06-30; the birth certificate takes
    # effect 2026-11-20; one more that starts next month and one ending within 30 days.
    store = seeded.application_store
    store.put_licence(
        replace(
            store.licences(ZHANG_ID)[0],
            type="residence_permit",
            number="JZ-1",
            valid_from="2026-12-20",
            valid_until=None,
        )
    )
    store.put_licence(
        replace(
            store.licences(ZHANG_ID)[0],
            type="driving_licence",
            number="DL-1",
            valid_from="2020-12-01",
            valid_until="2026-12-20",
        )
    )
    mine = _licences(api, ZHANG)
    assert mine["household_register"]["status"] == "valid"
    assert mine["residence_permit"]["status"] == "not_yet_valid"
    assert mine["driving_licence"]["status"] == "expiring"
    assert mine["driving_licence"]["days_left"] == 24
    firm = _licences(api, ENTERPRISE)
    assert firm["food_operation_licence"]["status"] == "expired"
    assert firm["business_licence"]["status"] == "valid"
    # Another subject's licence is not found through my wallet.
    lid = firm["business_licence"]["licence_id"]
    assert api.get(f"/me/licences/{lid}", user=ENTERPRISE).json["number"] == ENTERPRISE_ID
    assert api.get(f"/me/licences/{lid}", user=ZHANG).status == 404
    assert api.get("/me/licences", user="u-dept-rsj").status == 403


def test_the_wallet_is_paginated(api, seeded):
    first = api.get("/me/licences?limit=2", user=ZHANG).json
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = api.get(f"/me/licences?limit=2&cursor={first['next_cursor']}", user=ZHANG).json
    seen = [x["licence_id"] for x in first["items"] + rest["items"]]
    assert len(seen) == len(set(seen)) == 3 and rest["next_cursor"] is None


# ---- shown codes ------------------------------------------------------------------------------


def test_a_shown_code_verifies_and_reveals_only_the_chosen_fields(api, seeded):
    lid = _licences(api, ENTERPRISE)["business_licence"]["licence_id"]
    shown = _present(api, ENTERPRISE, lid, ["holder_name", "valid_until"])
    assert shown["fields"] == {"holder_name": "上海绿境科技有限公司", "valid_until": None}
    checked = _verify(api, shown["code"])
    assert checked["result"] == "valid" and checked["kind"] == "licence"
    assert checked["fields"] == {"holder_name": "上海绿境科技有限公司", "valid_until": None}
    # Nothing else travels in the code either: the number and the holder's id are not in it.
    claims = jwt.decode(shown["code"], options={"verify_signature": False})
    assert ENTERPRISE_ID not in str(claims) and "number" not in str(claims)


def test_a_code_verifies_offline_with_the_published_key_and_a_forged_one_does_not(
    api, seeded, clock
):
    lid = _licences(api, ENTERPRISE)["business_licence"]["licence_id"]
    code = _present(api, ENTERPRISE, lid, ["holder_name"])["code"]
    keys = api.get("/.well-known/jwks.json").json["keys"]
    assert keys and {k["kty"] for k in keys} == {"OKP"}
    header = jwt.get_unverified_header(code)
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    public = jwt.PyJWK(jwk).key
    # The test clock is not the machine's: the verifier here judges the expiry by it.
    claims = jwt.decode(code, public, algorithms=["EdDSA"], options={"verify_exp": False})
    assert claims["exp"] > clock.now().timestamp()
    assert claims["dsc"] == {"holder_name": "上海绿境科技有限公司"}
    # Change what it discloses, keep the signature: refused online and offline.
    head, _, rest = code.partition(".")
    forged_claims = {**claims, "dsc": {"holder_name": "别的公司"}}
    forged_body = jwt.utils.base64url_encode(
        jwt.api_jws.json.dumps(forged_claims, separators=(",", ":")).encode()
    ).decode()
    forged = f"{head}.{forged_body}.{rest.partition('.')[2]}"
    assert _verify(api, forged) == {
        "result": "invalid",
        "kind": None,
        "fields": None,
        "expires_at": None,
    }
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public, algorithms=["EdDSA"], options={"verify_exp": False})
    assert _verify(api, "not-a-code")["result"] == "invalid"


def test_a_code_fails_after_expiry(api, seeded, clock):
    lid = _licences(api, ENTERPRISE)["business_licence"]["licence_id"]
    shown = _present(api, ENTERPRISE, lid, ["number"], ttl_seconds=60)
    clock.advance(timedelta(seconds=59))
    assert _verify(api, shown["code"])["result"] == "valid"
    clock.advance(timedelta(seconds=1))
    expired = _verify(api, shown["code"])
    assert expired["result"] == "expired" and expired["fields"] is None


def test_a_code_fails_once_its_licence_is_revoked_or_the_code_withdrawn(api, seeded):
    lid = _licences(api, ENTERPRISE)["business_licence"]["licence_id"]
    first = _present(api, ENTERPRISE, lid, ["number"])
    second = _present(api, ENTERPRISE, lid, ["holder_name"])
    withdrawn = api.delete(f"/me/presentations/{first['presentation_id']}", user=ENTERPRISE)
    assert withdrawn.status == 204
    assert _verify(api, first["code"])["result"] == "revoked"
    assert _verify(api, second["code"])["result"] == "valid"
    body = {"subject_id": ENTERPRISE_ID, "licence_id": lid, "reason": "吊销"}
    assert api.post("/licences/revocations", body, user=ENTERPRISE).status == 403
    revoked = api.post("/licences/revocations", body, user="u-admin")
    assert revoked.status == 200 and revoked.json["status"] == "revoked"
    checked = _verify(api, second["code"])
    assert checked["result"] == "revoked" and checked["fields"] is None
    # A revoked licence is neither shown again nor offered by pre-fill.
    again = api.post(f"/me/licences/{lid}/presentations", {"fields": ["number"]}, user=ENTERPRISE)
    assert again.status == 422 and again.json["code"] == "licence_not_in_force"
    pre = api.get("/items/QP-RS-201/prefill", user=ENTERPRISE).json
    assert "business_licence" not in pre["exempt_materials"]


def test_an_expired_licence_cannot_be_shown_and_fields_are_checked(api, seeded):
    firm = _licences(api, ENTERPRISE)
    expired = firm["food_operation_licence"]["licence_id"]
    refused = api.post(
        f"/me/licences/{expired}/presentations", {"fields": ["number"]}, user=ENTERPRISE
    )
    assert refused.status == 422 and refused.json["code"] == "licence_not_in_force"
    lid = firm["business_licence"]["licence_id"]
    bad = api.post(f"/me/licences/{lid}/presentations", {"fields": ["address"]}, user=ENTERPRISE)
    assert bad.status == 400


def test_the_person_and_the_enterprise_code_use_the_same_mechanism(api, seeded):
    person = api.post("/me/code", {"fields": ["name"]}, user=ZHANG)
    assert person.status == 201 and person.json["kind"] == "subject"
    checked = _verify(api, person.json["code"])
    assert checked == {
        "result": "valid",
        "kind": "subject",
        "fields": {"name": "张伟"},
        "expires_at": checked["expires_at"],
    }
    firm = api.post("/me/code", {"fields": ["name", "subject_id"]}, user=ENTERPRISE).json
    assert _verify(api, firm["code"])["fields"] == {
        "name": "上海绿境科技有限公司",
        "subject_id": ENTERPRISE_ID,
    }


# ---- authorisations ---------------------------------------------------------------------------


def _grant(api, user: str, clock, **body) -> dict:
    payload = {
        "agent_user_id": ZHANG,
        "items": ["QP-RS-201"],
        "valid_until": (clock.now() + timedelta(days=30)).isoformat(),
        **body,
    }
    result = api.post("/me/authorisations", payload, user=user)
    assert result.status == 201, result
    return result.json


def test_an_agent_acts_only_within_the_authorised_items_and_period(api, flow, seeded, clock):
    # Without an authorisation the employee cannot act for the enterprise.
    refused = api.get("/items/QP-RS-201/prefill", user=ZHANG, headers=ACT)
    assert refused.status == 403 and refused.json["code"] == "not_authorised"
    grant = _grant(api, ENTERPRISE, clock)
    assert grant["status"] == "active" and grant["subject_id"] == ENTERPRISE_ID

    pre = api.get("/items/QP-RS-201/prefill", user=ZHANG, headers=ACT)
    assert pre.status == 200
    values = {f["name"]: f["value"] for f in pre.json["fields"]}
    assert values["company_name"] == "上海绿境科技有限公司"  # the enterprise's data, not Zhang's
    body = {
        "item_code": "QP-RS-201",
        "prefill_token": pre.json["prefill_token"],
        "fields": {**values, "employees": 12},
        "materials": [pdf("labour_contract", "上海绿境科技有限公司"), pdf("roster")],
    }
    submitted = api.post("/applications", body, user=ZHANG, headers=ACT)
    assert submitted.status == 202, submitted
    application_id = submitted.json["application_id"]
    flow.pump()
    app = api.get(f"/applications/{application_id}", user=ZHANG, headers=ACT).json
    assert app["state"] == "accepted"
    # The enterprise sees what its agent filed; the agent outside the authorisation does not.
    assert api.get(f"/applications/{application_id}", user=ENTERPRISE).status == 200
    assert api.get(f"/applications/{application_id}", user=ZHANG).status == 404
    assert application_id not in {
        a["application_id"] for a in api.get("/me/applications", user=ZHANG).json["items"]
    }
    # Another item is outside the authorisation.
    other = api.get("/items/QP-SC-103/prefill", user=ZHANG, headers=ACT)
    assert other.status == 403 and other.json["code"] == "item_not_authorised"
    # After the period, nothing.
    clock.advance(timedelta(days=30))
    late = api.get(f"/applications/{application_id}", user=ZHANG, headers=ACT)
    assert late.status == 403 and late.json["code"] == "not_authorised"

    # The audit says who acted for whom.
    records = audit_records(seeded, "application")
    filed = next(r for r in records if r.subject_id == application_id)
    assert filed.actor_id == ZHANG
    assert filed.details["on_behalf_of"] == ENTERPRISE_ID
    assert filed.details["authorisation_id"] == grant["authorisation_id"]


def test_revocation_takes_effect_at_once_and_ends_the_sub_authorisations(api, seeded, clock):
    grant = _grant(api, ENTERPRISE, clock, items=["*"], may_sub_authorise=True)
    assert api.get("/items/QP-SC-103/prefill", user=ZHANG, headers=ACT).status == 200
    # Zhang passes part of it on to Li, within his own period.
    sub = _grant(
        api,
        ZHANG,
        clock,
        agent_user_id=LI,
        items=["QP-SC-103"],
        subject_id=ENTERPRISE_ID,
        valid_until=(clock.now() + timedelta(days=10)).isoformat(),
    )
    assert sub["parent_id"] == grant["authorisation_id"]
    assert api.get("/items/QP-SC-103/prefill", user=LI, headers=ACT).status == 200
    assert api.get("/items/QP-RS-201/prefill", user=LI, headers=ACT).status == 403
    # Li may not pass it on (not allowed), nor beyond Zhang's period.
    beyond = api.post(
        "/me/authorisations",
        {
            "agent_user_id": LI,
            "items": ["*"],
            "subject_id": ENTERPRISE_ID,
            "valid_until": (clock.now() + timedelta(days=60)).isoformat(),
        },
        user=ZHANG,
    )
    assert beyond.status == 422 and beyond.json["code"] == "beyond_authorised_period"
    received = api.get("/me/authorisations?role=received", user=LI).json["items"]
    assert [a["authorisation_id"] for a in received] == [sub["authorisation_id"]]
    granted = api.get("/me/authorisations", user=ENTERPRISE).json["items"]
    assert {a["authorisation_id"] for a in granted} == {
        grant["authorisation_id"],
        sub["authorisation_id"],
    }

    # Someone else cannot revoke it; the enterprise can, and it counts on the next request.
    assert api.delete(f"/me/authorisations/{grant['authorisation_id']}", user=LI).status == 404
    revoked = api.delete(f"/me/authorisations/{grant['authorisation_id']}", user=ENTERPRISE)
    assert revoked.status == 200 and revoked.json["status"] == "revoked"
    assert api.get("/items/QP-SC-103/prefill", user=ZHANG, headers=ACT).status == 403
    assert api.get("/items/QP-SC-103/prefill", user=LI, headers=ACT).status == 403
    records = audit_records(seeded, "authorisation")
    assert {(r.action, r.actor_id) for r in records} >= {
        ("authorisation.granted", ENTERPRISE),
        ("authorisation.granted", ZHANG),
        ("authorisation.revoked", ENTERPRISE),
    }


def test_only_the_subject_or_its_legal_representative_grants(api, seeded, clock):
    refused = api.post(
        "/me/authorisations",
        {
            "agent_user_id": LI,
            "items": ["*"],
            "subject_id": ENTERPRISE_ID,
            "valid_until": (clock.now() + timedelta(days=1)).isoformat(),
        },
        user=ZHANG,
    )
    assert refused.status == 403 and refused.json["code"] == "not_grantor"
    # The legal representative, with his own personal account, may.
    from chalicelib.domain.directory import UserProfile
    from chalicelib.domain.identity import Role

    seeded.directory.put_user(
        UserProfile("u-citizen-wang", Role.CITIZEN, "王建国", subject_id="310118198001011237")
    )
    grant = _grant(api, "u-citizen-wang", clock, subject_id=ENTERPRISE_ID)
    assert grant["grantor_user_id"] == "u-citizen-wang"
    # A person authorises a family member for their own affairs.
    family = _grant(api, LI, clock, agent_user_id=ZHANG, items=["QP-YB-301"])
    assert family["subject_id"] == "310118194801150026"
    pre = api.get(
        "/items/QP-YB-301/prefill", user=ZHANG, headers={"X-Acting-For": "310118194801150026"}
    )
    assert pre.status == 200
    assert {f["name"]: f["value"] for f in pre.json["fields"]}["name"] == "李秀英"


# ---- the materials library --------------------------------------------------------------------


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_second_application_reuses_the_first_ones_accepted_materials(api, flow, seeded, clock):
    contract = pdf(
        "labour_contract",
        "上海绿境科技有限公司",
        content_hash=_hash("contract"),
        valid_until="2027-12-31",
    )
    roster = pdf("roster", content_hash=_hash("roster"))
    first = flow.submit(
        ENTERPRISE, "QP-RS-201", fields={"employees": 12}, materials=[contract, roster]
    )
    assert first.status == 202
    flow.pump()
    first_id = first.json["application_id"]
    # Not offered before the approval.
    assert "labour_contract" not in flow.prefill(ENTERPRISE, "QP-RS-201")["exempt_materials"]
    decided = api.post(
        f"/applications/{first_id}/decision", {"outcome": "approve"}, user="u-dept-rsj"
    )
    assert decided.status == 200

    library = api.get("/me/materials", user=ENTERPRISE).json["items"]
    assert {(m["code"], m["content_hash"], m["source"]) for m in library} == {
        ("labour_contract", _hash("contract"), f"application:{first_id}"),
        ("roster", _hash("roster"), f"application:{first_id}"),
    }
    pre = flow.prefill(ENTERPRISE, "QP-RS-201")
    assert {"labour_contract", "roster", "business_licence"} <= set(pre["exempt_materials"])
    sources = {s["code"]: s["source"] for s in pre["exempt_sources"]}
    assert sources["labour_contract"] == f"application:{first_id}"
    assert sources["business_licence"].startswith("elicence:business_licence:")

    second = flow.submit(ENTERPRISE, "QP-RS-201", fields={"employees": 15})
    assert second.status == 202
    flow.pump()
    app = flow.read(second.json["application_id"], ENTERPRISE)
    assert app["state"] == "accepted", app["findings"]
    assert app["exempt_sources"]["labour_contract"] == f"application:{first_id}"
    department = api.get(f"/applications/{second.json['application_id']}", user="u-dept-rsj")
    assert department.json["exempt_sources"]["roster"] == f"application:{first_id}"
    assert not [f for f in app["findings"] if f["target"].startswith("material:")]


def test_an_expired_or_revoked_kept_material_is_not_offered(api, flow, seeded, clock):
    from chalicelib.service_layer import wallet

    deps = wallet.WalletDeps.from_container(seeded)

    class Kept:  # what keeping reads of an accepted material
        def __init__(self, code, content_hash, valid_until):
            self.code, self.content_hash, self.valid_until = code, content_hash, valid_until
            self.file_name, self.file_type, self.size_kb = f"{code}.pdf", "pdf", 10

    wallet.keep_accepted_materials(
        deps,
        ENTERPRISE_ID,
        "a" * 32,
        "QP-RS-201",
        [
            Kept("labour_contract", _hash("old"), "2026-11-25"),
            Kept("roster", _hash("roster"), None),
        ],
        clock.now().isoformat(),
    )
    pre = flow.prefill(ENTERPRISE, "QP-RS-201")
    assert "labour_contract" not in pre["exempt_materials"]  # ended yesterday
    assert "roster" in pre["exempt_materials"]
    wallet.revoke_material(
        deps,
        seeded.directory.get_user("u-admin").principal(),
        ENTERPRISE_ID,
        _hash("roster"),
        "材料失效",
    )
    assert "roster" not in flow.prefill(ENTERPRISE, "QP-RS-201")["exempt_materials"]


# ---- the expiry reminder ----------------------------------------------------------------------


@pytest.mark.first_sweep
def test_an_issued_licence_is_reminded_thirty_days_before_its_end(api, flow, seeded, clock):
    from chalicelib.service_layer import due
    from chalicelib.service_layer.wallet import EXPIRY_REMINDER

    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    flow.pump()
    app = flow.read(submitted.json["application_id"], ENTERPRISE)
    assert app["state"] == "approved"
    issued = _licences(api, ENTERPRISE)["food_sale_filing"]
    assert issued["valid_until"] == "2031-11-26"
    filed = seeded.due_store.get(EXPIRY_REMINDER, issued["licence_id"])
    assert filed is not None and filed["due_at"].startswith("2031-10-27T09:00")

    def reminder():
        from chalicelib.domain.notifications import notification_id_for

        key = f"licence-expiry:{issued['licence_id']}:2031-11-26:{ENTERPRISE}"
        return seeded.notifier.get(notification_id_for(key))

    clock.set(clock.now().replace(year=2031, month=10, day=27, hour=8))
    due.sweep(seeded.due_store, clock, seeded)
    assert reminder() is None
    clock.advance(timedelta(hours=1, minutes=1))
    report = due.sweep(seeded.due_store, clock, seeded)
    assert report.outcomes.get("reminded") == 1
    sent = reminder()
    assert sent is not None and sent.category == "wallet.licence_expiring"
    assert sent.recipient_id == ENTERPRISE and "2031-11-26" in sent.body
    # Once: the next sweep has nothing left to do.
    assert due.sweep(seeded.due_store, clock, seeded).outcomes == {}


# These two jump five years to a licence's reminder: a first run there looks back a week, where
# a sweep resuming at the test's start would read every hourly bucket of the five years.
@pytest.mark.first_sweep
def test_a_revoked_licence_is_not_reminded(api, flow, seeded, clock):
    from chalicelib.service_layer import due
    from chalicelib.service_layer.wallet import EXPIRY_REMINDER

    submitted = flow.submit(ENTERPRISE, "QP-SC-103", fields={"sale_type": "预包装食品"})
    flow.pump()
    assert flow.read(submitted.json["application_id"], ENTERPRISE)["state"] == "approved"
    issued = _licences(api, ENTERPRISE)["food_sale_filing"]
    body = {"subject_id": ENTERPRISE_ID, "licence_id": issued["licence_id"], "reason": "注销"}
    assert api.post("/licences/revocations", body, user="u-admin").status == 200
    assert seeded.due_store.get(EXPIRY_REMINDER, issued["licence_id"])["status"] == "cancelled"
    clock.set(clock.now().replace(year=2031, month=10, day=28))
    assert "reminded" not in due.sweep(seeded.due_store, clock, seeded).outcomes


def test_an_agent_with_several_grants_passes_on_the_one_that_allows_it(api, seeded, clock):
    _grant(api, ENTERPRISE, clock, items=["QP-RS-201"], may_sub_authorise=False)
    passable = _grant(api, ENTERPRISE, clock, items=["QP-SC-103"], may_sub_authorise=True)
    sub = _grant(api, ZHANG, clock, agent_user_id=LI, items=["QP-SC-103"], subject_id=ENTERPRISE_ID)
    assert sub["parent_id"] == passable["authorisation_id"]
    # Filing under the second grant, the audit names that grant.
    pre = api.get("/items/QP-SC-103/prefill", user=ZHANG, headers=ACT).json
    values = {f["name"]: f["value"] for f in pre["fields"]}
    body = {
        "item_code": "QP-SC-103",
        "prefill_token": pre["prefill_token"],
        "fields": {**values, "sale_type": "预包装食品"},
    }
    filed = api.post("/applications", body, user=ZHANG, headers=ACT)
    assert filed.status == 202, filed
    record = next(
        r
        for r in audit_records(seeded, "application")
        if r.subject_id == filed.json["application_id"]
    )
    assert record.details["authorisation_id"] == passable["authorisation_id"]
    refused = api.post(
        "/me/authorisations",
        {
            "agent_user_id": LI,
            "items": ["QP-RS-201"],
            "subject_id": ENTERPRISE_ID,
            "valid_until": (clock.now() + timedelta(days=1)).isoformat(),
        },
        user=ZHANG,
    )
    assert refused.status == 422 and refused.json["code"] == "beyond_authorised_items"
