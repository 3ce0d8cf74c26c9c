"""The policy rules of `chalicelib.domain.policy_rules` over a whole population, with numpy.

Facts are turned into columns once (`FactColumns.from_facts`); each condition is then evaluated
for every subject at once: a node yields two boolean vectors (is eligible, is not eligible;
neither means unknown), so the three-valued logic is a few vector operations per node and
there is no per-subject Python loop. Values are read with the scalar module's coercion, so both
evaluators treat missing and malformed data alike.

    columns = FactColumns.from_facts([facts_from(p, licences[p.subject_id]) for p in profiles])
    compiled = compile_condition(policy_conditions)          # dict data or a parsed Condition
    codes = evaluate_columns(compiled, columns, as_of)       # int8 ELIGIBLE/NOT_ELIGIBLE/UNKNOWN
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import reduce
from typing import Any

import numpy as np

from chalicelib.domain import policy_rules as rules
from chalicelib.domain.policy_rules import FACTS, LICENCES, Outcome

NOT_ELIGIBLE, ELIGIBLE, UNKNOWN = 0, 1, 2
OUTCOMES: dict[int, Outcome] = {
    NOT_ELIGIBLE: Outcome.NOT_ELIGIBLE,
    ELIGIBLE: Outcome.ELIGIBLE,
    UNKNOWN: Outcome.UNKNOWN,
}

_EPOCH = date(1970, 1, 1).toordinal()
_NEVER = 0  # ordinal of "never": before every real date (ordinals start at 1)
_UNKNOWN_INT = -1
_NO_VALUE = -2  # a string code no subject has


@dataclass(frozen=True)
class DateColumn:
    ordinal: np.ndarray  # int64; _NEVER for never, _UNKNOWN_INT when unknown
    known: np.ndarray  # bool
    never: np.ndarray  # bool
    month_index: np.ndarray  # int64 months since 1970-01 (garbage where not a date)
    day: np.ndarray  # int64 day of month
    long_ago: bool  # a "never" reads as infinitely long ago (else: as no date)

    def months_until(self, as_of: date) -> np.ndarray:
        """Whole months from each date to as_of, as floats; never: +inf (long ago) or NaN."""
        target = (as_of.year - 1970) * 12 + as_of.month - 1
        months = (target - self.month_index - (as_of.day < self.day)).astype(np.float64)
        months[self.never] = np.inf if self.long_ago else np.nan
        return months


@dataclass(frozen=True)
class PairsColumn:
    """A many-valued fact as (subject, value code) pairs; licences add a validity period."""

    known: np.ndarray  # bool per subject
    subject: np.ndarray  # int64 per pair
    code: np.ndarray  # int64 per pair
    vocab: dict[str, int]
    start: np.ndarray | None = None  # int64 ordinal per pair
    end: np.ndarray | None = None  # int64 ordinal per pair (max for open-ended)

    def having(self, value: str, n: int, mask: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        code = self.vocab.get(value)
        if code is None:
            return out
        selected = self.code == code
        if mask is not None:
            selected &= mask
        out[self.subject[selected]] = True
        return out


class FactColumns:
    """Every stored fact of a population as numpy columns."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.numbers: dict[str, np.ndarray] = {}  # float64, NaN unknown
        self.bools: dict[str, np.ndarray] = {}  # int8: 1, 0, -1 unknown
        self.strings: dict[str, tuple[np.ndarray, dict[str, int]]] = {}  # int64 codes, -1 unknown
        self.dates: dict[str, DateColumn] = {}
        self.sets: dict[str, PairsColumn] = {}
        self.licences: PairsColumn | None = None
        self._cache: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def from_facts(cls, facts_list: Sequence[dict[str, Any]]) -> FactColumns:
        columns = cls(len(facts_list))
        for spec in FACTS.values():
            if spec.source is None:
                values = [rules.coerce_fact(spec.name, facts) for facts in facts_list]
                columns._add(spec, values)
        licences = [rules.coerce_fact(LICENCES, facts) for facts in facts_list]
        columns.licences = _licence_column(licences)
        first = [
            v if rules.is_missing(v) else rules.first_held(v, rules.HIGH_TECH) for v in licences
        ]
        columns._add(FACTS["high_tech_recognised_on"], first)
        return columns

    @classmethod
    def from_profiles(cls, subjects: Iterable[tuple[Any, list[Any]]]) -> FactColumns:
        """From (Profile, [ELicence]) pairs, in order."""
        return cls.from_facts([rules.facts_from(p, licences) for p, licences in subjects])

    def _add(self, spec: rules.FactSpec, values: list[Any]) -> None:
        missing = np.fromiter((rules.is_missing(v) for v in values), bool, len(values))
        if spec.type == rules.NUMBER:
            self.numbers[spec.name] = np.array(
                [np.nan if m else v for v, m in zip(values, missing, strict=True)], np.float64
            )
        elif spec.type == rules.BOOL:
            self.bools[spec.name] = np.array(
                [-1 if m else int(v) for v, m in zip(values, missing, strict=True)], np.int8
            )
        elif spec.type == rules.STRING:
            vocab: dict[str, int] = {}
            codes = [
                -1 if m else vocab.setdefault(v, len(vocab))
                for v, m in zip(values, missing, strict=True)
            ]
            self.strings[spec.name] = (np.array(codes, np.int64), vocab)
        elif spec.type == rules.DATE:
            self.dates[spec.name] = _date_column(values, missing, spec.never_long_ago)
        else:
            self.sets[spec.name] = _set_column(values, missing)

    # ---- derived and cached vectors ------------------------------------------------------

    def cached(self, key: tuple[Any, ...], build: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def date_column(self, fact: str, as_of: date) -> DateColumn:
        """A date fact as of a day: a licence-derived date (first recognised) that comes later
        reads as never."""
        column = self.dates[fact]
        if FACTS[fact].source != LICENCES:
            return column

        def build() -> DateColumn:
            later = column.known & (column.ordinal > as_of.toordinal())
            ordinal = np.where(later, _NEVER, column.ordinal)
            return replace(column, ordinal=ordinal, never=column.never | later)

        return self.cached(("date", fact, as_of), build)

    def months_since(self, fact: str, as_of: date) -> np.ndarray:
        return self.cached(
            ("months", fact, as_of), lambda: self.date_column(fact, as_of).months_until(as_of)
        )

    def age(self, as_of: date) -> np.ndarray:
        """Full years as floats, NaN where the birth date is unknown (or "never")."""

        def build() -> np.ndarray:
            born = self.dates["birth_date"]
            age = np.floor(self.months_since("birth_date", as_of) / 12)
            age[~born.known | born.never] = np.nan
            return age

        return self.cached(("age", as_of), build)

    def valid_licences(self, as_of: date) -> np.ndarray:
        lic = self.licences
        assert lic is not None and lic.start is not None and lic.end is not None
        day = as_of.toordinal()
        return self.cached(("valid", as_of), lambda: (lic.start <= day) & (lic.end >= day))


def _date_column(values: list[Any], missing: np.ndarray, long_ago: bool) -> DateColumn:
    never = np.fromiter((v is None for v in values), bool, len(values))
    ordinal = np.array(
        [
            _UNKNOWN_INT if m else (_NEVER if v is None else v.toordinal())
            for v, m in zip(values, missing, strict=True)
        ],
        np.int64,
    )
    real = np.where(ordinal > 0, ordinal, _EPOCH) - _EPOCH
    days = real.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    day_of_month = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return DateColumn(
        ordinal, ~missing, never & ~missing, months.astype(np.int64), day_of_month, long_ago
    )


def _set_column(values: list[Any], missing: np.ndarray) -> PairsColumn:
    vocab: dict[str, int] = {}
    subjects: list[int] = []
    codes: list[int] = []
    for i, value in enumerate(values):
        if not missing[i]:
            for item in value:
                subjects.append(i)
                codes.append(vocab.setdefault(item, len(vocab)))
    return PairsColumn(~missing, np.array(subjects, np.int64), np.array(codes, np.int64), vocab)


def _licence_column(values: list[Any]) -> PairsColumn:
    missing = np.fromiter((rules.is_missing(v) for v in values), bool, len(values))
    vocab: dict[str, int] = {}
    subjects, codes, starts, ends = [], [], [], []
    open_end = date.max.toordinal()
    for i, value in enumerate(values):
        if missing[i]:
            continue
        for type_, periods in value.items():
            code = vocab.setdefault(type_, len(vocab))
            for start, end in periods:
                subjects.append(i)
                codes.append(code)
                starts.append(start.toordinal())
                ends.append(open_end if end is None else end.toordinal())
    return PairsColumn(
        ~missing,
        np.array(subjects, np.int64),
        np.array(codes, np.int64),
        vocab,
        np.array(starts, np.int64),
        np.array(ends, np.int64),
    )


# ---- compiling and evaluating ---------------------------------------------------------------


@dataclass(frozen=True)
class CompiledCondition:
    condition: rules.Condition


def compile_condition(condition: rules.Condition | dict[str, Any]) -> CompiledCondition:
    """Validate (dict data) once; the result can be evaluated over any columns and dates."""
    if isinstance(condition, dict):
        condition = rules.parse_conditions(condition)
    return CompiledCondition(condition)


def evaluate_columns(compiled: CompiledCondition, columns: FactColumns, as_of: date) -> np.ndarray:
    """One int8 outcome code per subject (ELIGIBLE, NOT_ELIGIBLE, UNKNOWN)."""
    true, false = _node(compiled.condition, columns, as_of)
    codes = np.full(columns.n, UNKNOWN, dtype=np.int8)
    codes[true] = ELIGIBLE
    codes[false] = NOT_ELIGIBLE
    return codes


def evaluate_many(
    compiled: Sequence[CompiledCondition], columns: FactColumns, as_of: date
) -> np.ndarray:
    """A (conditions × subjects) int8 matrix of outcome codes."""
    out = np.empty((len(compiled), columns.n), dtype=np.int8)
    for row, condition in enumerate(compiled):
        out[row] = evaluate_columns(condition, columns, as_of)
    return out


Vectors = tuple[np.ndarray, np.ndarray]


def _node(c: rules.Condition, cols: FactColumns, as_of: date) -> Vectors:
    if isinstance(c, rules.All | rules.AnyOf):
        parts = [_node(item, cols, as_of) for item in c.items]
        both, either = np.logical_and, np.logical_or
        true_op, false_op = (both, either) if isinstance(c, rules.All) else (either, both)
        return reduce(true_op, [p[0] for p in parts]), reduce(false_op, [p[1] for p in parts])
    if isinstance(c, rules.Not):
        true, false = _node(c.item, cols, as_of)
        return false, true
    known, ok = _LEAVES[type(c)](c, cols, as_of)
    return known & ok, known & ~ok


def _compare(op: str, left: np.ndarray, right: Any) -> np.ndarray:
    return {
        "eq": np.equal,
        "ne": np.not_equal,
        "lt": np.less,
        "le": np.less_equal,
        "gt": np.greater,
        "ge": np.greater_equal,
    }[op](left, right)


def _numbers(fact: str, cols: FactColumns, as_of: date) -> np.ndarray:
    if fact == "age":
        return cols.age(as_of)
    return cols.numbers[fact]


def _bools(fact: str, cols: FactColumns, as_of: date) -> np.ndarray:
    if fact == "elderly":
        age = cols.age(as_of)
        return np.where(np.isnan(age), -1, age >= rules.ELDERLY_AGE).astype(np.int8)
    return cols.bools[fact]


def _leaf_compare(c: rules.Compare, cols: FactColumns, as_of: date) -> Vectors:
    kind = FACTS[c.fact].type
    if kind == rules.NUMBER:
        values = _numbers(c.fact, cols, as_of)
        return ~np.isnan(values), _compare(c.op, values, c.value)
    if kind == rules.BOOL:
        values = _bools(c.fact, cols, as_of)
        return values >= 0, _compare(c.op, values, int(c.value))
    if kind == rules.STRING:
        codes, vocab = cols.strings[c.fact]
        return codes >= 0, _compare(c.op, codes, vocab.get(c.value, _NO_VALUE))
    column = cols.date_column(c.fact, as_of)  # never is ordinal 0: before every date
    ok = _compare(c.op, column.ordinal, c.value.toordinal())
    if not column.long_ago:
        ok = np.where(column.never, c.op == "ne", ok)
    return column.known, ok


def _leaf_member(c: rules.Member, cols: FactColumns, as_of: date) -> Vectors:
    if FACTS[c.fact].type == rules.NUMBER:
        values = _numbers(c.fact, cols, as_of)
        known, hit = ~np.isnan(values), np.isin(values, np.array(c.values, np.float64))
    else:
        codes, vocab = cols.strings[c.fact]
        wanted = np.array([vocab[v] for v in c.values if v in vocab], np.int64)
        known, hit = codes >= 0, np.isin(codes, wanted)
    return known, hit if c.op == "in" else ~hit


def _leaf_contains(c: rules.Contains, cols: FactColumns, as_of: date) -> Vectors:
    if FACTS[c.fact].source == LICENCES:
        return _leaf_holds(rules.Holds(c.value), cols, as_of)
    column = cols.sets[c.fact]
    return column.known, column.having(c.value, cols.n)


def _leaf_since(c: rules.Since, cols: FactColumns, as_of: date) -> Vectors:
    months = cols.months_since(c.fact, as_of)
    return cols.date_column(c.fact, as_of).known, _compare(c.op, months, c.months)


def _leaf_holds(c: rules.Holds, cols: FactColumns, as_of: date) -> Vectors:
    lic = cols.licences
    assert lic is not None
    return lic.known, lic.having(c.licence_type, cols.n, cols.valid_licences(as_of))


def _leaf_not_listed(c: rules.NotListed, cols: FactColumns, as_of: date) -> Vectors:
    column = cols.date_column(c.fact, as_of)
    later = column.ordinal > as_of.toordinal()
    long_ago = cols.months_since(c.fact, as_of) >= c.years * 12  # never: +inf
    return column.known, later | long_ago


_LEAVES = {
    rules.Compare: _leaf_compare,
    rules.Member: _leaf_member,
    rules.Contains: _leaf_contains,
    rules.Since: _leaf_since,
    rules.Holds: _leaf_holds,
    rules.NotListed: _leaf_not_listed,
}
