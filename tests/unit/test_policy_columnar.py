"""The columnar evaluator agrees with the scalar one, subject by subject."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from chalicelib.domain.policy_rules import FACTS, LICENCES, Outcome, evaluate, parse_conditions
from functions.policy_matcher.columnar import (
    ELIGIBLE,
    NOT_ELIGIBLE,
    OUTCOMES,
    UNKNOWN,
    FactColumns,
    compile_condition,
    evaluate_columns,
    evaluate_many,
)

AS_OF = date(2026, 11, 27)

CONDITIONS: list[dict[str, Any]] = [
    {"fact": "registered_capital", "op": "ge", "value": 500},
    {"fact": "employees", "op": "in", "value": [0, 10, 50]},
    {"fact": "tax_credit_rating", "op": "in", "value": ["A", "B"]},
    {"fact": "tax_credit_rating", "op": "ne", "value": "D"},
    {"fact": "industry", "op": "not_in", "value": ["C13", "ZZZ"]},
    {"fact": "registered_in_qingpu", "op": "eq", "value": True},
    {"fact": "founded_on", "op": "lt", "value": "2024-11-27"},
    {"fact": "high_tech_recognised_on", "op": "ne", "value": "2023-12-12"},
    {"fact": "last_major_violation_on", "op": "le", "value": "2024-11-27"},
    {"fact": "tags", "op": "contains", "value": "小微企业"},
    {"fact": "qualifications", "op": "contains", "value": "high_tech_enterprise"},
    {"years_since": "founded_on", "op": "ge", "value": 2},
    {"years_since": "high_tech_recognised_on", "op": "lt", "value": 1.5},
    {"months_since": "last_major_violation_on", "op": "gt", "value": 24},
    {"holds": "food_operation_licence"},
    {"not_listed": "serious_dishonesty", "years": 3},
    {"not_listed": "abnormal_operation", "years": 1},
    {"fact": "age", "op": "ge", "value": 60},
    {"fact": "elderly", "op": "ne", "value": True},
    {"fact": "age", "op": "in", "value": [18, 35]},
    {
        "all": [
            {"fact": "subject_kind", "op": "eq", "value": "enterprise"},
            {"fact": "registered_in_qingpu", "op": "eq", "value": True},
            {"fact": "tax_in_qingpu", "op": "eq", "value": True},
            {"years_since": "founded_on", "op": "ge", "value": 2},
            {"fact": "tax_credit_rating", "op": "eq", "value": "A"},
            {"not_listed": "major_violation", "years": 2},
            {"not_listed": "duplicate_subsidy", "years": 5},
        ]
    },
    {
        "any": [
            {"holds": "high_tech_enterprise"},
            {"all": [{"fact": "employees", "op": "gt", "value": 10}, {"not": {"holds": "x"}}]},
            {"not": {"fact": "credit_status", "op": "eq", "value": "good"}},
        ]
    },
    {
        "not": {
            "any": [
                {"fact": "household_in_qingpu", "op": "eq", "value": False},
                {"fact": "talent_level", "op": "in", "value": ["A", "B"]},
                {"fact": "disabled", "op": "eq", "value": True},
            ]
        }
    },
]

DATES = {
    "founded_on": (date(2014, 1, 1), date(2027, 3, 1)),
    "last_major_violation_on": (date(2020, 1, 1), date(2027, 3, 1)),
    "serious_dishonesty_listed_on": (date(2020, 1, 1), date(2027, 3, 1)),
    "abnormal_operation_listed_on": (date(2023, 1, 1), date(2027, 3, 1)),
    "duplicate_subsidy_found_on": (date(2019, 1, 1), date(2027, 3, 1)),
    "birth_date": (date(1940, 1, 1), date(2010, 12, 31)),
}
STRINGS = {
    "subject_kind": ["enterprise", "person"],
    "credit_status": ["good", "bad", "serious_bad"],
    "industry": ["I6510", "C13", "C14", "M7320"],
    "industry_section": ["I", "C", "M"],
    "tax_credit_rating": ["A", "B", "M", "C", "D"],
    "gender": ["male", "female"],
    "talent_level": ["A", "B", "C"],
}
NUMBERS = [0, 10, 12.5, 50, 500, 500.0, 1000, 3000]
LICENCE_TYPES = ["food_operation_licence", "high_tech_enterprise", "business_licence"]


def _day(rng: random.Random, low: date, high: date) -> str:
    # Half the dates fall on the evaluation day's month-day, to exercise anniversaries.
    if rng.random() < 0.5:
        year = rng.randint(low.year, high.year)
        return date(year, AS_OF.month, AS_OF.day).isoformat()
    return (low + timedelta(days=rng.randrange((high - low).days))).isoformat()


def random_facts(rng: random.Random) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for spec in FACTS.values():
        if spec.source is not None or rng.random() < 0.15:  # derived, or unknown
            continue
        if rng.random() < 0.02:
            facts[spec.name] = rng.choice(["垃圾", -1, [1], {"a": 1}])  # malformed: unknown
        elif spec.type == "number":
            facts[spec.name] = rng.choice(NUMBERS)
        elif spec.type == "bool":
            facts[spec.name] = rng.random() < 0.5
        elif spec.type == "string":
            facts[spec.name] = rng.choice(STRINGS[spec.name])
        elif spec.type == "date":
            facts[spec.name] = None if rng.random() < 0.15 else _day(rng, *DATES[spec.name])
        else:
            facts[spec.name] = rng.sample(
                ["小微企业", "高新技术企业", "elderly"], rng.randint(0, 2)
            )
    if rng.random() < 0.9:
        facts[LICENCES] = {
            t: [random_period(rng) for _ in range(rng.randint(0, 2))]
            for t in rng.sample(LICENCE_TYPES, rng.randint(0, 3))
        }
    return facts


def random_period(rng: random.Random) -> list[str | None]:
    start = AS_OF + timedelta(days=rng.randint(-2000, 30))
    if rng.random() < 0.3:
        return [start.isoformat(), None]
    return [start.isoformat(), (start + timedelta(days=rng.randint(0, 2200))).isoformat()]


@pytest.fixture(scope="module")
def population() -> list[dict[str, Any]]:
    rng = random.Random(20261127)
    return [random_facts(rng) for _ in range(10_000)]


@pytest.fixture(scope="module")
def columns(population: list[dict[str, Any]]) -> FactColumns:
    return FactColumns.from_facts(population)


CODES = {Outcome.ELIGIBLE: ELIGIBLE, Outcome.NOT_ELIGIBLE: NOT_ELIGIBLE, Outcome.UNKNOWN: UNKNOWN}


@pytest.mark.parametrize("index", range(len(CONDITIONS)))
def test_scalar_and_columnar_agree_on_10000_random_subjects(
    index: int, population: list[dict[str, Any]], columns: FactColumns
) -> None:
    condition = parse_conditions(CONDITIONS[index])
    for as_of in (AS_OF, date(2025, 2, 28)):
        columnar = evaluate_columns(compile_condition(condition), columns, as_of)
        scalar = np.array([CODES[evaluate(condition, f, as_of).outcome] for f in population])
        disagree = np.flatnonzero(columnar != scalar)
        assert disagree.size == 0, (as_of, population[disagree[0]], columnar[disagree[0]])
        # Every outcome occurs, so the agreement is not vacuous.
        assert len(set(scalar.tolist())) >= 2


def test_every_outcome_occurs_across_the_conditions(columns: FactColumns) -> None:
    matrix = evaluate_many([compile_condition(c) for c in CONDITIONS], columns, AS_OF)
    assert matrix.shape == (len(CONDITIONS), 10_000)
    assert set(np.unique(matrix).tolist()) == {ELIGIBLE, NOT_ELIGIBLE, UNKNOWN}


def test_outcome_codes_map_to_outcomes() -> None:
    assert OUTCOMES[ELIGIBLE] is Outcome.ELIGIBLE
    assert OUTCOMES[UNKNOWN] is Outcome.UNKNOWN


def test_licence_expiry_as_of_in_columns() -> None:
    facts = [{LICENCES: {"food_operation_licence": [["2021-07-01", "2026-06-30"]]}}, {}]
    cols = FactColumns.from_facts(facts)
    compiled = compile_condition({"holds": "food_operation_licence"})
    assert evaluate_columns(compiled, cols, date(2026, 6, 30)).tolist() == [ELIGIBLE, UNKNOWN]
    assert evaluate_columns(compiled, cols, date(2026, 7, 1)).tolist() == [NOT_ELIGIBLE, UNKNOWN]


def test_empty_population() -> None:
    cols = FactColumns.from_facts([])
    assert evaluate_columns(compile_condition(CONDITIONS[-3]), cols, AS_OF).shape == (0,)


def test_columns_from_profiles_agree_with_the_scalar_evaluator() -> None:
    from chalicelib.domain.applications import ELicence, Profile
    from chalicelib.domain.policy_rules import facts_from

    firm = Profile(
        "91310118MA1JL0000X",
        "enterprise",
        "绿境科技",
        founded_on="2019-04-18",
        registered_in_qingpu=True,
        serious_dishonesty_listed_on="never",
    )
    high_tech = ELicence("high_tech_enterprise", "GR1", firm.subject_id, firm.name, "2025-12-01")
    elder = Profile("310118194801150026", "person", "李秀英", household_in_qingpu=True)
    unknown_id = Profile("P-1", "person", "无证号")
    subjects = [(firm, [high_tech]), (elder, []), (unknown_id, [])]
    columns = FactColumns.from_profiles(subjects)
    recognised = {"fact": "high_tech_recognised_on", "op": "ge", "value": "2025-01-01"}
    for data in [*CONDITIONS[10:], recognised]:
        condition = parse_conditions(data)
        for as_of in (AS_OF, date(2025, 6, 1)):
            codes = evaluate_columns(compile_condition(condition), columns, as_of).tolist()
            expected = [
                CODES[evaluate(condition, facts_from(p, lic), as_of).outcome] for p, lic in subjects
            ]
            assert codes == expected, data
