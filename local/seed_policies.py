"""Demo data for policy benefits: three Qingpu policies, the facts of the demo profiles and a
few more enterprises, so that some subjects qualify and others do not (and why).

- 高新技术企业首次认定奖励 25万元, 直接兑现 (draft: publish it to see 免申即享);
- 稳岗补贴 2万元, 确认兑现 (draft);
- 青浦区人才安居补贴, 快申 of item QP-RC-501 (published).

Eligible for both enterprise policies: 上海绿境科技 and 上海青禾智能装备. 上海淀山湖食品 only
for 稳岗 (no 高新 recognition); 上海朱家角文旅 is too young (成立不满2年); 上海练塘新材料 is on the
经营异常名录; 上海华新物流 has no headcount on record (稳岗: unknown).
Idempotent: overwrites the same values.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.domain.applications import (
    ELicence,
    FieldSpec,
    ItemKind,
    MaterialSpec,
    Profile,
    ServiceItem,
    validate_item,
)
from chalicelib.domain.calendar import WorkingCalendar
from chalicelib.domain.directory import Department, UserProfile
from chalicelib.domain.identity import Role
from chalicelib.domain.personal_data import credit_code_check_char
from chalicelib.domain.policies import PolicyVersion, validate_version
from local.seed_applications import CITIZEN, ENTERPRISE

HIGH_TECH_POLICY = "qp-gxjs-first"
JOBS_POLICY = "qp-wengang-2026"
TALENT_POLICY = "qp-rencai-anju"
TALENT_ITEM = "QP-RC-501"
KJW = Department("dept-kjw", "青浦区科学技术委员会", webhook_secret="local-secret-kjw")


def _code(body: str) -> str:
    return body + credit_code_check_char(body)


QINGHE = _code("91310118MA1JL1001")
DIANSHANHU = _code("91310118MA1JL1002")
ZHUJIAJIAO = _code("91310118MA1JL1003")
LIANTANG = _code("91310118MA1JL1004")
HUAXIN = _code("91310118MA1JL1005")
ELDERLY = "310118194801150026"

ELIGIBLE_HIGH_TECH = (ENTERPRISE, QINGHE)
ELIGIBLE_JOBS = (ENTERPRISE, QINGHE, DIANSHANHU)
NOT_ELIGIBLE = (ZHUJIAJIAO, LIANTANG)
UNKNOWN = (HUAXIN,)

_NO_RECORDS = {
    "last_major_violation_on": "never",
    "serious_dishonesty_listed_on": "never",
    "abnormal_operation_listed_on": "never",
    "duplicate_subsidy_found_on": "never",
}


def _enterprise(
    subject_id: str, name: str, founded_on: str, employees: int | None, **facts: Any
) -> Profile:
    values: dict[str, Any] = {
        "registered_in_qingpu": True,
        "tax_in_qingpu": True,
        "tax_credit_rating": "A",
        **_NO_RECORDS,
        **facts,
    }
    return Profile(
        subject_id=subject_id,
        kind="enterprise",
        name=name,
        address="上海市青浦区",
        industry=values.pop("industry", "C3499 其他通用设备制造"),
        registered_capital=1000.0,
        founded_on=founded_on,
        employees=employees,
        **values,
    )


ENTERPRISES: tuple[Profile, ...] = (
    _enterprise(QINGHE, "上海青禾智能装备有限公司", "2021-06-01", 42),
    _enterprise(DIANSHANHU, "上海淀山湖食品有限公司", "2015-03-10", 120, industry="C1491"),
    _enterprise(ZHUJIAJIAO, "上海朱家角文旅发展有限公司", "2025-05-26", 18, industry="R8710"),
    _enterprise(
        LIANTANG,
        "上海练塘新材料有限公司",
        "2018-09-09",
        60,
        abnormal_operation_listed_on="2025-06-30",
    ),
    _enterprise(HUAXIN, "上海华新物流有限公司", "2017-01-05", None),
)

LICENCES: tuple[ELicence, ...] = (
    ELicence(
        "high_tech_enterprise",
        "GR202631000123",
        ENTERPRISE,
        "上海绿境科技有限公司",
        "2026-03-15",
        "2029-03-14",
    ),
    ELicence(
        "high_tech_enterprise",
        "GR202531000456",
        QINGHE,
        "上海青禾智能装备有限公司",
        "2026-01-20",
        "2029-01-19",
    ),
    ELicence(
        "high_tech_enterprise",
        "GR202331000789",
        LIANTANG,
        "上海练塘新材料有限公司",
        "2026-02-01",
        "2029-01-31",
    ),
)

ACCOUNTS: tuple[UserProfile, ...] = (
    UserProfile(
        "u-enterprise-qinghe",
        Role.ENTERPRISE,
        "上海青禾智能装备有限公司",
        subject_id=QINGHE,
        mobile="13700002222",
        description="企业账号",
    ),
    UserProfile(
        "u-enterprise-dianshanhu",
        Role.ENTERPRISE,
        "上海淀山湖食品有限公司",
        subject_id=DIANSHANHU,
        mobile="13700003333",
        description="企业账号",
    ),
    UserProfile(
        "u-enterprise-zhujiajiao",
        Role.ENTERPRISE,
        "上海朱家角文旅发展有限公司",
        subject_id=ZHUJIAJIAO,
        mobile="13700004444",
        description="企业账号",
    ),
    UserProfile(
        "u-dept-kjw",
        Role.DEPARTMENT_STAFF,
        "周宁",
        department_id=KJW.department_id,
        description="区科委承办人",
    ),
)

# (subject, user) pairs whose accounts receive the subject's grant notices and digests.
LINKS: tuple[tuple[str, str], ...] = (
    (ENTERPRISE, "u-enterprise-lvjing"),
    (QINGHE, "u-enterprise-qinghe"),
    (DIANSHANHU, "u-enterprise-dianshanhu"),
    (ZHUJIAJIAO, "u-enterprise-zhujiajiao"),
    (CITIZEN, "u-citizen-zhang"),
    (ELDERLY, "u-citizen-li"),
)

_CLEAN = {
    "all": [
        {"not_listed": "serious_dishonesty", "years": 3},
        {"not_listed": "abnormal_operation", "years": 3},
        {"not_listed": "major_violation", "years": 2},
    ]
}

POLICIES: tuple[PolicyVersion, ...] = (
    PolicyVersion.from_dict(
        {
            "policy_id": HIGH_TECH_POLICY,
            "version": 1,
            "title": "高新技术企业首次认定奖励",
            "department_id": KJW.department_id,
            "effective_from": "2026-01-01",
            "effective_to": "2026-12-31",
            "legal_ref": "青浦区关于加快科技创新发展的若干政策（2026年版）第五条",
            "benefit": "首次认定高新技术企业一次性奖励25万元",
            "amount": 250000,
            "benefit_key": "high_tech_first_recognition",
            "mode": "direct",
            "conditions": {
                "all": [
                    {"fact": "registered_in_qingpu", "op": "eq", "value": True},
                    {"fact": "tax_in_qingpu", "op": "eq", "value": True},
                    {"holds": "high_tech_enterprise"},
                    {"months_since": "high_tech_recognised_on", "op": "le", "value": 12},
                    _CLEAN,
                ]
            },
            "subject_kind": "enterprise",
            "tags": ["科技创新", "高新技术企业"],
            "summary": "在青浦区注册并纳税、首次认定高新技术企业一年内的企业，免申即享一次性奖励。",
            "state": "draft",
            "created_by": "u-dept-kjw",
            "created_at": "2026-11-02T09:30:00+08:00",
        }
    ),
    PolicyVersion.from_dict(
        {
            "policy_id": JOBS_POLICY,
            "version": 1,
            "title": "稳岗补贴",
            "department_id": "dept-rsj",
            "effective_from": "2026-01-01",
            "effective_to": None,
            "legal_ref": "青浦区稳就业促发展若干措施（青府发〔2026〕3号）",
            "benefit": "稳定就业岗位补贴2万元",
            "amount": 20000,
            "benefit_key": "jobs_stability_2026",
            "mode": "confirm",
            "conditions": {
                "all": [
                    {"fact": "registered_in_qingpu", "op": "eq", "value": True},
                    {"years_since": "founded_on", "op": "ge", "value": 2},
                    {"fact": "employees", "op": "ge", "value": 10},
                    {"fact": "tax_credit_rating", "op": "in", "value": ["A", "B"]},
                    _CLEAN,
                ]
            },
            "subject_kind": "enterprise",
            "tags": ["稳就业"],
            "summary": "成立满2年、参保职工10人以上、纳税信用A或B级的企业，确认后拨付。",
            "state": "draft",
            "created_by": "u-dept-rsj",
            "created_at": "2026-11-09T14:00:00+08:00",
        }
    ),
    PolicyVersion.from_dict(
        {
            "policy_id": TALENT_POLICY,
            "version": 1,
            "title": "青浦区人才安居补贴",
            "department_id": "dept-rsj",
            "effective_from": "2026-01-01",
            "effective_to": None,
            "legal_ref": "青浦区人才安居工程实施办法（2025年修订）",
            "benefit": "每月租房补贴最高2000元，最长36个月",
            "amount": None,
            "benefit_key": "talent_housing",
            "mode": "apply",
            "service_item_code": TALENT_ITEM,
            "conditions": {
                "all": [
                    {"fact": "household_in_qingpu", "op": "eq", "value": True},
                    {"fact": "age", "op": "le", "value": 45},
                    {"not_listed": "serious_dishonesty", "years": 3},
                ]
            },
            "subject_kind": "person",
            "tags": ["人才", "住房"],
            "summary": "45周岁以下的青浦区户籍人才可快申，申请表已按档案预填。",
            "state": "published",
            "created_by": "u-dept-rsj",
            "created_at": "2025-12-15T10:00:00+08:00",
            "published_by": "u-supervisor-zhao",
            "published_at": "2026-01-01T09:00:00+08:00",
        }
    ),
)

TALENT_SERVICE_ITEM = ServiceItem(
    code=TALENT_ITEM,
    name="青浦区人才安居补贴申领",
    department_id="dept-rsj",
    kind=ItemKind.PROMISED,
    statutory_days=20,
    promised_days=10,
    subject_kind="person",
    conditions=("青浦区户籍", "45周岁以下"),
    materials=(MaterialSpec("rental_contract", "房屋租赁合同", key=True, file_types=("pdf",)),),
    fields=(
        FieldSpec("name", "姓名", "profile:name"),
        FieldSpec("id_number", "身份证号", "profile:subject_id", kind="id_number"),
        FieldSpec("mobile", "联系电话", "profile:mobile"),
        FieldSpec("address", "居住地址", "profile:address"),
    ),
)

# Facts added to the demo profiles of seed_applications.
DEMO_FACTS: dict[str, dict[str, Any]] = {
    ENTERPRISE: {
        "registered_in_qingpu": True,
        "tax_in_qingpu": True,
        "tax_credit_rating": "A",
        "employees": 85,
        "annual_revenue": 3200.0,
        **_NO_RECORDS,
    },
    CITIZEN: {"household_in_qingpu": True, "talent_level": "C", **_NO_RECORDS},
    ELDERLY: {"household_in_qingpu": True, **_NO_RECORDS},
}


def seed_policies(container: Any) -> None:
    """Policies, profiles and accounts; call after seed_applications (it extends its profiles)."""
    from chalicelib.service_layer.policies import PolicyDeps, link_demo_accounts

    container.directory.put_department(KJW)
    for user in ACCOUNTS:
        container.directory.put_user(user)
    applications = container.application_store
    if applications.latest_item(TALENT_ITEM) is None:
        applications.put_item_version(validate_item(TALENT_SERVICE_ITEM))
    store = container.policy_store
    for version in POLICIES:
        if store.get_version(version.policy_id, version.version) is None:
            store.create_version(version)
    deps = PolicyDeps.from_container(container)
    link_demo_accounts(deps, list(LINKS))
    for subject_id, facts in DEMO_FACTS.items():
        profile = applications.get_profile(subject_id)
        if profile is not None:
            applications.put_profile(replace(profile, **facts))
    for profile in ENTERPRISES:
        applications.put_profile(profile)
    for licence in LICENCES:
        applications.put_licence(licence)
    # Published now, effective in a few working days: its knowledge-base answer is still due.
    seed_upcoming_policy(container)


# ---- an upcoming policy version, so the knowledge base's readiness list shows something -------

UPCOMING_POLICY = "qp-linghuo-2027"
UPCOMING_ITEM = "QP-RS-202"
UPCOMING_LEAD_WORKING_DAYS = 3  # takes effect this many working days after the seed's today


def upcoming_policy(now: datetime, calendar: WorkingCalendar) -> PolicyVersion:
    """A published 快申 version taking effect a few working days after `now` (the demo's clock),
    so the answer for it is due in the knowledge base within days (`GET /kb/readiness`)."""
    effective, _ = calendar.add_working_days(now.date(), UPCOMING_LEAD_WORKING_DAYS)
    stamp = now.isoformat(timespec="seconds")
    return PolicyVersion.from_dict(
        {
            "policy_id": UPCOMING_POLICY,
            "version": 1,
            "title": "灵活就业人员社会保险费补贴（新标准）",
            "department_id": "dept-rsj",
            "effective_from": effective.isoformat(),
            "effective_to": None,
            "legal_ref": "青浦区促进灵活就业若干措施（征求意见后定稿）",
            "benefit": "按新标准按月补贴灵活就业人员缴纳的社会保险费",
            "amount": None,
            "benefit_key": "flexible_employment_insurance",
            "mode": "apply",
            "service_item_code": UPCOMING_ITEM,
            "conditions": {
                "all": [
                    {"fact": "household_in_qingpu", "op": "eq", "value": True},
                    {"not_listed": "serious_dishonesty", "years": 3},
                ]
            },
            "subject_kind": "person",
            "tags": ["灵活就业", "社保"],
            "summary": "本区户籍、以灵活方式就业并缴纳社会保险费的人员，按新标准申领补贴。",
            "state": "published",
            "created_by": "u-dept-rsj",
            "created_at": stamp,
            "published_by": "u-supervisor-zhao",
            "published_at": stamp,
        }
    )


def seed_upcoming_policy(container: Any) -> PolicyVersion | None:
    """Write the upcoming version once (idempotent: a version already there is left as it is,
    even when a restored demo has since passed its date); answers it when written."""
    version = upcoming_policy(container.clock.now(), container.calendar_store.calendar())
    if container.policy_store.get_version(version.policy_id, version.version) is not None:
        return None
    container.policy_store.create_version(validate_version(version))
    return version
