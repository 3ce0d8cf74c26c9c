"""Policy rules as data: the facts catalogue, declarative conditions and a three-valued
evaluator (eligible / not eligible / unknown) with Chinese explanations. Pure Python.

Facts of a subject are a plain JSON-able dict (`facts_from`). A missing key means UNKNOWN.
Date facts hold an ISO date, or `None` for a recorded "never" (e.g. never listed): for an
adverse event (a violation, a listing) that reads as infinitely long ago, for any other date as
no date (only "ne" holds). `licences` maps an e-licence type to its validity periods; `age`,
`elderly`, `qualifications` and `high_tech_recognised_on` are derived as of the evaluation
date.

Condition data (validated by `parse_conditions`):
    {"fact": F, "op": "eq"|"ne"|"lt"|"le"|"gt"|"ge", "value": V}
    {"fact": F, "op": "in"|"not_in", "value": [V, ...]}
    {"fact": F, "op": "contains", "value": V}                 # set facts
    {"years_since"|"months_since": F, "op": OP, "value": N}   # date facts
    {"holds": LICENCE_TYPE}                                   # valid on the as-of date
    {"not_listed": LIST, "years": N}                          # see CREDIT_LISTS
    {"all": [C, ...]}, {"any": [C, ...]}, {"not": C}
The columnar evaluator (functions/policy_matcher/columnar.py) implements the same semantics.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeAlias

from chalicelib.domain.applications import ELicence, Profile
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.personal_data import is_valid_id_number


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    UNKNOWN = "unknown"


NUMBER, BOOL, STRING, DATE, SET = "number", "bool", "string", "date", "set"
NEVER = "never"  # how a Profile field records "never happened"
LICENCES = "licences"  # facts key: {licence type: [[valid_from, valid_until | None], ...]}
ELDERLY_AGE = 60
HIGH_TECH = "high_tech_enterprise"

MAX_DEPTH = 6
MAX_NODES = 64
MAX_ITEMS = 32
MAX_VALUES = 200


@dataclass(frozen=True)
class FactSpec:
    name: str
    type: str  # number | bool | string | date | set
    label: str
    unit: str = ""
    subject: str = "any"  # person | enterprise | any
    values: tuple[str, ...] = ()  # allowed values of a string fact (empty: any)
    source: str | None = None  # the stored fact a derived fact is computed from
    since_label: str = ""  # how "time since" this date reads
    # A recorded "never" of an adverse event (a violation, a listing) reads as infinitely long
    # ago; of any other date (founding, recognition) as no date, so only "ne" holds for it.
    never_long_ago: bool = False


_SPECS = (
    FactSpec("subject_kind", STRING, "主体类型", values=("person", "enterprise")),
    FactSpec("credit_status", STRING, "信用状况", values=("good", "bad", "serious_bad")),
    FactSpec("tags", SET, "标签"),
    FactSpec("qualifications", SET, "有效资质证照", source=LICENCES),
    FactSpec("registered_in_qingpu", BOOL, "注册地在青浦区", subject="enterprise"),
    FactSpec("tax_in_qingpu", BOOL, "在青浦区纳税", subject="enterprise"),
    FactSpec("founded_on", DATE, "成立日期", subject="enterprise", since_label="成立年限"),
    FactSpec("industry", STRING, "行业代码", subject="enterprise"),
    FactSpec("industry_section", STRING, "行业门类", subject="enterprise"),
    FactSpec(
        "tax_credit_rating",
        STRING,
        "纳税信用等级",
        subject="enterprise",
        values=("A", "B", "M", "C", "D"),
    ),
    FactSpec(
        "last_major_violation_on",
        DATE,
        "最近一次重大违法日期",
        since_label="距最近一次重大违法",
        never_long_ago=True,
    ),
    FactSpec(
        "serious_dishonesty_listed_on",
        DATE,
        "列入严重失信主体名单日期",
        since_label="距列入严重失信主体名单",
        never_long_ago=True,
    ),
    FactSpec(
        "abnormal_operation_listed_on",
        DATE,
        "列入经营异常名录日期",
        subject="enterprise",
        since_label="距列入经营异常名录",
        never_long_ago=True,
    ),
    FactSpec(
        "duplicate_subsidy_found_on",
        DATE,
        "认定重复享受补贴日期",
        since_label="距认定重复享受补贴",
        never_long_ago=True,
    ),
    FactSpec("registered_capital", NUMBER, "注册资本", "万元", subject="enterprise"),
    FactSpec("employees", NUMBER, "从业人数", "人", subject="enterprise"),
    FactSpec("annual_revenue", NUMBER, "上年度营业收入", "万元", subject="enterprise"),
    FactSpec(
        "high_tech_recognised_on",
        DATE,
        "首次认定高新技术企业日期",
        subject="enterprise",
        source=LICENCES,
        since_label="认定高新技术企业年限",
    ),
    FactSpec("birth_date", DATE, "出生日期", subject="person", since_label="年龄"),
    FactSpec("age", NUMBER, "年龄", "岁", subject="person", source="birth_date"),
    FactSpec("elderly", BOOL, "满60周岁老年人", subject="person", source="birth_date"),
    FactSpec("gender", STRING, "性别", subject="person", values=("male", "female")),
    FactSpec("household_in_qingpu", BOOL, "青浦区户籍", subject="person"),
    FactSpec("talent_level", STRING, "人才层次", subject="person"),
    FactSpec("disabled", BOOL, "持证残疾人", subject="person"),
)
FACTS: dict[str, FactSpec] = {s.name: s for s in _SPECS}

# How stored keys that are not catalogue facts read in "缺少数据：…".
_SOURCE_LABELS = {LICENCES: "电子证照"}

VALUE_LABELS: dict[str, dict[str, str]] = {
    "subject_kind": {"person": "个人", "enterprise": "企业"},
    "credit_status": {"good": "良好", "bad": "不良", "serious_bad": "严重失信"},
    "gender": {"male": "男", "female": "女"},
}

LICENCE_LABELS: dict[str, str] = {
    "business_licence": "营业执照",
    "food_operation_licence": "食品经营许可证",
    HIGH_TECH: "高新技术企业证书",
    "disability_certificate": "残疾人证",
    "household_register": "户口簿",
    "talent_certificate": "人才证书",
    "marriage_certificate": "结婚证",
}

# not_listed: list name -> (date fact, label)
CREDIT_LISTS: dict[str, tuple[str, str]] = {
    "serious_dishonesty": ("serious_dishonesty_listed_on", "严重失信主体名单"),
    "abnormal_operation": ("abnormal_operation_listed_on", "经营异常名录"),
    "major_violation": ("last_major_violation_on", "重大违法记录"),
    "duplicate_subsidy": ("duplicate_subsidy_found_on", "重复享受补贴认定"),
}

COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
OPERATORS: dict[str, tuple[str, ...]] = {
    NUMBER: (*COMPARISONS, "in", "not_in"),
    STRING: ("eq", "ne", "in", "not_in"),
    BOOL: ("eq", "ne"),
    DATE: COMPARISONS,
    SET: ("contains",),
}

# ---- conditions (parsed) ------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    fact: str
    op: str  # COMPARISONS
    value: Any  # float | str | bool | date

    def to_data(self) -> dict[str, Any]:
        return {"fact": self.fact, "op": self.op, "value": _jsonable(self.value)}


@dataclass(frozen=True)
class Member:
    fact: str
    op: str  # in | not_in
    values: tuple[Any, ...]

    def to_data(self) -> dict[str, Any]:
        return {"fact": self.fact, "op": self.op, "value": list(self.values)}


@dataclass(frozen=True)
class Contains:
    fact: str
    value: str

    def to_data(self) -> dict[str, Any]:
        return {"fact": self.fact, "op": "contains", "value": self.value}


@dataclass(frozen=True)
class Since:
    fact: str
    unit: str  # years | months
    op: str
    value: float

    @property
    def months(self) -> float:
        """The required value in whole months (both evaluators compare months)."""
        return self.value * 12 if self.unit == "years" else self.value

    def to_data(self) -> dict[str, Any]:
        return {f"{self.unit}_since": self.fact, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class Holds:
    licence_type: str

    def to_data(self) -> dict[str, Any]:
        return {"holds": self.licence_type}


@dataclass(frozen=True)
class NotListed:
    list_name: str
    years: float

    @property
    def fact(self) -> str:
        return CREDIT_LISTS[self.list_name][0]

    def to_data(self) -> dict[str, Any]:
        return {"not_listed": self.list_name, "years": self.years}


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]

    def to_data(self) -> dict[str, Any]:
        return {"all": [i.to_data() for i in self.items]}


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]

    def to_data(self) -> dict[str, Any]:
        return {"any": [i.to_data() for i in self.items]}


@dataclass(frozen=True)
class Not:
    item: Condition

    def to_data(self) -> dict[str, Any]:
        return {"not": self.item.to_data()}


Condition: TypeAlias = Compare | Member | Contains | Since | Holds | NotListed | All | AnyOf | Not
Leaf: TypeAlias = Compare | Member | Contains | Since | Holds | NotListed
LEAVES = (Compare, Member, Contains, Since, Holds, NotListed)

# ---- parsing and validation -------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []
        self.nodes = 0

    def add(self, path: str, message: str, type_: str) -> None:
        self.items.append({"field": path, "message": message, "type": type_})


def parse_conditions(data: Any, *, root: str = "conditions") -> Condition:
    """Validate condition data; raise InvalidInput listing every problem by path."""
    errors = _Errors()
    condition = _parse(data, root, 1, errors)
    if errors.nodes > MAX_NODES:
        errors.add(root, f"条件过多：共 {errors.nodes} 个，最多 {MAX_NODES} 个", "too_many_nodes")
    if errors.items or condition is None:
        first = errors.items[0]["message"] if errors.items else "条件格式不正确"
        raise InvalidInput(
            f"政策条件不符合要求：{first}", code="invalid_conditions", fields=errors.items
        )
    return condition


def _parse(data: Any, path: str, depth: int, errors: _Errors) -> Condition | None:
    errors.nodes += 1
    if not isinstance(data, dict) or not data:
        errors.add(path, "条件应为非空对象", "not_an_object")
        return None
    if depth > MAX_DEPTH:
        errors.add(path, f"条件嵌套过深，最多 {MAX_DEPTH} 层", "too_deep")
        return None
    for key, parser in _NODE_PARSERS.items():
        if key in data:
            return parser(data, path, depth, errors)
    errors.add(path, f"无法识别的条件：{sorted(data)}", "unknown_condition")
    return None


def _check_keys(data: dict[str, Any], allowed: set[str], path: str, errors: _Errors) -> bool:
    extra = sorted(set(data) - allowed)
    for key in extra:
        errors.add(f"{path}.{key}", f"不支持的键“{key}”", "unexpected_key")
    missing = sorted(k for k in allowed if k not in data)
    for key in missing:
        errors.add(f"{path}.{key}", f"缺少“{key}”", "missing")
    return not extra and not missing


def _parse_group(data: dict[str, Any], path: str, depth: int, errors: _Errors) -> Condition | None:
    key = "all" if "all" in data else "any"
    if not _check_keys(data, {key}, path, errors):
        return None
    items = data[key]
    if not isinstance(items, list) or not items:
        errors.add(f"{path}.{key}", "应为非空列表", "not_a_list")
        return None
    if len(items) > MAX_ITEMS:
        errors.add(f"{path}.{key}", f"最多 {MAX_ITEMS} 项", "too_many_items")
        return None
    parsed = [_parse(x, f"{path}.{key}[{i}]", depth + 1, errors) for i, x in enumerate(items)]
    conditions = tuple(p for p in parsed if p is not None)
    if len(conditions) != len(parsed):
        return None
    return All(conditions) if key == "all" else AnyOf(conditions)


def _parse_not(data: dict[str, Any], path: str, depth: int, errors: _Errors) -> Condition | None:
    if not _check_keys(data, {"not"}, path, errors):
        return None
    item = _parse(data["not"], f"{path}.not", depth + 1, errors)
    return Not(item) if item is not None else None


def _parse_fact_name(name: Any, path: str, errors: _Errors) -> FactSpec | None:
    spec = FACTS.get(name) if isinstance(name, str) else None
    if spec is None:
        errors.add(path, f"未知的数据项“{name}”", "unknown_fact")
    return spec


def _parse_fact(data: dict[str, Any], path: str, depth: int, errors: _Errors) -> Condition | None:
    if not _check_keys(data, {"fact", "op", "value"}, path, errors):
        return None
    spec = _parse_fact_name(data["fact"], f"{path}.fact", errors)
    if spec is None:
        return None
    op = data["op"]
    if op not in OPERATORS[spec.type]:
        allowed = "、".join(OPERATORS[spec.type])
        errors.add(
            f"{path}.op", f"“{spec.label}”不支持运算“{op}”，可用：{allowed}", "invalid_operator"
        )
        return None
    vpath = f"{path}.value"
    if op in ("in", "not_in"):
        return _parse_member(spec, op, data["value"], vpath, errors)
    if op == "contains":
        value = data["value"]
        if not isinstance(value, str) or not value:
            errors.add(vpath, "应为非空文本", "invalid_value")
            return None
        return Contains(spec.name, value)
    value = _parse_value(spec, data["value"], vpath, errors)
    return None if value is None else Compare(spec.name, op, value)


def _parse_member(
    spec: FactSpec, op: str, values: Any, path: str, errors: _Errors
) -> Condition | None:
    if not isinstance(values, list) or not values:
        errors.add(path, "应为非空列表", "not_a_list")
        return None
    if len(values) > MAX_VALUES:
        errors.add(path, f"最多 {MAX_VALUES} 个取值", "too_many_values")
        return None
    parsed = [_parse_value(spec, v, f"{path}[{i}]", errors) for i, v in enumerate(values)]
    if any(p is None for p in parsed):
        return None
    return Member(spec.name, op, tuple(dict.fromkeys(parsed)))


def _parse_value(spec: FactSpec, value: Any, path: str, errors: _Errors) -> Any:
    parsed = _coerce_value(spec.type, value)
    if parsed is None or parsed is _MISSING:
        errors.add(path, f"“{spec.label}”的取值应为{_TYPE_WORDS[spec.type]}", "invalid_value")
        return None
    if spec.values and parsed not in spec.values:
        allowed = "、".join(spec.values)
        errors.add(path, f"“{spec.label}”的取值应为以下之一：{allowed}", "invalid_value")
        return None
    return parsed


_TYPE_WORDS = {NUMBER: "数字", BOOL: "true 或 false", STRING: "文本", DATE: "日期（YYYY-MM-DD）"}


def _parse_since(data: dict[str, Any], path: str, depth: int, errors: _Errors) -> Condition | None:
    key = "years_since" if "years_since" in data else "months_since"
    if not _check_keys(data, {key, "op", "value"}, path, errors):
        return None
    spec = _parse_fact_name(data[key], f"{path}.{key}", errors)
    if spec is None:
        return None
    if spec.type != DATE:
        errors.add(f"{path}.{key}", f"“{spec.label}”不是日期，不能计算时长", "invalid_operator")
        return None
    if data["op"] not in COMPARISONS:
        errors.add(f"{path}.op", f"不支持的比较“{data['op']}”", "invalid_operator")
        return None
    value = _number(data["value"])
    if value is None or not 0 <= value <= 1200:
        errors.add(f"{path}.value", "应为 0 到 1200 之间的数字", "invalid_value")
        return None
    return Since(spec.name, key.removesuffix("_since"), data["op"], value)


def _parse_holds(data: dict[str, Any], path: str, depth: int, errors: _Errors) -> Condition | None:
    if not _check_keys(data, {"holds"}, path, errors):
        return None
    value = data["holds"]
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", value):
        errors.add(
            f"{path}.holds", "应为电子证照类型代码（小写字母、数字、下划线）", "invalid_value"
        )
        return None
    return Holds(value)


def _parse_not_listed(
    data: dict[str, Any], path: str, depth: int, errors: _Errors
) -> Condition | None:
    if not _check_keys(data, {"not_listed", "years"}, path, errors):
        return None
    name = data["not_listed"]
    if name not in CREDIT_LISTS:
        allowed = "、".join(CREDIT_LISTS)
        errors.add(f"{path}.not_listed", f"未知的名单“{name}”，可用：{allowed}", "unknown_list")
        return None
    years = _number(data["years"])
    if years is None or not 0 < years <= 100:
        errors.add(f"{path}.years", "应为 0 到 100 之间的年数", "invalid_value")
        return None
    return NotListed(name, years)


_NODE_PARSERS = {
    "all": _parse_group,
    "any": _parse_group,
    "not": _parse_not,
    "fact": _parse_fact,
    "years_since": _parse_since,
    "months_since": _parse_since,
    "holds": _parse_holds,
    "not_listed": _parse_not_listed,
}


def conditions_facts(condition: Condition) -> set[str]:
    """The stored facts keys a condition reads (derived facts give their source)."""
    if isinstance(condition, All | AnyOf):
        return set().union(*(conditions_facts(i) for i in condition.items))
    if isinstance(condition, Not):
        return conditions_facts(condition.item)
    if isinstance(condition, Holds):
        return {LICENCES}
    return {_stored_key(condition.fact)}


def _stored_key(fact: str) -> str:
    return FACTS[fact].source or fact


def label_of(name: str) -> str:
    """The Chinese label of a fact or stored key (e.g. an entry of `missing_facts`)."""
    spec = FACTS.get(name)
    return spec.label if spec else _SOURCE_LABELS.get(name, name)


# ---- fact values ----------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _coerce_value(type_: str, value: Any) -> Any:
    """A stored value of a fact in its evaluation form; _MISSING when it cannot be used.
    A date fact may be None (recorded never)."""
    if type_ == NUMBER:
        number = _number(value)
        return _MISSING if number is None else number
    if type_ == BOOL:
        return value if isinstance(value, bool) else _MISSING
    if type_ == STRING:
        return value if isinstance(value, str) else _MISSING
    if type_ == DATE:
        return _date(value)
    if type_ == SET:
        if isinstance(value, list | tuple | set | frozenset) and all(
            isinstance(v, str) for v in value
        ):
            return frozenset(value)
        return _MISSING
    return _MISSING


def _date(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return _MISSING
    return _MISSING


def coerce_fact(name: str, facts: dict[str, Any]) -> Any:
    """The stored fact `name` (not derived) of `facts`, coerced; _MISSING if absent or unusable.
    Shared with the columnar evaluator so both read dirty data alike."""
    if name == LICENCES:
        return coerce_licences(facts.get(LICENCES, _MISSING))
    if name not in facts:
        return _MISSING
    return _coerce_value(FACTS[name].type, facts[name])


def coerce_licences(value: Any) -> Any:
    """{type: ((valid_from, valid_until | None), ...)} or _MISSING."""
    if not isinstance(value, dict):
        return _MISSING
    out: dict[str, tuple[tuple[date, date | None], ...]] = {}
    for type_, periods in value.items():
        parsed = []
        for period in periods if isinstance(periods, list | tuple) else ():
            start = _date(period[0]) if isinstance(period, list | tuple) and period else _MISSING
            end = _date(period[1]) if isinstance(period, list | tuple) and len(period) > 1 else None
            if isinstance(start, date) and end is not _MISSING:
                parsed.append((start, end))
        out[str(type_)] = tuple(parsed)
    return out


def is_missing(value: Any) -> bool:
    return value is _MISSING


def months_between(start: date, end: date) -> int:
    """Whole months from start to end (negative if end is earlier)."""
    return (end.year - start.year) * 12 + (end.month - start.month) - (end.day < start.day)


def _months_since(spec: FactSpec, value: date | None, as_of: date) -> float:
    if value is None:
        return math.inf if spec.never_long_ago else math.nan
    return months_between(value, as_of)


def _valid_on(period: tuple[date, date | None], day: date) -> bool:
    start, end = period
    return start <= day and (end is None or end >= day)


def first_held(licences: dict[str, tuple[Any, ...]], licence_type: str) -> date | None:
    """When a licence type was first held (e.g. first recognised); None: never."""
    return min((p[0] for p in licences.get(licence_type, ())), default=None)


def fact_value(name: str, facts: dict[str, Any], as_of: date) -> Any:
    """The value of a catalogue fact as of a date (derived facts computed); _MISSING if
    unknown."""
    spec = FACTS[name]
    if spec.source == LICENCES:
        licences = coerce_fact(LICENCES, facts)
        if licences is _MISSING:
            return _MISSING
        if spec.type == DATE:  # first recognised; not yet, as of an earlier date
            first = first_held(licences, HIGH_TECH)
            return first if first is None or first <= as_of else None
        return frozenset(t for t, ps in licences.items() if any(_valid_on(p, as_of) for p in ps))
    if spec.source == "birth_date":
        born = coerce_fact("birth_date", facts)
        if not isinstance(born, date):  # a "never" birth date is no birth date
            return _MISSING
        age = float(months_between(born, as_of) // 12)
        return age if name == "age" else age >= ELDERLY_AGE
    return coerce_fact(name, facts)


# ---- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionResult:
    path: str
    outcome: Outcome
    explanation: str
    fact: str | None = None
    actual: Any = None
    required: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "outcome": self.outcome.value,
            "explanation": self.explanation,
            "fact": self.fact,
            "actual": _jsonable(self.actual),
            "required": _jsonable(self.required),
        }


@dataclass(frozen=True)
class Evaluation:
    outcome: Outcome
    results: tuple[ConditionResult, ...] = ()
    missing_facts: tuple[str, ...] = ()
    as_of: date | None = None
    reasons: tuple[str, ...] = field(default=())  # the explanations behind the outcome

    @property
    def eligible(self) -> bool:
        return self.outcome is Outcome.ELIGIBLE

    def trace(self) -> dict[str, Any]:
        return {
            "version": 1,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "outcome": self.outcome.value,
            "reasons": list(self.reasons),
            "missing_facts": list(self.missing_facts),
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class _Node:
    result: ConditionResult
    children: list[_Node] = field(default_factory=list)


def evaluate(
    condition: Condition | dict[str, Any], facts: dict[str, Any], as_of: date
) -> Evaluation:
    """Three-valued: all → any false gives false, else any unknown gives unknown; any → the
    dual; not → swaps eligible and not eligible."""
    if isinstance(condition, dict):
        condition = parse_conditions(condition)
    missing: list[str] = []
    root = _eval(condition, facts, as_of, "$", missing)
    results: list[ConditionResult] = []
    _flatten(root, results)
    reasons: list[str] = []
    _reasons(root, reasons)
    return Evaluation(
        root.result.outcome,
        tuple(results),
        tuple(dict.fromkeys(missing)),
        as_of,
        tuple(dict.fromkeys(reasons)),
    )


def _flatten(node: _Node, out: list[ConditionResult]) -> None:
    out.append(node.result)
    for child in node.children:
        _flatten(child, out)


def _reasons(node: _Node, out: list[str]) -> None:
    """The conditions that decide a node: children with the node's own outcome."""
    if not node.children or (len(node.children) == 1 and not node.children[0].children):
        out.append(node.result.explanation)  # a leaf, or "not" over a leaf: it says 不得满足
        return
    for child in node.children:
        if len(node.children) == 1 or child.result.outcome is node.result.outcome:
            _reasons(child, out)


def _eval(c: Condition, facts: dict[str, Any], as_of: date, path: str, missing: list[str]) -> _Node:
    if isinstance(c, All | AnyOf):
        key = "all" if isinstance(c, All) else "any"
        children = [
            _eval(item, facts, as_of, f"{path}.{key}[{i}]", missing)
            for i, item in enumerate(c.items)
        ]
        outcomes = [ch.result.outcome for ch in children]
        outcome = combine_all(outcomes) if key == "all" else combine_any(outcomes)
        return _Node(ConditionResult(path, outcome, _group_text(key, outcome, outcomes)), children)
    if isinstance(c, Not):
        child = _eval(c.item, facts, as_of, f"{path}.not", missing)
        outcome = negate(child.result.outcome)
        text = f"不得满足：{child.result.explanation}"
        return _Node(ConditionResult(path, outcome, text), [child])
    return _Node(_leaf(c, facts, as_of, path, missing))


def combine_all(outcomes: list[Outcome]) -> Outcome:
    if Outcome.NOT_ELIGIBLE in outcomes:
        return Outcome.NOT_ELIGIBLE
    return Outcome.UNKNOWN if Outcome.UNKNOWN in outcomes else Outcome.ELIGIBLE


def combine_any(outcomes: list[Outcome]) -> Outcome:
    if Outcome.ELIGIBLE in outcomes:
        return Outcome.ELIGIBLE
    return Outcome.UNKNOWN if Outcome.UNKNOWN in outcomes else Outcome.NOT_ELIGIBLE


def negate(outcome: Outcome) -> Outcome:
    return {
        Outcome.ELIGIBLE: Outcome.NOT_ELIGIBLE,
        Outcome.NOT_ELIGIBLE: Outcome.ELIGIBLE,
    }.get(outcome, Outcome.UNKNOWN)


def _group_text(key: str, outcome: Outcome, outcomes: list[Outcome]) -> str:
    head = f"以下 {len(outcomes)} 项须全部满足" if key == "all" else "以下条件至少满足一项"
    if outcome is Outcome.ELIGIBLE:
        return f"{head}：已满足"
    failed = outcomes.count(Outcome.NOT_ELIGIBLE)
    unknown = outcomes.count(Outcome.UNKNOWN)
    parts = [f"{n} 项{word}" for n, word in ((failed, "不满足"), (unknown, "缺少数据")) if n]
    return f"{head}：{'，'.join(parts)}"


def _outcome(ok: bool) -> Outcome:
    return Outcome.ELIGIBLE if ok else Outcome.NOT_ELIGIBLE


def _leaf(
    c: Leaf, facts: dict[str, Any], as_of: date, path: str, missing: list[str]
) -> ConditionResult:
    name = LICENCES if isinstance(c, Holds) else c.fact
    value = coerce_fact(LICENCES, facts) if name == LICENCES else fact_value(name, facts, as_of)
    if value is _MISSING:
        stored = LICENCES if name == LICENCES else _stored_key(name)
        missing.append(stored)
        text = f"缺少数据：{label_of(stored)}"
        return ConditionResult(path, Outcome.UNKNOWN, text, name, None, _req(c))
    return _LEAF_EVALUATORS[type(c)](c, value, as_of, path)


def _req(c: Leaf) -> Any:
    if isinstance(c, Compare | Since | Contains):
        return c.value
    if isinstance(c, Member):
        return list(c.values)
    if isinstance(c, Holds):
        return c.licence_type
    return c.years


def compare(op: str, actual: Any, required: Any) -> bool:
    if op == "eq":
        return bool(actual == required)
    if op == "ne":
        return bool(actual != required)
    if op == "lt":
        return bool(actual < required)
    if op == "le":
        return bool(actual <= required)
    if op == "gt":
        return bool(actual > required)
    return bool(actual >= required)


def _eval_compare(c: Compare, value: Any, as_of: date, path: str) -> ConditionResult:
    spec = FACTS[c.fact]
    if spec.type == DATE and value is None:
        ok = c.op in ("lt", "le", "ne") if spec.never_long_ago else c.op == "ne"
    else:
        ok = compare(c.op, value, c.value)
    shown, wanted = _show(spec, value), _show(spec, c.value)
    words = _DATE_WORDS if spec.type == DATE else _OP_WORDS
    if spec.type == BOOL:
        text = f"{spec.label}：{shown}，{words[c.op]}“{wanted}”"
    else:
        text = f"{spec.label} {shown}，{words[c.op]} {wanted}"
    return ConditionResult(path, _outcome(ok), text, c.fact, value, c.value)


def _eval_member(c: Member, value: Any, as_of: date, path: str) -> ConditionResult:
    spec = FACTS[c.fact]
    ok = (value in c.values) == (c.op == "in")
    shown = "、".join(_show(spec, v) for v in c.values[:5])
    if len(c.values) > 5:
        shown += f"等 {len(c.values)} 项"
    word = "需属于" if c.op == "in" else "需不属于"
    text = f"{spec.label} {_show(spec, value)}，{word} {shown}"
    return ConditionResult(path, _outcome(ok), text, c.fact, value, list(c.values))


def _eval_contains(c: Contains, value: Any, as_of: date, path: str) -> ConditionResult:
    spec = FACTS[c.fact]
    ok = c.value in value
    names = LICENCE_LABELS if spec.source == LICENCES else {}
    have = "、".join(names.get(v, v) for v in sorted(value)) or "无"
    text = f"{spec.label} {have}，需包含 {names.get(c.value, c.value)}"
    return ConditionResult(path, _outcome(ok), text, c.fact, sorted(value), c.value)


def _eval_since(c: Since, value: Any, as_of: date, path: str) -> ConditionResult:
    spec = FACTS[c.fact]
    months = _months_since(spec, value, as_of)
    ok = compare(c.op, months, c.months)
    unit = "年" if c.unit == "years" else "个月"
    if value is None:
        shown = "无记录"
    elif c.unit == "years":
        shown = f"{_fmt(math.floor(months / 12 * 10) / 10)} {unit}"
    else:
        shown = f"{months} {unit}"
    label = spec.since_label or f"距{spec.label}"
    text = f"{label} {shown}，{_SINCE_WORDS[c.op]} {_fmt(c.value)} {unit}"
    actual = None if value is None else (months / 12 if c.unit == "years" else months)
    return ConditionResult(path, _outcome(ok), text, c.fact, actual, c.value)


def _eval_holds(c: Holds, value: Any, as_of: date, path: str) -> ConditionResult:
    periods = value.get(c.licence_type, ())
    label = LICENCE_LABELS.get(c.licence_type, c.licence_type)
    valid = [p for p in periods if _valid_on(p, as_of)]
    if valid:
        end = max(valid, key=lambda p: p[1] or date.max)[1]
        shown = "长期有效" if end is None else f"有效期至 {end.isoformat()}"
    else:
        shown = _invalid_licence_text(periods, as_of)
    text = f"{label}：{shown}，需在 {as_of.isoformat()} 持有有效证照"
    return ConditionResult(path, _outcome(bool(valid)), text, LICENCES, shown, c.licence_type)


def _invalid_licence_text(periods: tuple[Any, ...], as_of: date) -> str:
    future = [p[0] for p in periods if p[0] > as_of]
    past = [p[1] for p in periods if p[1] is not None and p[1] < as_of]
    if past:
        return f"已于 {max(past).isoformat()} 过期"
    if future:
        return f"自 {min(future).isoformat()} 起生效"
    return "无"


def _eval_not_listed(c: NotListed, value: Any, as_of: date, path: str) -> ConditionResult:
    list_label = CREDIT_LISTS[c.list_name][1]
    required = f"需近 {_fmt(c.years)} 年内无记录"
    if value is None:
        ok, shown = True, "无记录"
    elif value > as_of:
        ok, shown = True, f"{value.isoformat()} 记入（晚于 {as_of.isoformat()}）"
    else:
        months = months_between(value, as_of)
        ok = months >= c.years * 12
        years = _fmt(math.floor(months / 12 * 10) / 10)
        shown = f"{value.isoformat()} 记入（距今 {years} 年）"
    text = f"{list_label}：{shown}，{required}"
    return ConditionResult(path, _outcome(ok), text, c.fact, value, c.years)


_LEAF_EVALUATORS: dict[type, Callable[[Any, Any, date, str], ConditionResult]] = {
    Compare: _eval_compare,
    Member: _eval_member,
    Contains: _eval_contains,
    Since: _eval_since,
    Holds: _eval_holds,
    NotListed: _eval_not_listed,
}

_OP_WORDS = {
    "eq": "需为",
    "ne": "需不为",
    "lt": "需低于",
    "le": "需不超过",
    "gt": "需超过",
    "ge": "需不少于",
}
_DATE_WORDS = {
    "eq": "需为",
    "ne": "需不为",
    "lt": "需早于",
    "le": "需不晚于",
    "gt": "需晚于",
    "ge": "需不早于",
}
_SINCE_WORDS = {
    "eq": "需为",
    "ne": "需不为",
    "lt": "需不满",
    "le": "需不超过",
    "gt": "需超过",
    "ge": "需满",
}


def _fmt(number: float) -> str:
    return f"{number:g}" if abs(number) < 1e15 else str(number)


def _show(spec: FactSpec, value: Any) -> str:
    if value is None and spec.type == DATE:
        return "无记录"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{_fmt(value)} {spec.unit}".rstrip()
    if isinstance(value, date):
        return value.isoformat()
    return VALUE_LABELS.get(spec.name, {}).get(value, str(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, frozenset | set | tuple):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---- facts of a subject -----------------------------------------------------------------------


def facts_from(profile: Profile, licences: list[ELicence]) -> dict[str, Any]:
    """The facts of a subject from its profile and e-licences (the register's content: a type
    not held is known not held). Keys whose data are not recorded are left out (unknown)."""
    facts: dict[str, Any] = {
        "subject_kind": profile.kind,
        "credit_status": profile.credit_status,
        "tags": sorted(profile.tags),
        LICENCES: _licence_periods(licences),
    }
    if profile.kind == "enterprise":
        facts.update(_enterprise_facts(profile, licences))
    elif profile.kind == "person":
        facts.update(_person_facts(profile, licences))
    for name in ("last_major_violation_on", "serious_dishonesty_listed_on"):
        _put_date(facts, name, getattr(profile, name))
    _put_date(facts, "duplicate_subsidy_found_on", profile.duplicate_subsidy_found_on)
    return facts


def _licence_periods(licences: list[ELicence]) -> dict[str, list[list[str | None]]]:
    periods: dict[str, list[list[str | None]]] = {}
    for lic in sorted(licences, key=lambda x: x.valid_from):
        if lic.status == "valid":
            periods.setdefault(lic.type, []).append([lic.valid_from, lic.valid_until])
    return periods


def _put(facts: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        facts[name] = value


def _put_date(facts: dict[str, Any], name: str, value: str | None) -> None:
    """Profile dates: an ISO date, NEVER, or None (not recorded: left unknown)."""
    if value == NEVER:
        facts[name] = None
    elif value:
        facts[name] = value


def _enterprise_facts(profile: Profile, licences: list[ELicence]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for name in ("registered_in_qingpu", "tax_in_qingpu", "tax_credit_rating"):
        _put(facts, name, getattr(profile, name))
    for name in ("registered_capital", "employees", "annual_revenue"):
        _put(facts, name, getattr(profile, name))
    _put_date(facts, "founded_on", profile.founded_on)
    _put_date(facts, "abnormal_operation_listed_on", profile.abnormal_operation_listed_on)
    if profile.industry:
        code = profile.industry.split()[0]
        facts["industry"] = code
        if code[:1].isalpha():
            facts["industry_section"] = code[0].upper()
    return facts


def _person_facts(profile: Profile, licences: list[ELicence]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    id_number = profile.subject_id.strip().upper()
    if is_valid_id_number(id_number):
        facts["birth_date"] = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
        facts["gender"] = "male" if int(id_number[16]) % 2 else "female"
    for name in ("household_in_qingpu", "talent_level", "disabled"):
        _put(facts, name, getattr(profile, name))
    if "disabled" not in facts and any(
        x.type == "disability_certificate" and x.status == "valid" for x in licences
    ):
        facts["disabled"] = True
    return facts
