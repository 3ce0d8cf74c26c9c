"""Applications domain: item validation, pre-fill, pre-review outcomes and typed findings,
automatic decisions, KPIs. Pure: no AWS."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from chalicelib.domain import applications as d
from chalicelib.domain.calendar import CHINA_TZ
from chalicelib.domain.errors import InvalidInput
from local.seed_applications import ITEMS, LICENCES, PROFILES

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
TODAY = NOW.date()
ENTERPRISE = PROFILES[0]
CITIZEN = PROFILES[1]


def item(code: str) -> d.ServiceItem:
    return next(i for i in ITEMS if i.code == code)


def licences_of(subject: str) -> list[d.ELicence]:
    return [x for x in LICENCES if x.holder_id == subject]


def application(spec: d.ServiceItem, profile: d.Profile, **changes) -> d.Application:
    pre = d.prefill(spec, profile, licences_of(profile.subject_id), {}, NOW)
    values = {f.name: f.value for f in pre.fields}
    values.update(changes.pop("fields", {}))
    base = d.Application(
        application_id="a" * 32,
        item_code=spec.code,
        item_version=spec.version,
        item_name=spec.name,
        department_id=spec.department_id,
        applicant_user_id="u",
        subject_id=profile.subject_id,
        applicant_name=profile.name,
        fields=values,
        materials=[],
        locked=pre.locked,
        prefilled_fields=pre.filled,
        total_fields=len(pre.fields),
        exempt_materials=list(pre.exempt_materials),
        commitment=False,
        channel="online",
        state=d.State.SUBMITTED,
        created_at=NOW.isoformat(),
        updated_at=NOW.isoformat(),
    )
    return replace(base, **changes)


def review(spec, app, profile=ENTERPRISE) -> d.Review:
    return d.pre_review(spec, app, profile, licences_of(profile.subject_id), TODAY)


def pdf(code: str, holder: str | None = None, **kw) -> d.Material:
    return d.Material(
        code, f"{code}.pdf", kw.pop("file_type", "pdf"), kw.pop("size_kb", 100), holder, **kw
    )


def test_every_seeded_item_is_valid_and_promised_never_exceeds_statutory():
    for spec in ITEMS:
        assert d.validate_item(spec) is spec
    with pytest.raises(InvalidInput) as error:
        d.validate_item(replace(item("QP-RS-201"), promised_days=30))
    assert error.value.code == "promised_exceeds_statutory"
    with pytest.raises(InvalidInput) as error:
        d.validate_item(replace(item("QP-RS-201"), supplement_days=10))
    assert error.value.code == "supplement_exceeds_promised"


def test_item_round_trips_through_its_mapping():
    for spec in ITEMS:
        assert d.ServiceItem.from_dict(spec.to_dict()) == spec


def test_prefill_locks_verified_values_and_exempts_materials_of_valid_elicences():
    pre = d.prefill(item("QP-RS-201"), ENTERPRISE, licences_of(ENTERPRISE.subject_id), {}, NOW)
    assert pre.filled / len(pre.fields) >= 0.7
    assert pre.locked["company_name"] == "上海绿境科技有限公司"
    assert pre.locked["business_licence_no"] == ENTERPRISE.subject_id
    assert "business_licence" in pre.exempt_materials
    employees = next(f for f in pre.fields if f.name == "employees")
    assert employees.value is None and not employees.verified


def test_values_from_earlier_applications_fill_but_are_not_locked():
    pre = d.prefill(
        item("QP-YB-301"), CITIZEN, licences_of(CITIZEN.subject_id), {"destination": "吴江"}, NOW
    )
    destination = next(f for f in pre.fields if f.name == "destination")
    assert destination.value == "吴江" and destination.source == "history"
    assert "destination" not in pre.locked


def test_a_changed_locked_value_is_an_incorrect_finding():
    findings = d.check_locked({"company_name": "A"}, {"company_name": "B"})
    assert [(f.reason, f.code) for f in findings] == [(d.Reason.INCORRECT, "locked_field_changed")]


def test_complete_application_passes():
    spec = item("QP-RS-201")
    app = application(
        spec,
        ENTERPRISE,
        fields={"employees": 8},
        materials=[pdf("labour_contract", ENTERPRISE.name), pdf("roster")],
    )
    assert review(spec, app) == d.Review(d.Outcome.PASSED, ())


def test_missing_key_material_requests_supplement_as_incomplete():
    spec = item("QP-RS-201")
    app = application(spec, ENTERPRISE, fields={"employees": 8}, materials=[pdf("roster")])
    result = review(spec, app)
    assert result.outcome is d.Outcome.SUPPLEMENT
    assert [(f.target, f.reason) for f in result.findings] == [
        ("material:labour_contract", d.Reason.INCOMPLETE)
    ]


def test_missing_non_key_material_is_tolerated_unless_credit_is_bad():
    spec = item("QP-RS-201")
    app = application(
        spec,
        ENTERPRISE,
        fields={"employees": 8},
        materials=[pdf("labour_contract", ENTERPRISE.name)],
    )
    assert review(spec, app).outcome is d.Outcome.TOLERATED
    bad = replace(ENTERPRISE, credit_status="bad")
    result = d.pre_review(spec, app, bad, licences_of(bad.subject_id), TODAY)
    assert result.outcome is d.Outcome.SUPPLEMENT
    assert "tolerance_excluded" in {f.code for f in result.findings}


def test_invalid_id_check_digit_is_incorrect():
    spec = item("QP-RS-201")
    app = application(
        spec,
        ENTERPRISE,
        fields={"employees": 8, "legal_representative_id": "310118198001011236"},
        materials=[pdf("labour_contract", ENTERPRISE.name), pdf("roster")],
        locked={},
    )
    result = review(spec, app)
    assert result.outcome is d.Outcome.SUPPLEMENT
    finding = next(f for f in result.findings if f.code == "id_number_invalid")
    assert finding.reason is d.Reason.INCORRECT


def test_a_failing_credit_code_check_digit_only_warns():
    spec = item("QP-RS-201")
    app = application(
        spec,
        ENTERPRISE,
        fields={"employees": 8, "credit_code": "91310118MA1JL0000A"},
        materials=[pdf("labour_contract", ENTERPRISE.name), pdf("roster")],
        locked={},
    )
    result = review(spec, app)
    assert result.outcome is d.Outcome.PASSED
    assert [(f.code, f.blocking) for f in result.findings] == [("credit_code_check_digit", False)]


def test_expired_elicence_and_expired_upload_are_expired_findings():
    spec = item("QP-SC-105")
    app = application(
        spec,
        ENTERPRISE,
        fields={"new_premises": "x"},
        materials=[pdf("floor_plan"), pdf("safety_rules", valid_until="2025-01-01")],
    )
    result = review(spec, app)
    expired = {f.target: f.code for f in result.findings if f.reason is d.Reason.EXPIRED}
    assert expired == {
        "material:food_licence": "elicence_expired",
        "material:safety_rules": "material_expired",
    }
    assert result.outcome is d.Outcome.SUPPLEMENT


def test_wrong_type_size_and_holder_name_are_incorrect():
    spec = item("QP-RS-201")
    app = application(
        spec,
        ENTERPRISE,
        fields={"employees": 8},
        materials=[
            pdf("labour_contract", "别的公司", file_type="doc", size_kb=99999),
            pdf("roster"),
        ],
    )
    codes = {f.code for f in review(spec, app).findings if f.reason is d.Reason.INCORRECT}
    assert codes == {"file_type_not_accepted", "file_too_large", "holder_name_mismatch"}


def test_a_person_applying_for_an_enterprise_item_is_rejected():
    spec = item("QP-RS-201")
    app = application(spec, ENTERPRISE)
    result = d.pre_review(spec, app, CITIZEN, [], TODAY)
    assert result.outcome is d.Outcome.REJECTED
    assert result.findings[0].code == "subject_mismatch"


def test_commitment_is_refused_to_serious_bad_credit():
    spec = item("QP-SC-105")
    app = application(spec, ENTERPRISE, fields={"new_premises": "x"}, commitment=True)
    bad = replace(ENTERPRISE, credit_status="serious_bad")
    result = d.pre_review(spec, app, bad, licences_of(bad.subject_id), TODAY)
    assert "commitment_excluded" in {f.code for f in result.findings}


def test_automatic_decision_records_every_rule_and_approves_only_when_all_pass():
    spec = item("QP-SC-103")
    app = application(spec, ENTERPRISE, fields={"sale_type": "预包装食品"})
    decision = d.auto_decide(spec, app, ENTERPRISE, NOW)
    assert decision.outcome == "approved" and len(decision.rules) == len(spec.auto_rules)
    risky = d.auto_decide(
        spec, application(spec, ENTERPRISE, fields={"sale_type": "散装"}), ENTERPRISE, NOW
    )
    assert risky.outcome == "manual"
    assert [r.passed for r in risky.rules] == [True, True, False]


def test_application_round_trips_through_its_mapping():
    spec = item("QP-SC-103")
    app = application(spec, ENTERPRISE, materials=[pdf("x")])
    app.findings = [d.Finding("field:a", d.Reason.EXPIRED, "c", "m")]
    app.decision = d.auto_decide(spec, app, ENTERPRISE, NOW)
    assert d.Application.from_dict(app.to_dict()) == app


def test_kpis_and_nearest_rank_percentile():
    assert d.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9
    assert d.percentile([], 90) is None
    facts = [
        d.KpiFacts("a", "X", 8, 10, True, 0, True, True, True, 2),
        d.KpiFacts("b", "X", 6, 10, True, 1, True, True, True, 4),
        d.KpiFacts("c", "X", 0, 10, False, 0, True, False, False, None),
    ]
    figures = d.kpis(facts)
    assert figures["prefill_rate"] == round(14 / 30, 4)
    assert figures["prereview_automation_rate"] == round(2 / 3, 4)
    assert figures["first_submission_success_rate"] == 0.5
    assert figures["online_completion_rate"] == 1.0
    assert figures["p90_processing_working_days"] == 4


def test_licence_validity_is_inclusive_of_its_last_day():
    licence = d.ELicence("t", "n", "h", "H", "2020-01-01", "2026-11-26")
    assert licence.is_valid_on(date(2026, 11, 26))
    assert not licence.is_valid_on(date(2026, 11, 27))
