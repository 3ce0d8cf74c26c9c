"""Policy versions, grants and their transitions; push preferences and the digest text."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain import policies as domain
from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.policies import GrantState, Mode, PolicyVersion, VersionState

AT = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)
CONDITIONS = {"all": [{"fact": "employees", "op": "ge", "value": 10}]}


def version(**changes) -> PolicyVersion:
    base = PolicyVersion(
        policy_id="qp-test",
        version=1,
        title="稳岗补贴",
        department_id="dept-rsj",
        effective_from=date(2026, 1, 1),
        effective_to=date(2026, 12, 31),
        legal_ref="青府发〔2026〕3号",
        benefit="2万元",
        amount=20000,
        benefit_key="jobs",
        mode=Mode.CONFIRM,
        conditions=CONDITIONS,
        tags=("稳就业",),
    )
    return replace(base, **changes)


def test_a_version_survives_its_stored_form():
    v = version(service_item_code=None, effective_to=None)
    assert PolicyVersion.from_dict(v.to_dict()) == v
    assert v.to_dict()["effective_from"] == "2026-01-01" and v.mode_label == "确认兑现"


def test_conditions_are_validated_as_data_on_save():
    with pytest.raises(InvalidInput) as caught:
        domain.validate_version(version(conditions={"fact": "no_such_fact", "op": "eq"}))
    assert caught.value.code == "invalid_policy"
    assert any(f["field"] == "conditions" for f in caught.value.fields)


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"effective_to": date(2025, 12, 31)}, "effective_to"),
        ({"mode": Mode.APPLY, "service_item_code": None}, "item_code"),
        ({"subject_kind": "robot"}, "subject_kind"),
        ({"benefit_key": " "}, "benefit_key"),
    ],
)
def test_an_unusable_version_is_refused_with_the_field_named(changes, field):
    with pytest.raises(InvalidInput) as caught:
        domain.validate_version(version(**changes))
    assert field in [f["field"] for f in caught.value.fields]
    assert all(f["message"] for f in caught.value.fields)


def test_draft_is_published_then_retired_and_only_published_is_effective():
    draft = version()
    assert not draft.is_effective_on(date(2026, 6, 1))
    published = domain.publish(draft, by="u-supervisor-zhao", at=AT)
    assert published.state is VersionState.PUBLISHED and published.published_by
    assert published.is_effective_on(date(2026, 6, 1))
    assert not published.is_effective_on(date(2027, 1, 1))
    with pytest.raises(RuleViolation) as caught:
        domain.publish(published, by="x", at=AT)
    assert "已发布" in caught.value.message
    retired = domain.retire(published, at=AT)
    assert retired.state is VersionState.RETIRED and not retired.is_effective_on(date(2026, 6, 1))


def test_overlap_of_an_open_ended_version():
    v = version(effective_to=None)
    assert v.overlaps(date(2030, 1, 1), date(2030, 2, 1))
    assert not v.overlaps(date(2025, 1, 1), date(2025, 12, 31))


def test_one_grant_id_per_subject_and_version():
    a = domain.grant_id_for("S1", "qp-test", 1)
    assert a == domain.grant_id_for("S1", "qp-test", 1)
    assert a != domain.grant_id_for("S1", "qp-test", 2)
    assert a != domain.grant_id_for("S2", "qp-test", 1)


def test_direct_grants_go_to_payment_and_confirm_grants_wait():
    direct = domain.new_grant(version(mode=Mode.DIRECT), "S1", {"outcome": "eligible"}, AT)
    assert direct.state is GrantState.PAYING and direct.confirm_due is None
    waiting = domain.new_grant(version(), "S1", {}, AT, clock_id="c1", confirm_due="2026-12-10")
    assert waiting.state is GrantState.PENDING_CONFIRMATION
    assert waiting.confirm_due == "2026-12-10" and waiting.clock_id == "c1"
    with pytest.raises(ValueError):
        domain.new_grant(version(mode=Mode.APPLY, service_item_code="QP-RC-501"), "S1", {}, AT)


def test_confirm_then_pay_and_the_refused_transitions_explain_in_chinese():
    grant = domain.new_grant(version(), "S1", {}, AT)
    confirmed = domain.transition(grant, "confirm", AT, by="u1")
    paying = domain.transition(confirmed, "start_payment", AT)
    paid = domain.transition(paying, "mark_paid", AT, payment_ref="PAY1", paid_at=AT.isoformat())
    assert paid.state is GrantState.PAID and paid.payment_ref == "PAY1"
    assert [e["event"] for e in paid.events] == ["granted", "confirm", "start_payment", "mark_paid"]
    with pytest.raises(RuleViolation) as caught:
        domain.transition(paid, "decline", AT)
    assert caught.value.code == "grant_state" and "已到账" in caught.value.message
    expired = domain.transition(grant, "expire", AT)
    with pytest.raises(RuleViolation):
        domain.transition(expired, "confirm", AT)
    assert domain.Grant.from_dict(paid.to_dict()) == paid


def test_a_duplicate_subsidy_bars_for_five_years():
    assert domain.is_barred("2022-06-01", date(2026, 11, 26))
    assert not domain.is_barred("2021-06-01", date(2026, 11, 26))
    assert not domain.is_barred(None, date(2026, 11, 26))
    assert domain.is_barred("2024-02-29", date(2029, 2, 27))


def test_push_preferences_per_tag():
    from chalicelib.service_layer.policies import wanted

    quick = {"kind": "quick_apply", "tags": ["人才", "住房"]}
    assert wanted({"default": True, "tags": {}}, quick)
    assert not wanted({"default": True, "tags": {"住房": False}}, quick)
    assert wanted({"default": False, "tags": {"人才": True}}, quick)
    assert not wanted({"default": False, "tags": {}}, quick)
    confirm = {"kind": "grant", "mode": "confirm", "tags": ["住房"]}
    assert wanted({"default": False, "tags": {"住房": False}}, confirm)  # needs an answer


def test_the_digest_names_each_item_in_chinese():
    from chalicelib.service_layer.policies import digest_text

    title, body = digest_text(
        [
            {"kind": "grant", "title": "稳岗补贴", "mode": "confirm", "amount": 20000},
            {"kind": "grant", "title": "高企奖励", "mode": "direct", "amount": 250000},
            {"kind": "quick_apply", "title": "人才安居补贴"},
        ]
    )
    assert title == "政策提醒：您有2项免申即享政策待兑现、1项可快速申报的政策"
    assert "稳岗补贴：20000元，请在期限内确认" in body and "250000元，将直接拨付" in body
    assert "人才安居补贴：符合条件，可一键申报" in body


def _record(event: str, keys: dict, new: dict | None = None, old: dict | None = None):
    from types import SimpleNamespace

    return SimpleNamespace(
        event_name=SimpleNamespace(name=event),
        dynamodb=SimpleNamespace(keys=keys, new_image=new, old_image=old),
    )


def test_only_changed_profiles_and_licences_trigger_a_rematch():
    from chalicelib.entrypoints.events.policies import changed_subject

    profile = {"pk": "subject#S1", "sk": "profile"}
    assert changed_subject(_record("INSERT", profile, {"data": "a"})) == "S1"
    assert changed_subject(_record("MODIFY", profile, {"data": "b"}, {"data": "a"})) == "S1"
    assert changed_subject(_record("MODIFY", profile, {"data": "a"}, {"data": "a"})) is None
    licence = {"pk": "subject#S1", "sk": "lic#high_tech_enterprise#GR1"}
    assert changed_subject(_record("INSERT", licence, {"data": "x"})) == "S1"
    assert changed_subject(_record("REMOVE", profile, None, {"data": "a"})) is None
    assert changed_subject(_record("INSERT", {"pk": "app#1", "sk": "app"}, {"data": "x"})) is None
    assert changed_subject(_record("INSERT", {"pk": "kpi#2026-11", "sk": "app#1"}, {})) is None


def test_a_malformed_payment_message_is_refused():
    from chalicelib.entrypoints.events.policies import parse_payment

    assert parse_payment('{"grant_id": "g' + "0" * 24 + '"}') == ("g" + "0" * 24, None)
    for body in ('{"grant_id": "x"}', "[]", "{}"):
        with pytest.raises(ValueError):
            parse_payment(body)
