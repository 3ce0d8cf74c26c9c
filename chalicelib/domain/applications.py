"""Applications for service items: the guide (办事指南), profiles and e-licences, pre-fill,
machine pre-review with typed findings, 容缺/补正 outcomes, rule-based automatic decisions and
the monthly KPIs. Pure: every moment is passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeGuard

from chalicelib.domain.errors import InvalidInput, RuleViolation
from chalicelib.domain.personal_data import (
    credit_code_check_digit_ok,
    is_future_birth_date,
    is_valid_id_number,
)

# District targets (seed 二(一)); configurable data, shown beside each KPI.
TARGETS = {
    "prefill_rate": 0.70,
    "prereview_automation_rate": 0.90,
    "first_submission_success_rate": 0.90,
    "online_completion_rate": 0.88,
}

# Where an application was filed: online by the person, at a window by staff on the person's
# behalf, or accepted in a video session with staff.
CHANNELS = ("online", "window", "video", "cross_region")

# People's profiles are spread over this many partitions; the population match of a policy runs
# one segment per partition.
PROFILE_SHARDS = 8


class ItemKind(StrEnum):
    IMMEDIATE = "immediate"  # 即办件
    PROMISED = "promised"  # 承诺件


class Reason(StrEnum):
    INCORRECT = "incorrect"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


class State(StrEnum):
    SUBMITTED = "submitted"  # waiting for machine pre-review
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 补正
    ACCEPTED = "accepted"  # passed to the department
    TOLERATED = "tolerated"  # 容缺受理: accepted, non-key materials due later
    APPROVED = "approved"
    REJECTED = "rejected"
    TERMINATED = "terminated"  # 容缺 supplement deadline missed
    # Machine pre-review could not process it (a stored value it cannot read): a person decides.
    NEEDS_MANUAL_REVIEW = "needs_manual_review"


OPEN_STATES = frozenset(
    {
        State.SUBMITTED,
        State.SUPPLEMENT_REQUESTED,
        State.ACCEPTED,
        State.TOLERATED,
        State.NEEDS_MANUAL_REVIEW,
    }
)
DECIDABLE = frozenset({State.ACCEPTED, State.TOLERATED, State.NEEDS_MANUAL_REVIEW})


@dataclass(frozen=True)
class MaterialSpec:
    code: str
    name: str
    key: bool = True
    forms: tuple[str, ...] = ("electronic",)
    file_types: tuple[str, ...] = ("pdf", "jpg", "png")
    max_kb: int = 10240
    elicence_type: str | None = None  # an e-licence of this type replaces the upload


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    source: str | None = None  # "profile:<attr>", "elicence:<type>:<attr>", "history"
    required: bool = True
    kind: str = "text"  # text | id_number | credit_code | number | date


@dataclass(frozen=True)
class AutoRule:
    """One rule of an automatic decision: `check` names a predicate in AUTO_CHECKS."""

    name: str
    check: str
    value: Any = None


@dataclass(frozen=True)
class ServiceItem:
    code: str
    name: str
    department_id: str
    kind: ItemKind
    statutory_days: int
    promised_days: int
    subject_kind: str  # person | enterprise
    conditions: tuple[str, ...] = ()
    materials: tuple[MaterialSpec, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    tolerance_allowed: bool = False  # 容缺受理
    supplement_days: int = 5
    commitment_allowed: bool = False  # 告知承诺
    auto_rules: tuple[AutoRule, ...] = ()
    issues_licence: str | None = None  # e-licence type issued on approval
    bundle: tuple[str, ...] = ()  # "一件事": the items it joins
    version: int = 1
    # 跨省通办 (收受分离): the region that decides it (domain/crossregion.py REGIONS); accepted
    # and pre-reviewed here, then forwarded. None: decided here.
    handled_in: str | None = None

    @property
    def automatic(self) -> bool:
        return bool(self.auto_rules)

    def material(self, code: str) -> MaterialSpec | None:
        return next((m for m in self.materials if m.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceItem:
        return cls(
            **{
                **d,
                "kind": ItemKind(d["kind"]),
                "conditions": tuple(d.get("conditions", ())),
                "materials": tuple(
                    MaterialSpec(
                        **{
                            **m,
                            "forms": tuple(m["forms"]),
                            "file_types": tuple(m["file_types"]),
                        }
                    )
                    for m in d.get("materials", ())
                ),
                "fields": tuple(FieldSpec(**f) for f in d.get("fields", ())),
                "auto_rules": tuple(AutoRule(**r) for r in d.get("auto_rules", ())),
                "bundle": tuple(d.get("bundle", ())),
            }
        )


def validate_item(item: ServiceItem) -> ServiceItem:
    if item.promised_days < 0 or item.statutory_days < 0:
        raise InvalidInput("办理时限不能为负数", code="invalid_limit")
    if item.promised_days > item.statutory_days:
        raise InvalidInput("承诺时限不能超过法定时限", code="promised_exceeds_statutory")
    if item.kind is ItemKind.IMMEDIATE and item.promised_days != 0:
        raise InvalidInput("即办件的承诺时限应为0个工作日", code="invalid_limit")
    if item.handled_in is not None and item.automatic:
        raise InvalidInput("跨省通办事项由办理地审批，不能设置自动审批", code="invalid_limit")
    if item.tolerance_allowed and item.supplement_days > max(item.promised_days, 0):
        raise InvalidInput("容缺补齐期限不能超过承诺时限", code="supplement_exceeds_promised")
    names = [f.name for f in item.fields]
    if len(names) != len(set(names)):
        raise InvalidInput("表单字段重复", code="duplicate_field")
    unknown = [r.check for r in item.auto_rules if r.check not in AUTO_CHECKS]
    if unknown:
        raise InvalidInput(f"未知的自动审批规则：{unknown[0]}", code="unknown_auto_rule")
    return item


# ---- profiles and e-licences (一人一档 / 一企一档, 电子证照) -----------------------------------


@dataclass(frozen=True)
class Profile:
    subject_id: str  # ID number or 统一社会信用代码
    kind: str  # person | enterprise
    name: str
    mobile: str | None = None
    address: str | None = None
    legal_representative: str | None = None
    legal_representative_id: str | None = None
    industry: str | None = None
    registered_capital: float | None = None  # 万元
    founded_on: str | None = None  # ISO date
    tax_status: str = "normal"
    credit_status: str = "good"  # good | bad | serious_bad
    tags: tuple[str, ...] = ()
    # Facts for policy rules (domain/policy_rules.py). None: not recorded (unknown). Dates are
    # ISO dates or "never" (recorded as never happened).
    registered_in_qingpu: bool | None = None
    tax_in_qingpu: bool | None = None
    tax_credit_rating: str | None = None  # A | B | M | C | D
    last_major_violation_on: str | None = None
    serious_dishonesty_listed_on: str | None = None  # 严重失信主体名单
    abnormal_operation_listed_on: str | None = None  # 经营异常名录
    duplicate_subsidy_found_on: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None  # 万元, last year
    household_in_qingpu: bool | None = None
    talent_level: str | None = None
    disabled: bool | None = None

    def value(self, attr: str) -> Any:
        return getattr(self, attr, None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        return cls(**{**d, "tags": tuple(d.get("tags", ()))})


@dataclass(frozen=True)
class ELicence:
    type: str
    number: str
    holder_id: str
    holder_name: str
    valid_from: str
    valid_until: str | None = None  # None: long-term
    status: str = "valid"  # valid | revoked
    issued_for: str | None = None  # application that issued it

    def is_valid_on(self, day: date) -> bool:
        """In force on `day`: not revoked, already in effect and not expired. A licence that
        takes effect later neither pre-fills nor replaces a material today."""
        if self.status != "valid":
            return False
        if self.valid_from and date.fromisoformat(self.valid_from) > day:
            return False
        return self.valid_until is None or date.fromisoformat(self.valid_until) >= day

    def value(self, attr: str) -> Any:
        return getattr(self, attr, None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ELicence:
        return cls(**d)


LICENCE_YEARS = 5


def licence_expiry(issued: date, years: int) -> date:
    """The day a licence issued on `issued` for `years` years expires: the same day `years`
    later; a licence issued on 29 February expires on 28 February of a common year, because a
    period counted in years ends on the last day of the month when the month has no
    corresponding day (民法典 art. 202), rather than spilling over into March."""
    try:
        return issued.replace(year=issued.year + years)
    except ValueError:
        return issued.replace(year=issued.year + years, day=28)


def best_licence(licences: list[ELicence], type_: str, day: date) -> ELicence | None:
    """A valid licence of the type if there is one, else the latest expired one."""
    of_type = [x for x in licences if x.type == type_]
    valid = [x for x in of_type if x.is_valid_on(day)]
    pool = valid or of_type
    return max(pool, key=lambda x: x.valid_until or "9999") if pool else None


# ---- pre-fill ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefilledField:
    name: str
    label: str
    value: Any
    source: str | None  # profile | elicence | history | None
    verified: bool
    retrieved_at: str | None


@dataclass(frozen=True)
class Prefill:
    item_code: str
    item_version: int
    subject_id: str
    fields: tuple[PrefilledField, ...]
    exempt_materials: tuple[str, ...]  # 免于提交
    # Where each exempt material comes from: "elicence:<type>:<number>" or "application:<id>".
    exempt_sources: tuple[tuple[str, str], ...] = ()

    @property
    def locked(self) -> dict[str, Any]:
        return {f.name: f.value for f in self.fields if f.verified}

    @property
    def filled(self) -> int:
        return sum(1 for f in self.fields if f.value not in (None, ""))


def prefill(
    item: ServiceItem,
    profile: Profile | None,
    licences: list[ELicence],
    history: dict[str, Any],
    now: datetime,
    reusable: Mapping[str, str] | None = None,
) -> Prefill:
    """Fill each field from its declared source. Profile and valid e-licence values are
    verified (authoritative registers) and locked; values from earlier applications are not.
    A material is exempt when a valid e-licence replaces it or `reusable` (material code ->
    source) offers one accepted in an earlier application."""
    today = now.date()
    stamp = now.isoformat()
    fields = []
    for spec in item.fields:
        value, source, verified = _lookup(spec, profile, licences, today)
        if value in (None, "") and spec.name in history:
            value, source, verified = history[spec.name], "history", False
        filled = value not in (None, "")
        fields.append(
            PrefilledField(
                spec.name,
                spec.label,
                value if filled else None,
                source if filled else None,
                verified and filled,
                stamp if filled else None,
            )
        )
    sources: dict[str, str] = {}
    for m in item.materials:
        lic = best_licence(licences, m.elicence_type, today) if m.elicence_type else None
        if lic is not None and lic.is_valid_on(today):
            sources[m.code] = f"elicence:{lic.type}:{lic.number}"
        elif reusable and m.code in reusable:
            sources[m.code] = reusable[m.code]
    subject = profile.subject_id if profile else ""
    return Prefill(
        item.code, item.version, subject, tuple(fields), tuple(sources), tuple(sources.items())
    )


def _lookup(
    spec: FieldSpec, profile: Profile | None, licences: list[ELicence], today: date
) -> tuple[Any, str | None, bool]:
    if not spec.source:
        return None, None, False
    kind, _, rest = spec.source.partition(":")
    if kind == "profile" and profile is not None:
        return profile.value(rest), "profile", True
    if kind == "elicence":
        type_, _, attr = rest.partition(":")
        lic = best_licence(licences, type_, today)
        if lic is not None and lic.is_valid_on(today):
            return lic.value(attr), "elicence", True
    return None, None, False


# ---- applications -------------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    code: str
    file_name: str
    file_type: str
    size_kb: int
    holder_name: str | None = None
    valid_until: str | None = None
    content_hash: str | None = None  # sha256 of the file, hex: the materials library keeps it


@dataclass(frozen=True)
class Finding:
    target: str  # "field:<name>" or "material:<code>" or "applicant"
    reason: Reason
    code: str
    message: str
    blocking: bool = True


@dataclass(frozen=True)
class RuleResult:
    rule: str
    check: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Decision:
    outcome: str  # approved | rejected
    by: str  # user id or "rules"
    reasons: tuple[str, ...] = ()
    rules: tuple[RuleResult, ...] = ()
    decided_at: str = ""


@dataclass
class Application:
    application_id: str
    item_code: str
    item_version: int
    item_name: str
    department_id: str
    applicant_user_id: str
    subject_id: str
    applicant_name: str
    fields: dict[str, Any]
    materials: list[Material]
    locked: dict[str, Any]
    prefilled_fields: int
    total_fields: int
    exempt_materials: list[str]
    commitment: bool
    channel: str
    state: State
    created_at: str
    updated_at: str
    findings: list[Finding] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    clocks: dict[str, str] = field(default_factory=dict)
    supplement_rounds: int = 0
    reviews: int = 0
    review_round: int = 0  # bumped by each submission or supplement; the consumer's key
    reviewed_round: int = -1
    effects_round: int = -1  # the round whose clocks, notifications and decision are done
    accepted_at: str | None = None
    supplement_due: str | None = None  # 容缺: the supplement clock's deadline
    decision: Decision | None = None
    issued_licence: str | None = None
    # A decision stored whose effects (clocks stopped, licence, notice, review invitation) are
    # not all applied yet; `effects_since` is when the repair job may look (see effects_pending).
    completion_pending: bool = False
    effects_since: str | None = None
    # Filed by an agent acting for the subject under this authorisation (多级授权).
    authorisation_id: str | None = None
    # Where each exempt material was taken from (material code -> "elicence:<type>:<number>"
    # or "application:<id>"), as pre-fill offered it: the department sees what was reused.
    exempt_sources: dict[str, str] = field(default_factory=dict)
    # The 一件事 bundle application this case belongs to (domain/bundles.py), if any.
    bundle_application_id: str | None = None
    # Staff who filed it on the person's behalf (channel window or video).
    filed_by: str | None = None
    # 跨省通办: the other region's leg (domain/crossregion.py), outbound or inbound.
    remote: dict[str, Any] | None = None

    @property
    def effects_pending(self) -> bool:
        """Effects of a stored change not applied yet: a round waiting for its pre-review (the
        queue message may be lost), a pre-review whose clocks and notices are not all done, or
        a decision's completion effects."""
        awaiting = self.state is State.SUBMITTED and self.reviewed_round < self.review_round
        reviewed = self.reviewed_round >= 0 and self.effects_round < self.reviewed_round
        forwarding = self.remote is not None and self.remote.get("state") == "forwarding"
        return awaiting or reviewed or self.completion_pending or forwarding

    def add_event(self, at: datetime, event: str, **details: Any) -> None:
        self.timeline.append({"at": at.isoformat(), "event": event, **details})
        self.updated_at = at.isoformat()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Application:
        decision = d.get("decision")
        return cls(
            **{
                **d,
                "state": State(d["state"]),
                "materials": [Material(**m) for m in d.get("materials", [])],
                "findings": [
                    Finding(**{**f, "reason": Reason(f["reason"])}) for f in d.get("findings", [])
                ],
                "decision": Decision(
                    **{
                        **decision,
                        "reasons": tuple(decision["reasons"]),
                        "rules": tuple(RuleResult(**r) for r in decision["rules"]),
                    }
                )
                if decision
                else None,
            }
        )


def check_locked(locked: dict[str, Any], submitted: dict[str, Any]) -> list[Finding]:
    """Verified values the server issued must come back unchanged (FormSG-style)."""
    return [
        Finding(
            f"field:{name}",
            Reason.INCORRECT,
            "locked_field_changed",
            f"字段“{name}”为核验数据，不可修改",
        )
        for name, value in locked.items()
        if submitted.get(name) != value
    ]


# ---- pre-review -------------------------------------------------------------------------


class Outcome(StrEnum):
    PASSED = "passed"
    SUPPLEMENT = "supplement"
    TOLERATED = "tolerated"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Review:
    outcome: Outcome
    findings: tuple[Finding, ...]


def pre_review(
    item: ServiceItem,
    app: Application,
    profile: Profile | None,
    licences: list[ELicence],
    today: date,
    reusable: frozenset[str] = frozenset(),
) -> Review:
    """`reusable`: codes of materials the library holds for the subject, usable today."""
    findings: list[Finding] = []
    if profile is None or profile.kind != item.subject_kind:
        who = "企业" if item.subject_kind == "enterprise" else "个人"
        finding = Finding("applicant", Reason.INCORRECT, "subject_mismatch", f"本事项仅限{who}申请")
        return Review(Outcome.REJECTED, (finding,))
    findings += check_locked(app.locked, app.fields)
    findings += _field_findings(item, app.fields, today)
    findings += _material_findings(item, app, profile, licences, today, reusable)
    credit_bad = profile.credit_status in ("bad", "serious_bad")
    if app.commitment and (not item.commitment_allowed or profile.credit_status == "serious_bad"):
        findings.append(
            Finding(
                "applicant",
                Reason.INCORRECT,
                "commitment_excluded",
                "申请人存在严重失信记录或本事项不适用告知承诺，不能以承诺代替材料",
            )
        )
    blocking = [f for f in findings if f.blocking]
    if not blocking:
        return Review(Outcome.PASSED, tuple(findings))
    tolerable = all(_tolerable(item, f) for f in blocking)
    if tolerable and item.tolerance_allowed and not credit_bad:
        return Review(Outcome.TOLERATED, tuple(findings))
    if tolerable and item.tolerance_allowed and credit_bad:
        findings.append(
            Finding(
                "applicant",
                Reason.INCOMPLETE,
                "tolerance_excluded",
                "申请人信用状况不良，不适用容缺受理，请补齐全部材料",
            )
        )
    return Review(Outcome.SUPPLEMENT, tuple(findings))


def _tolerable(item: ServiceItem, finding: Finding) -> bool:
    if finding.code != "material_missing":
        return False
    spec = item.material(finding.target.removeprefix("material:"))
    return spec is not None and not spec.key


def _field_findings(item: ServiceItem, values: dict[str, Any], today: date) -> list[Finding]:
    findings = []
    for spec in item.fields:
        value = values.get(spec.name)
        target = f"field:{spec.name}"
        if value in (None, ""):
            if spec.required:
                findings.append(
                    Finding(target, Reason.INCOMPLETE, "field_missing", f"请填写“{spec.label}”")
                )
            continue
        text = str(value).strip().upper()
        if spec.kind == "id_number" and is_future_birth_date(text, today):
            findings.append(
                Finding(
                    target,
                    Reason.INCORRECT,
                    "id_number_invalid",
                    f"“{spec.label}”中的出生日期晚于今天，请核对身份证号码",
                )
            )
        elif spec.kind == "id_number" and not is_valid_id_number(text):
            findings.append(
                Finding(
                    target,
                    Reason.INCORRECT,
                    "id_number_invalid",
                    f"“{spec.label}”校验位不正确，请核对身份证号码",
                )
            )
        elif spec.kind == "credit_code" and not _credit_code_ok(text):
            # GB 32100: some early codes fail the check digit; warn, do not reject.
            findings.append(
                Finding(
                    target,
                    Reason.INCORRECT,
                    "credit_code_check_digit",
                    f"“{spec.label}”校验位未通过，请人工核对",
                    blocking=False,
                )
            )
        elif spec.kind == "number" and not _is_number(value):
            findings.append(
                Finding(target, Reason.INCORRECT, "not_a_number", f"“{spec.label}”应为数字")
            )
    return findings


def _credit_code_ok(text: str) -> bool:
    try:
        return len(text) == 18 and credit_code_check_digit_ok(text)
    except (ValueError, KeyError):
        return False


def _is_number(value: Any) -> TypeGuard[str | int | float]:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _material_findings(
    item: ServiceItem,
    app: Application,
    profile: Profile,
    licences: list[ELicence],
    today: date,
    reusable: frozenset[str] = frozenset(),
) -> list[Finding]:
    findings = []
    uploaded = {m.code: m for m in app.materials}
    for spec in item.materials:
        target = f"material:{spec.code}"
        material = uploaded.get(spec.code)
        if material is None:
            if spec.code in reusable:
                continue  # accepted in an earlier application and still valid: 免于提交
            findings += _replacement_findings(spec, licences, today, app.commitment)
            continue
        if material.file_type.lower() not in spec.file_types:
            findings.append(
                Finding(
                    target,
                    Reason.INCORRECT,
                    "file_type_not_accepted",
                    f"“{spec.name}”仅接受 {'/'.join(spec.file_types)} 格式",
                )
            )
        if material.size_kb > spec.max_kb:
            findings.append(
                Finding(
                    target,
                    Reason.INCORRECT,
                    "file_too_large",
                    f"“{spec.name}”不能超过 {spec.max_kb} KB",
                )
            )
        if material.holder_name and material.holder_name != profile.name:
            findings.append(
                Finding(
                    target,
                    Reason.INCORRECT,
                    "holder_name_mismatch",
                    f"“{spec.name}”上的名称与申请人“{profile.name}”不一致",
                )
            )
        if material.valid_until and date.fromisoformat(material.valid_until) < today:
            findings.append(
                Finding(target, Reason.EXPIRED, "material_expired", f"“{spec.name}”已过有效期")
            )
    return findings


def _replacement_findings(
    spec: MaterialSpec, licences: list[ELicence], today: date, commitment: bool
) -> list[Finding]:
    target = f"material:{spec.code}"
    if spec.elicence_type:
        lic = best_licence(licences, spec.elicence_type, today)
        if lic is not None and lic.is_valid_on(today):
            return []
        if lic is not None:
            return [
                Finding(
                    target,
                    Reason.EXPIRED,
                    "elicence_expired",
                    f"可替代“{spec.name}”的电子证照（{lic.number}）已于{lic.valid_until}过期，"
                    "请上传有效材料",
                )
            ]
    if commitment and not spec.key:
        return []  # 告知承诺 replaces a non-key material
    return [Finding(target, Reason.INCOMPLETE, "material_missing", f"缺少材料“{spec.name}”")]


# ---- automatic decisions ----------------------------------------------------------------


def _check_credit(app: Application, profile: Profile, value: Any, today: date) -> tuple[bool, str]:
    return profile.credit_status == "good", f"信用状况：{profile.credit_status}"


def _check_no_findings(
    app: Application, profile: Profile, value: Any, today: date
) -> tuple[bool, str]:
    count = len(app.findings)
    return count == 0, f"预审意见 {count} 条"


def _check_founded_years(
    app: Application, profile: Profile, value: Any, today: date
) -> tuple[bool, str]:
    if not profile.founded_on:
        return False, "缺少成立日期"
    founded = date.fromisoformat(profile.founded_on)
    years = today.year - founded.year - ((today.month, today.day) < (founded.month, founded.day))
    return years >= int(value), f"成立 {years} 年（要求 ≥ {value}）"


def _check_field_max(
    app: Application, profile: Profile, value: Any, today: date
) -> tuple[bool, str]:
    name, limit = value["field"], float(value["max"])
    actual = app.fields.get(name)
    ok = _is_number(actual) and float(actual) <= limit
    return ok, f"{name} = {actual}（上限 {limit:g}）"


def _check_field_in(
    app: Application, profile: Profile, value: Any, today: date
) -> tuple[bool, str]:
    actual = app.fields.get(value["field"])
    return actual in value["values"], f"{value['field']} = {actual}"


AUTO_CHECKS = {
    "credit_good": _check_credit,
    "no_findings": _check_no_findings,
    "founded_years_at_least": _check_founded_years,
    "field_at_most": _check_field_max,
    "field_in": _check_field_in,
}


def auto_decide(item: ServiceItem, app: Application, profile: Profile, now: datetime) -> Decision:
    """Every rule's result is kept; approval only when all pass. A failing rule sends the
    application to the department, it never rejects on its own."""
    results = []
    for rule in item.auto_rules:
        passed, detail = AUTO_CHECKS[rule.check](app, profile, rule.value, now.date())
        results.append(RuleResult(rule.name, rule.check, passed, detail))
    outcome = "approved" if all(r.passed for r in results) else "manual"
    return Decision(outcome, "rules", (), tuple(results), now.isoformat())


def require_state(app: Application, allowed: frozenset[State] | set[State], action: str) -> None:
    if app.state not in allowed:
        raise RuleViolation(f"申请当前状态不能{action}", code="invalid_state")


def with_state(app: Application, state: State) -> Application:
    return replace(app, state=state)


# ---- KPIs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiFacts:
    """One application's facts for the monthly report, written when it reaches an outcome."""

    application_id: str
    item_code: str
    prefilled_fields: int
    total_fields: int
    machine_reviewed: bool
    supplement_rounds: int
    online: bool
    completed: bool
    accepted: bool
    working_days: int | None
    channel: str = "online"  # online | window | video | cross_region


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def kpis(facts: list[KpiFacts]) -> dict[str, Any]:
    def rate(numerator: int, denominator: int) -> float | None:
        return round(numerator / denominator, 4) if denominator else None

    total_fields = sum(f.total_fields for f in facts)
    accepted = [f for f in facts if f.accepted]
    completed = [f for f in facts if f.completed]
    days = [float(f.working_days) for f in completed if f.working_days is not None]
    return {
        "applications": len(facts),
        "prefill_rate": rate(sum(f.prefilled_fields for f in facts), total_fields),
        "prereview_automation_rate": rate(sum(f.machine_reviewed for f in facts), len(facts)),
        "first_submission_success_rate": rate(
            sum(f.supplement_rounds == 0 for f in accepted), len(accepted)
        ),
        "online_completion_rate": rate(sum(f.online for f in completed), len(completed)),
        "p90_processing_working_days": percentile(days, 90),
    }


def online_completion(facts: list[KpiFacts]) -> dict[str, Any]:
    """网上办结率 from the channels applications were really filed through: completed online
    over all completed (online, window, video), beside its target."""
    completed = [f for f in facts if f.completed]
    by_channel = {channel: sum(f.channel == channel for f in completed) for channel in CHANNELS}
    online = by_channel.get("online", 0)
    rate = round(online / len(completed), 4) if completed else None
    target = TARGETS["online_completion_rate"]
    return {
        "rate": rate,
        "target": target,
        "meets_target": rate >= target if rate is not None else None,
        "completed": len(completed),
        "completed_by_channel": by_channel,
    }
