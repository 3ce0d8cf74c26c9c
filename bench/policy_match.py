"""Policy matching: subject·policy evaluations per second, columnar against scalar.

Builds a synthetic population (default 100,000 enterprises and people, as Profiles and
e-licences turned into facts by `policy_rules.facts_from`, about 15% of each fact unrecorded)
and 50 policies from ten templates of typical conditions (registration and tax in Qingpu,
years since founding, tax credit, credit lists, 高新技术企业, industry catalogue, age, talent,
disability). Then, in the same run:
- the columnar evaluator (functions/policy_matcher/columnar.py) over every subject × policy,
  best of 3 runs with its per-date cache emptied before each (column building timed apart);
- the scalar evaluator (chalicelib/domain/policy_rules.py) over a sample of subjects × every
  policy; both must give the same outcome on the sample;
- the cost of one profile change, from `bench/_policy_change.py` (written with the policy
  workflow) when it is present.
Goal: columnar ≥ 1,000,000 evaluations per second.

Prints a table, then, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import use_in_process_aws

use_in_process_aws()

AS_OF = date(2026, 11, 27)
GOAL = 1_000_000
CATALOGUE = [f"{s}{n:04d}" for s in "CIM" for n in range(1300, 1400, 7)]  # 45 district codes
LICENCE_TYPES = ("business_licence", "high_tech_enterprise", "food_operation_licence")


def _maybe(rng: random.Random, value: Any, unknown: float = 0.15) -> Any:
    return None if rng.random() < unknown else value


def _past(rng: random.Random, low_days: int, high_days: int) -> str:
    return (AS_OF - timedelta(days=rng.randint(low_days, high_days))).isoformat()


def _event(rng: random.Random, years: int) -> str | None:
    """A credit-list date: mostly recorded never, sometimes within `years`, sometimes unknown."""
    roll = rng.random()
    if roll < 0.7:
        return "never"
    return _past(rng, 1, 365 * years * 2) if roll < 0.85 else None


def enterprise(rng: random.Random, i: int) -> tuple[Any, list[Any]]:
    from chalicelib.domain.applications import ELicence, Profile

    sid = f"91310118{i:09d}X"
    profile = Profile(
        sid,
        "enterprise",
        f"企业{i}",
        industry=_maybe(rng, rng.choice([*CATALOGUE, "I6510", "F5123", "K7010"])),
        registered_capital=_maybe(rng, float(rng.choice([10, 50, 100, 300, 500, 1000, 5000]))),
        founded_on=_maybe(rng, _past(rng, 30, 365 * 25)),
        credit_status=rng.choice(["good"] * 8 + ["bad", "serious_bad"]),
        tags=tuple(t for t in ("小微企业", "专精特新") if rng.random() < 0.3),
        registered_in_qingpu=_maybe(rng, rng.random() < 0.8),
        tax_in_qingpu=_maybe(rng, rng.random() < 0.75),
        tax_credit_rating=_maybe(rng, rng.choice("AABBMCD")),
        last_major_violation_on=_event(rng, 2),
        serious_dishonesty_listed_on=_event(rng, 3),
        abnormal_operation_listed_on=_event(rng, 3),
        duplicate_subsidy_found_on=_event(rng, 5),
        employees=_maybe(rng, rng.choice([3, 8, 20, 50, 120, 400])),
        annual_revenue=_maybe(rng, float(rng.choice([50, 200, 1000, 5000, 20000]))),
    )
    licences = []
    for type_ in LICENCE_TYPES:
        if rng.random() < 0.4:
            start = AS_OF - timedelta(days=rng.randint(-30, 2500))
            end = None if rng.random() < 0.3 else start + timedelta(days=365 * 3)
            licences.append(
                ELicence(
                    type_, f"L{i}", sid, profile.name, start.isoformat(), end and end.isoformat()
                )
            )
    return profile, licences


def person(rng: random.Random, i: int) -> tuple[Any, list[Any]]:
    from chalicelib.domain.applications import Profile
    from chalicelib.domain.personal_data import id_number_check_char

    born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 65))
    first17 = f"310118{born:%Y%m%d}{i % 1000:03d}"
    sid = first17 + id_number_check_char(first17) if rng.random() < 0.9 else f"P{i}"
    profile = Profile(
        sid,
        "person",
        f"居民{i}",
        household_in_qingpu=_maybe(rng, rng.random() < 0.7),
        talent_level=_maybe(rng, rng.choice("ABCD"), 0.6),
        disabled=_maybe(rng, rng.random() < 0.05, 0.3),
        last_major_violation_on=_event(rng, 2),
        serious_dishonesty_listed_on=_event(rng, 3),
    )
    return profile, []


def population(n: int, seed: int = 6) -> list[dict[str, Any]]:
    from chalicelib.domain.policy_rules import facts_from

    rng = random.Random(seed)
    subjects = [(enterprise if rng.random() < 0.6 else person)(rng, i) for i in range(n)]
    return [facts_from(profile, licences) for profile, licences in subjects]


def _f(fact: str, op: str, value: Any) -> dict[str, Any]:
    return {"fact": fact, "op": op, "value": value}


def policies(count: int) -> list[dict[str, Any]]:
    enterprise = _f("subject_kind", "eq", "enterprise")
    person = _f("subject_kind", "eq", "person")
    local = [_f("registered_in_qingpu", "eq", True), _f("tax_in_qingpu", "eq", True)]
    templates = [
        lambda k: {
            "all": [
                enterprise,
                *local,
                {"holds": "high_tech_enterprise"},
                {"years_since": "high_tech_recognised_on", "op": "le", "value": k % 3 + 1},
                {"not_listed": "serious_dishonesty", "years": 3},
                {"not_listed": "duplicate_subsidy", "years": 5},
            ]
        },
        lambda k: {
            "all": [
                enterprise,
                *local,
                _f("employees", "ge", 10 * (k + 1)),
                _f("tax_credit_rating", "in", ["A", "B"]),
                {"not_listed": "major_violation", "years": 2},
                {"years_since": "founded_on", "op": "ge", "value": k + 1},
            ]
        },
        lambda k: {
            "all": [
                _f("industry", "in", CATALOGUE[k * 5 :] + CATALOGUE[: k * 5 : 2]),
                _f("registered_capital", "ge", 100 * (k + 1)),
                {"any": [_f("tags", "contains", "小微企业"), _f("annual_revenue", "ge", 1000)]},
            ]
        },
        lambda k: {
            "all": [
                person,
                _f("household_in_qingpu", "eq", True),
                _f("age", "ge", 60 + 5 * k),
            ]
        },
        lambda k: {
            "all": [
                person,
                _f("talent_level", "in", ["A", "B", "C"][: k % 3 + 1]),
                _f("age", "le", 35 + 2 * k),
                {"not_listed": "serious_dishonesty", "years": 3},
            ]
        },
        lambda k: {
            "all": [person, _f("disabled", "eq", True), _f("household_in_qingpu", "eq", True)]
        },
        lambda k: {
            "all": [
                enterprise,
                {"months_since": "founded_on", "op": "le", "value": 12 * (k + 1)},
                {"not_listed": "abnormal_operation", "years": 3},
                {"not": _f("credit_status", "eq", "serious_bad")},
            ]
        },
        lambda k: {
            "all": [
                {"holds": "food_operation_licence"},
                _f("industry_section", "in", ["F", "H", "I"][: k % 3 + 1]),
                _f("credit_status", "eq", "good"),
            ]
        },
        lambda k: {
            "any": [
                _f("tax_credit_rating", "eq", "A"),
                {"all": [_f("annual_revenue", "ge", 5000), _f("employees", "ge", 50 + k)]},
            ]
        },
        lambda k: {
            "all": [
                enterprise,
                *local,
                _f("founded_on", "lt", f"{2020 + k}-01-01"),
                {"not": {"holds": "business_licence"}},
            ]
        },
    ]
    return [templates[i % len(templates)](i // len(templates)) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--sample", type=int, default=2_000, help="subjects for the scalar rate")
    args = parser.parse_args()

    import numpy as np

    from chalicelib.domain.policy_rules import evaluate, parse_conditions
    from functions.policy_matcher.columnar import (
        OUTCOMES,
        FactColumns,
        compile_condition,
        evaluate_columns,
    )

    started = time.perf_counter()
    facts = population(args.subjects)
    generated_s = time.perf_counter() - started
    conditions = [parse_conditions(p) for p in policies(args.policies)]

    started = time.perf_counter()
    columns = FactColumns.from_facts(facts)
    build_s = time.perf_counter() - started

    compiled = [compile_condition(c) for c in conditions]
    runs = []
    for _ in range(3):
        columns._cache.clear()
        started = time.perf_counter()
        codes = [evaluate_columns(c, columns, AS_OF) for c in compiled]
        runs.append(time.perf_counter() - started)
    columnar_s = min(runs)
    evaluations = args.subjects * args.policies
    columnar_rate = evaluations / columnar_s

    sample = facts[: args.sample]
    started = time.perf_counter()
    scalar = [[evaluate(c, f, AS_OF).outcome for f in sample] for c in conditions]
    scalar_s = time.perf_counter() - started
    scalar_rate = len(sample) * len(conditions) / scalar_s
    agree = all(
        [OUTCOMES[int(x)] for x in row[: len(sample)]] == srow
        for row, srow in zip(codes, scalar, strict=True)
    )
    matrix = np.stack(codes)
    shares = {o.value: float((matrix == code).mean()) for code, o in OUTCOMES.items()}

    print(f"population: {args.subjects:,} subjects, {args.policies} policies, as of {AS_OF}")
    print(f"  generated in {generated_s:.1f} s; columns built in {build_s:.2f} s")
    print("  outcomes: " + ", ".join(f"{k} {v:.1%}" for k, v in shares.items()))
    print(f"{'evaluator':<28}{'evaluations':>14}{'seconds':>10}{'per second':>14}")
    print(
        f"{'columnar (best of 3)':<28}{evaluations:>14,}{columnar_s:>10.3f}{columnar_rate:>14,.0f}"
    )
    print(
        f"{'scalar (sample)':<28}{len(sample) * len(conditions):>14,}{scalar_s:>10.3f}"
        f"{scalar_rate:>14,.0f}"
    )
    ratio = columnar_rate / scalar_rate
    verdict = "ok" if columnar_rate >= GOAL else "MISSED"
    print(
        f"columnar / scalar: {ratio:,.0f}x; goal ≥ {GOAL:,}/s: {verdict}; "
        f"outcomes agree on the sample: {agree}"
    )

    change = _policy_change()
    result = {
        "subjects": args.subjects,
        "policies": args.policies,
        "columnar_evaluations_per_s": round(columnar_rate),
        "columnar_s": round(columnar_s, 4),
        "columns_build_s": round(build_s, 3),
        "scalar_evaluations_per_s": round(scalar_rate),
        "scalar_sample_subjects": len(sample),
        "columnar_to_scalar_ratio": round(ratio, 1),
        "goal_per_s": GOAL,
        "goal_met": columnar_rate >= GOAL,
        "sample_agrees": agree,
        "outcome_shares": {k: round(v, 4) for k, v in shares.items()},
        "profile_change": change,
    }
    print(json.dumps(result, ensure_ascii=False, separators=(",", ":")))


def _policy_change() -> Any:
    """The cost of one profile change, measured by `_policy_change.py` if it exists."""
    try:
        import _policy_change
    except ModuleNotFoundError as error:
        if error.name != "_policy_change":
            raise
        print("profile change cost: bench/_policy_change.py is absent, not measured")
        return None
    figures = _policy_change.measure()
    print("profile change cost (bench/_policy_change.py):")
    runs = figures.get("runs") if isinstance(figures, dict) else None
    for run in runs or [figures]:
        print(f"  {json.dumps(run, ensure_ascii=False)}")
    if runs:
        rest = {k: v for k, v in figures.items() if k != "runs"}
        print(f"  {json.dumps(rest, ensure_ascii=False)}")
    return figures


if __name__ == "__main__":
    main()
