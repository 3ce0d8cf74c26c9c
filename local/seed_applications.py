"""Demo data for applications: Qingpu service items across departments, profiles of the demo
users (一人一档 / 一企一档) and their e-licences (one expired).

Idempotent: an item is published only if its code has no version yet; profiles and licences
are overwritten with the same values.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.applications import (
    AutoRule,
    ELicence,
    FieldSpec,
    ItemKind,
    MaterialSpec,
    Profile,
    ServiceItem,
    validate_item,
)

ENTERPRISE = "91310118MA1JL0000N"
CITIZEN = "310118198503121233"

_ENTERPRISE_FIELDS = (
    FieldSpec("company_name", "企业名称", "profile:name"),
    FieldSpec("credit_code", "统一社会信用代码", "profile:subject_id", kind="credit_code"),
    FieldSpec("legal_representative", "法定代表人", "profile:legal_representative"),
    FieldSpec(
        "legal_representative_id",
        "法定代表人身份证号",
        "profile:legal_representative_id",
        kind="id_number",
    ),
    FieldSpec("contact_mobile", "联系电话", "profile:mobile"),
    FieldSpec("address", "住所", "profile:address"),
    FieldSpec("business_licence_no", "营业执照编号", "elicence:business_licence:number"),
)

_PERSON_FIELDS = (
    FieldSpec("name", "姓名", "profile:name"),
    FieldSpec("id_number", "身份证号", "profile:subject_id", kind="id_number"),
    FieldSpec("mobile", "联系电话", "profile:mobile"),
    FieldSpec("address", "居住地址", "profile:address"),
)

_BUSINESS_LICENCE = MaterialSpec(
    "business_licence", "营业执照", key=True, elicence_type="business_licence"
)

ITEMS: tuple[ServiceItem, ...] = (
    ServiceItem(
        code="QP-SC-103",
        name="仅销售预包装食品备案",
        department_id="dept-scjgj",
        kind=ItemKind.IMMEDIATE,
        statutory_days=5,
        promised_days=0,
        subject_kind="enterprise",
        conditions=("已在青浦区登记的企业", "仅销售预包装食品，不含散装食品"),
        materials=(_BUSINESS_LICENCE,),
        fields=(
            *_ENTERPRISE_FIELDS,
            FieldSpec("sale_type", "经营项目", "history"),
            FieldSpec("premises", "经营场所", "profile:address"),
        ),
        auto_rules=(
            AutoRule("信用状况良好", "credit_good"),
            AutoRule("预审无任何意见", "no_findings"),
            AutoRule(
                "经营项目为低风险", "field_in", {"field": "sale_type", "values": ["预包装食品"]}
            ),
        ),
        issues_licence="food_sale_filing",
    ),
    ServiceItem(
        code="QP-SC-105",
        name="食品经营许可证变更（经营场所）",
        department_id="dept-scjgj",
        kind=ItemKind.PROMISED,
        statutory_days=20,
        promised_days=5,
        subject_kind="enterprise",
        conditions=("持有有效的食品经营许可证",),
        materials=(
            MaterialSpec(
                "food_licence", "食品经营许可证", key=True, elicence_type="food_operation_licence"
            ),
            _BUSINESS_LICENCE,
            MaterialSpec("floor_plan", "经营场所平面图", key=False, file_types=("pdf", "jpg")),
            MaterialSpec("safety_rules", "食品安全管理制度", key=False, file_types=("pdf",)),
        ),
        fields=(*_ENTERPRISE_FIELDS, FieldSpec("new_premises", "变更后经营场所")),
        tolerance_allowed=True,
        supplement_days=5,
        commitment_allowed=True,
    ),
    ServiceItem(
        code="QP-RS-201",
        name="单位就业参保登记",
        department_id="dept-rsj",
        kind=ItemKind.PROMISED,
        statutory_days=15,
        promised_days=3,
        subject_kind="enterprise",
        conditions=("在青浦区依法登记的用人单位",),
        materials=(
            _BUSINESS_LICENCE,
            MaterialSpec("labour_contract", "劳动合同", key=True, file_types=("pdf",), max_kb=5120),
            MaterialSpec("roster", "参保人员名册", key=False, file_types=("pdf", "xlsx")),
        ),
        fields=(*_ENTERPRISE_FIELDS, FieldSpec("employees", "参保人数", kind="number")),
        tolerance_allowed=True,
        supplement_days=3,
    ),
    ServiceItem(
        code="QP-RS-202",
        name="灵活就业人员社会保险费补贴申领",
        department_id="dept-rsj",
        kind=ItemKind.PROMISED,
        statutory_days=20,
        promised_days=10,
        subject_kind="person",
        conditions=("本区户籍", "登记灵活就业满6个月"),
        materials=(
            MaterialSpec(
                "household_register", "户口簿", key=True, elicence_type="household_register"
            ),
            MaterialSpec("payment_proof", "社保缴费凭证", key=True, file_types=("pdf",)),
        ),
        fields=(*_PERSON_FIELDS, FieldSpec("bank_account", "收款银行账号", "history")),
    ),
    ServiceItem(
        code="QP-YB-301",
        name="跨省异地就医备案",
        department_id="dept-ybj",
        kind=ItemKind.PROMISED,
        statutory_days=5,
        promised_days=1,
        subject_kind="person",
        conditions=("参加本市职工或城乡居民基本医疗保险",),
        materials=(
            MaterialSpec("residence_proof", "异地居住证明", key=False, file_types=("pdf", "jpg")),
        ),
        fields=(*_PERSON_FIELDS, FieldSpec("destination", "就医地", "history")),
        tolerance_allowed=True,
        supplement_days=1,
        commitment_allowed=True,
    ),
    ServiceItem(
        code="QP-ZW-401",
        name="长三角示范区新生儿出生“一件事”",
        department_id="dept-zwb",
        kind=ItemKind.PROMISED,
        statutory_days=20,
        promised_days=5,
        subject_kind="person",
        conditions=("新生儿在长三角生态绿色一体化发展示范区（青浦、吴江、嘉善）出生",),
        materials=(
            MaterialSpec(
                "birth_certificate", "出生医学证明", key=True, elicence_type="birth_certificate"
            ),
            MaterialSpec(
                "household_register", "户口簿", key=True, elicence_type="household_register"
            ),
            MaterialSpec(
                "marriage_certificate",
                "结婚证",
                key=False,
                elicence_type="marriage_certificate",
            ),
        ),
        fields=(
            *_PERSON_FIELDS,
            FieldSpec("child_name", "新生儿姓名"),
            FieldSpec(
                "birth_certificate_no", "出生医学证明编号", "elicence:birth_certificate:number"
            ),
        ),
        tolerance_allowed=True,
        supplement_days=5,
        bundle=("出生医学证明", "户口登记", "城乡居民医保参保", "社会保障卡申领", "预防接种证"),
    ),
)


def _entry(
    code: str, name: str, department_id: str, subject_kind: str, statutory: int, promised: int
) -> ServiceItem:
    """A guide entry that bookings and tickets refer to; online submission is not offered
    for it yet (no form fields), the guide says where and how it is done."""
    return ServiceItem(
        code=code,
        name=name,
        department_id=department_id,
        kind=ItemKind.IMMEDIATE if promised == 0 else ItemKind.PROMISED,
        statutory_days=statutory,
        promised_days=promised,
        subject_kind=subject_kind,
    )


# The items booked at the centres and named in tickets, by the guide's code (their former
# ids are in chalicelib/domain/items.py).
GUIDE_ENTRIES: tuple[ServiceItem, ...] = (
    _entry("QP-SC-101", "企业设立登记", "dept-scjgj", "enterprise", 5, 1),
    _entry("QP-SC-104", "食品经营许可", "dept-scjgj", "enterprise", 20, 10),
    _entry("QP-RS-203", "社会保险参保登记", "dept-rsj", "person", 5, 0),
    _entry("QP-RS-204", "社会保障卡申领", "dept-rsj", "person", 20, 10),
    _entry("QP-RS-205", "灵活就业登记", "dept-rsj", "person", 5, 0),
    _entry("QP-RC-502", "人才引进落户", "dept-rsj", "person", 20, 15),
    _entry("QP-YB-302", "医疗费用零星报销", "dept-ybj", "person", 20, 10),
    _entry("QP-GA-601", "居民身份证申领", "dept-gaj", "person", 60, 20),
    _entry("QP-MZ-701", "老年综合津贴申领", "dept-mzj", "person", 20, 10),
    _entry("QP-MZ-702", "残疾人两项补贴申请", "dept-mzj", "person", 20, 15),
    _entry("QP-MZ-703", "社会救助申请", "dept-mzj", "person", 30, 20),
    _entry("QP-SW-801", "涉税综合业务", "dept-swj", "enterprise", 20, 0),
    _entry("QP-GH-901", "不动产转移登记", "dept-ghzyj", "person", 30, 5),
)


PROFILES: tuple[Profile, ...] = (
    Profile(
        subject_id=ENTERPRISE,
        kind="enterprise",
        name="上海绿境科技有限公司",
        mobile="13700001111",
        address="上海市青浦区华新镇华志路1000号",
        legal_representative="王建国",
        legal_representative_id="310118198001011237",
        industry="I6510 软件开发",
        registered_capital=500.0,
        founded_on="2019-04-18",
        tax_status="normal",
        credit_status="good",
        tags=("高新技术企业", "小微企业"),
    ),
    Profile(
        subject_id=CITIZEN,
        kind="person",
        name="张伟",
        mobile="13812345678",
        address="上海市青浦区盈浦街道青松路100弄5号",
    ),
    Profile(
        subject_id="310118194801150026",
        kind="person",
        name="李秀英",
        mobile="13998765432",
        address="上海市青浦区夏阳街道城中北路200号",
        tags=("elderly",),
    ),
)

LICENCES: tuple[ELicence, ...] = (
    ELicence("business_licence", ENTERPRISE, ENTERPRISE, "上海绿境科技有限公司", "2019-04-18"),
    # Expired: pre-review of a food-licence change reports it with reason "expired".
    ELicence(
        "food_operation_licence",
        "JY23101180012345",
        ENTERPRISE,
        "上海绿境科技有限公司",
        "2021-07-01",
        "2026-06-30",
    ),
    ELicence("household_register", "HJ310118-0012345", CITIZEN, "张伟", "2010-03-01"),
    ELicence("birth_certificate", "Q310123456", CITIZEN, "张伟", "2026-11-20", None),
    ELicence("marriage_certificate", "J310118-2020-001234", CITIZEN, "张伟", "2020-05-20"),
)


def seed_applications(container: Any) -> None:
    store = container.application_store
    for item in ITEMS:
        if store.latest_item(item.code) is None:
            store.put_item_version(validate_item(item))
    seed_guide_entries(container)
    for profile in PROFILES:
        store.put_profile(profile)
    for licence in LICENCES:
        store.put_licence(licence)


def seed_guide_entries(container: Any) -> None:
    """The guide entries of the items booked and named in tickets (published once)."""
    store = container.application_store
    for item in GUIDE_ENTRIES:
        if store.latest_item(item.code) is None:
            store.put_item_version(validate_item(item))
