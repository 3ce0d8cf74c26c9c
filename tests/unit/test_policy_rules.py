"""Policy rules: conditions as data, three-valued evaluation, explanations, facts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.applications import ELicence, Profile
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.personal_data import id_number_check_char
from chalicelib.domain.policy_rules import (
    FACTS,
    LICENCES,
    MAX_DEPTH,
    Outcome,
    conditions_facts,
    evaluate,
    facts_from,
    label_of,
    parse_conditions,
)

E, N, U = Outcome.ELIGIBLE, Outcome.NOT_ELIGIBLE, Outcome.UNKNOWN
AS_OF = date(2026, 11, 27)

ENTERPRISE = {
    "subject_kind": "enterprise",
    "registered_in_qingpu": True,
    "tax_in_qingpu": False,
    "founded_on": "2025-05-27",
    "industry": "I6510",
    "tax_credit_rating": "B",
    "registered_capital": 300.0,
    "employees": 12,
    "tags": ["小微企业"],
    "last_major_violation_on": None,  # recorded: never
    "serious_dishonesty_listed_on": "2024-01-10",
    LICENCES: {"food_operation_licence": [["2021-07-01", "2026-06-30"]]},
}


def outcome(condition: dict, facts: dict = ENTERPRISE, as_of: date = AS_OF) -> Outcome:
    return evaluate(parse_conditions(condition), facts, as_of).outcome


def explain(condition: dict, facts: dict = ENTERPRISE, as_of: date = AS_OF) -> str:
    return evaluate(parse_conditions(condition), facts, as_of).results[0].explanation


def cond(fact: str, op: str, value: object) -> dict:
    return {"fact": fact, "op": op, "value": value}


# ---- operators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 300, E),
        ("eq", 301, N),
        ("ne", 300, N),
        ("ne", 1, E),
        ("lt", 300, N),
        ("lt", 300.5, E),
        ("le", 300, E),
        ("gt", 300, N),
        ("gt", 299, E),
        ("ge", 300, E),
        ("ge", 500, N),
        ("in", [100, 300], E),
        ("in", [100], N),
        ("not_in", [100], E),
        ("not_in", [300], N),
    ],
)
def test_number_operators(op: str, value: object, expected: Outcome) -> None:
    assert outcome(cond("registered_capital", op, value)) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [("eq", "B", E), ("eq", "A", N), ("ne", "A", E), ("in", ["A", "B"], E), ("not_in", ["B"], N)],
)
def test_string_operators(op: str, value: object, expected: Outcome) -> None:
    assert outcome(cond("tax_credit_rating", op, value)) is expected


def test_bool_operators() -> None:
    assert outcome(cond("registered_in_qingpu", "eq", True)) is E
    assert outcome(cond("tax_in_qingpu", "eq", True)) is N
    assert outcome(cond("tax_in_qingpu", "ne", True)) is E


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("lt", "2025-05-28", E),
        ("lt", "2025-05-27", N),
        ("le", "2025-05-27", E),
        ("gt", "2025-05-27", N),
        ("ge", "2025-05-27", E),
        ("eq", "2025-05-27", E),
        ("ne", "2025-05-27", N),
    ],
)
def test_date_comparisons(op: str, value: str, expected: Outcome) -> None:
    assert outcome(cond("founded_on", op, value)) is expected


def test_contains_on_a_set_fact() -> None:
    assert outcome(cond("tags", "contains", "小微企业")) is E
    assert outcome(cond("tags", "contains", "高新技术企业")) is N


def test_years_since_counts_whole_months_and_explains_actual_and_required() -> None:
    condition = {"years_since": "founded_on", "op": "ge", "value": 2}
    assert outcome(condition) is N
    assert explain(condition) == "成立年限 1.5 年，需满 2 年"
    assert outcome(condition, as_of=date(2027, 5, 26)) is N  # one day before the anniversary
    assert outcome(condition, as_of=date(2027, 5, 27)) is E


def test_months_since() -> None:
    condition = {"months_since": "founded_on", "op": "ge", "value": 18}
    assert outcome(condition) is E
    assert outcome(condition, as_of=date(2026, 11, 26)) is N


def test_never_is_long_ago_for_adverse_events_and_no_date_for_others() -> None:
    since = {"years_since": "last_major_violation_on", "op": "ge", "value": 2}
    assert outcome(since) is E
    assert "无记录" in explain(since)
    facts = ENTERPRISE  # no high-tech licence: never recognised
    assert outcome(cond("high_tech_recognised_on", "lt", "2020-01-01"), facts) is N
    assert outcome(cond("high_tech_recognised_on", "ne", "2020-01-01"), facts) is E
    assert outcome({"years_since": "high_tech_recognised_on", "op": "ge", "value": 1}, facts) is N


def test_holds_a_licence_as_of_the_date_including_its_expiry() -> None:
    condition = {"holds": "food_operation_licence"}
    assert outcome(condition, as_of=date(2026, 6, 30)) is E  # last valid day
    assert outcome(condition, as_of=date(2026, 7, 1)) is N
    assert outcome(condition, as_of=date(2021, 6, 30)) is N  # not yet issued
    assert explain(condition, as_of=date(2026, 7, 1)) == (
        "食品经营许可证：已于 2026-06-30 过期，需在 2026-07-01 持有有效证照"
    )
    assert outcome({"holds": "business_licence"}) is N
    assert outcome(cond("qualifications", "contains", "food_operation_licence")) is N
    assert (
        outcome(
            cond("qualifications", "contains", "food_operation_licence"), as_of=date(2026, 1, 1)
        )
        is E
    )


def test_not_listed_within_years() -> None:
    listed_2024 = {"not_listed": "serious_dishonesty", "years": 3}
    assert outcome(listed_2024) is N
    assert "2024-01-10 记入" in explain(listed_2024)
    assert "需近 3 年内无记录" in explain(listed_2024)
    assert outcome(listed_2024, as_of=date(2027, 1, 10)) is E  # three years on
    assert outcome(listed_2024, as_of=date(2023, 12, 31)) is E  # not yet listed then
    assert outcome({"not_listed": "major_violation", "years": 2}) is E  # recorded never
    assert outcome({"not_listed": "abnormal_operation", "years": 3}) is U  # not recorded


# ---- three-valued logic ------------------------------------------------------------------


TRUE = cond("registered_in_qingpu", "eq", True)
FALSE = cond("tax_in_qingpu", "eq", True)
UNKNOWN = cond("annual_revenue", "ge", 1)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"all": [TRUE, TRUE]}, E),
        ({"all": [TRUE, UNKNOWN]}, U),
        ({"all": [UNKNOWN, FALSE]}, N),
        ({"any": [FALSE, FALSE]}, N),
        ({"any": [FALSE, UNKNOWN]}, U),
        ({"any": [UNKNOWN, TRUE]}, E),
        ({"not": TRUE}, N),
        ({"not": FALSE}, E),
        ({"not": UNKNOWN}, U),
        ({"not": {"all": [TRUE, {"any": [FALSE, UNKNOWN]}]}}, U),
    ],
)
def test_three_valued_logic(condition: dict, expected: Outcome) -> None:
    assert outcome(condition) is expected


def test_unknown_names_the_missing_data() -> None:
    evaluation = evaluate(
        parse_conditions({"all": [TRUE, UNKNOWN, {"fact": "age", "op": "ge", "value": 60}]}),
        ENTERPRISE,
        AS_OF,
    )
    assert evaluation.outcome is U
    assert evaluation.missing_facts == ("annual_revenue", "birth_date")
    assert evaluation.reasons == ("缺少数据：上年度营业收入", "缺少数据：出生日期")


def test_reasons_are_the_failed_conditions_only() -> None:
    condition = {
        "all": [
            TRUE,
            cond("tax_credit_rating", "eq", "A"),
            {"any": [FALSE, cond("registered_capital", "ge", 500)]},
            UNKNOWN,
        ]
    }
    evaluation = evaluate(parse_conditions(condition), ENTERPRISE, AS_OF)
    assert evaluation.outcome is N
    assert evaluation.reasons == (
        "纳税信用等级 B，需为 A",
        "在青浦区纳税：否，需为“是”",
        "注册资本 300 万元，需不少于 500 万元",
    )


def test_a_failed_negation_is_explained_as_one() -> None:
    evaluation = evaluate(parse_conditions({"all": [TRUE, {"not": TRUE}]}), ENTERPRISE, AS_OF)
    assert evaluation.reasons == ("不得满足：注册地在青浦区：是，需为“是”",)


def test_missing_licence_data_is_labelled() -> None:
    facts = {k: v for k, v in ENTERPRISE.items() if k != LICENCES}
    evaluation = evaluate(parse_conditions({"holds": "x"}), facts, AS_OF)
    assert evaluation.missing_facts == (LICENCES,)
    assert evaluation.reasons == ("缺少数据：电子证照",)
    assert label_of(LICENCES) == "电子证照"
    assert label_of("founded_on") == "成立日期"


def test_trace_is_json_and_records_every_condition() -> None:
    condition = {"all": [TRUE, {"years_since": "founded_on", "op": "ge", "value": 2}]}
    trace = evaluate(parse_conditions(condition), ENTERPRISE, AS_OF).trace()
    assert json.loads(json.dumps(trace, ensure_ascii=False)) == trace
    assert trace["as_of"] == "2026-11-27"
    assert trace["outcome"] == "not_eligible"
    assert [r["path"] for r in trace["results"]] == ["$", "$.all[0]", "$.all[1]"]
    assert trace["results"][2]["actual"] == 1.5
    assert trace["results"][2]["required"] == 2


def test_evaluate_accepts_condition_data() -> None:
    assert evaluate(TRUE, ENTERPRISE, AS_OF).outcome is E


def test_malformed_fact_values_count_as_unknown() -> None:
    facts = {**ENTERPRISE, "registered_capital": "很多", "founded_on": "2025-13-01"}
    assert outcome(cond("registered_capital", "ge", 1), facts) is U
    assert outcome({"years_since": "founded_on", "op": "ge", "value": 1}, facts) is U


def test_conditions_facts_names_the_stored_facts_read() -> None:
    condition = parse_conditions(
        {
            "all": [
                TRUE,
                {"not": cond("age", "lt", 18)},
                {"holds": "business_licence"},
                {"any": [{"not_listed": "serious_dishonesty", "years": 3}]},
            ]
        }
    )
    assert conditions_facts(condition) == {
        "registered_in_qingpu",
        "birth_date",
        LICENCES,
        "serious_dishonesty_listed_on",
    }


def test_conditions_round_trip_through_data() -> None:
    data = {
        "all": [
            cond("industry", "in", ["I6510", "C13"]),
            {"months_since": "founded_on", "op": "gt", "value": 6},
            {"not": {"holds": "high_tech_enterprise"}},
            {"not_listed": "duplicate_subsidy", "years": 5},
            cond("founded_on", "lt", "2020-01-01"),
        ]
    }
    assert parse_conditions(parse_conditions(data).to_data()) == parse_conditions(data)


# ---- validation -----------------------------------------------------------------------------


def invalid(data: object) -> list[dict[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_conditions(data)
    assert caught.value.code == "invalid_conditions"
    return caught.value.fields


def test_unknown_fact_is_refused_with_its_path() -> None:
    fields = invalid({"all": [TRUE, cond("revenue", "ge", 1)]})
    assert fields == [
        {
            "field": "conditions.all[1].fact",
            "message": "未知的数据项“revenue”",
            "type": "unknown_fact",
        }
    ]


def test_wrong_operator_for_the_fact_type_is_refused() -> None:
    (field,) = invalid(cond("tags", "ge", 1))
    assert field["field"] == "conditions.op"
    assert field["type"] == "invalid_operator"
    assert "“标签”不支持运算“ge”" in field["message"]
    (field,) = invalid({"years_since": "registered_capital", "op": "ge", "value": 1})
    assert field["type"] == "invalid_operator"


@pytest.mark.parametrize(
    "data",
    [
        cond("registered_capital", "ge", "500"),
        cond("registered_capital", "ge", True),
        cond("tax_credit_rating", "eq", "AAA"),
        cond("founded_on", "lt", "2020-02-30"),
        cond("registered_in_qingpu", "eq", "yes"),
        cond("industry", "in", []),
        {"years_since": "founded_on", "op": "ge", "value": -1},
        {"not_listed": "serious_dishonesty", "years": 0},
        {"holds": "高新"},
    ],
)
def test_bad_values_are_refused(data: dict) -> None:
    fields = invalid(data)
    assert fields and all(f["type"] == "invalid_value" or f["type"] == "not_a_list" for f in fields)
    assert all(f["message"] for f in fields)


def test_every_problem_is_listed() -> None:
    fields = invalid({"any": [cond("nope", "eq", 1), {"holds": 1}, {"all": []}, {"x": 1}]})
    assert [f["field"] for f in fields] == [
        "conditions.any[0].fact",
        "conditions.any[1].holds",
        "conditions.any[2].all",
        "conditions.any[3]",
    ]


def test_unknown_list_and_extra_keys_are_refused() -> None:
    assert invalid({"not_listed": "blacklist", "years": 3})[0]["type"] == "unknown_list"
    assert invalid({**TRUE, "label": "x"})[0]["type"] == "unexpected_key"


def test_nesting_depth_and_size_are_limited() -> None:
    deep: dict = TRUE
    for _ in range(MAX_DEPTH):
        deep = {"not": deep}
    assert invalid(deep)[0]["type"] == "too_deep"
    wide = {"all": [{"any": [TRUE] * 30}, {"any": [TRUE] * 30}, {"any": [TRUE] * 30}]}
    assert invalid(wide)[0]["type"] == "too_many_nodes"
    assert invalid({"all": [TRUE] * 33})[0]["type"] == "too_many_items"


# ---- facts -----------------------------------------------------------------------------------


def person_id(birth: str) -> str:
    first17 = f"310118{birth}123"
    return first17 + id_number_check_char(first17)


def test_catalogue_covers_typical_conditions() -> None:
    assert 20 <= len(FACTS) <= 30
    for name in ("founded_on", "tax_credit_rating", "serious_dishonesty_listed_on", "age"):
        assert FACTS[name].label
    assert FACTS["registered_capital"].unit == "万元"


def test_age_turns_on_the_birthday_as_of_the_date() -> None:
    profile = Profile(person_id("19661127"), "person", "老王")
    facts = facts_from(profile, [])
    assert facts["birth_date"] == "1966-11-27"
    elderly = cond("elderly", "eq", True)
    assert outcome(elderly, facts, date(2026, 11, 26)) is N
    assert outcome(elderly, facts, date(2026, 11, 27)) is E
    assert explain(cond("age", "ge", 60), facts, date(2026, 11, 26)) == "年龄 59 岁，需不少于 60 岁"


def test_facts_from_an_enterprise_profile_and_licences() -> None:
    profile = Profile(
        "91310118MA1JL0000X",
        "enterprise",
        "上海绿境科技有限公司",
        industry="I6510 软件开发",
        registered_capital=500.0,
        founded_on="2019-04-18",
        tags=("小微企业",),
        registered_in_qingpu=True,
        tax_credit_rating="A",
        last_major_violation_on="never",
        serious_dishonesty_listed_on=None,
    )
    licences = [
        ELicence("high_tech_enterprise", "GR2023", profile.subject_id, profile.name, "2023-12-12"),
        ELicence("high_tech_enterprise", "GR2020", profile.subject_id, profile.name, "2020-12-01"),
        ELicence(
            "food_operation_licence",
            "JY1",
            profile.subject_id,
            profile.name,
            "2021-07-01",
            "2030-01-01",
            status="revoked",
        ),
    ]
    facts = facts_from(profile, licences)
    assert facts["industry"] == "I6510"
    assert facts["industry_section"] == "I"
    first_recognised = cond("high_tech_recognised_on", "eq", "2020-12-01")
    assert outcome(first_recognised, facts) is E
    assert conditions_facts(parse_conditions(first_recognised)) == {LICENCES}
    recent = {"years_since": "high_tech_recognised_on", "op": "le", "value": 1}
    assert outcome(recent, facts, date(2021, 6, 1)) is E
    assert outcome(recent, facts, date(2020, 11, 30)) is N  # not yet recognised then
    assert facts["last_major_violation_on"] is None  # recorded never
    assert "serious_dishonesty_listed_on" not in facts  # not recorded: unknown
    assert "food_operation_licence" not in facts[LICENCES]  # revoked
    assert json.loads(json.dumps(facts)) == facts
    assert outcome({"not_listed": "major_violation", "years": 2}, facts) is E
    assert outcome({"not_listed": "serious_dishonesty", "years": 3}, facts) is U
    assert outcome({"holds": "high_tech_enterprise"}, facts) is E


def test_old_stored_profiles_still_load() -> None:
    old = {
        "subject_id": "x",
        "kind": "enterprise",
        "name": "旧企业",
        "tags": ["小微企业"],
        "credit_status": "good",
    }
    profile = Profile.from_dict(old)
    assert profile.tax_credit_rating is None
    assert "tax_credit_rating" not in facts_from(profile, [])


# ---- laws and packaging ----------------------------------------------------------------------

LEAVES = [TRUE, FALSE, UNKNOWN, cond("registered_capital", "ge", 100), {"holds": "x"}]


@given(
    a=st.sampled_from(LEAVES),
    b=st.sampled_from(LEAVES),
    capital=st.one_of(st.none(), st.integers(0, 200)),
)
def test_de_morgan_and_double_negation_hold(a: dict, b: dict, capital: int | None) -> None:
    facts = {k: v for k, v in ENTERPRISE.items() if k != "registered_capital"}
    if capital is not None:
        facts["registered_capital"] = capital
    assert outcome({"not": {"all": [a, b]}}, facts) is outcome(
        {"any": [{"not": a}, {"not": b}]}, facts
    )
    assert outcome({"not": {"not": a}}, facts) is outcome(a, facts)


def test_the_rules_module_stays_light() -> None:
    code = (
        "import sys, chalicelib.domain.policy_rules; "
        "heavy = {'numpy', 'boto3', 'pynamodb', 'chalice'} & set(sys.modules); "
        "sys.exit(sorted(heavy) or 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
