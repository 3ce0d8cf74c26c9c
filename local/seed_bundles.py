"""Demo 一件事 bundles and the member items they join that the guide lacked: 出生一件事 (卫健,
公安, 医保, 人社; 出生医学证明 before 户口登记, 户口 before 医保 and 社保卡) and 开办餐饮店一件事
(营业执照 before 食品经营许可 and 税务登记).

Idempotent: an item is published only if its code has no version yet; bundles are overwritten
with the same definition. Call after seed_applications (the bundles join its guide entries).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.applications import FieldSpec, ItemKind, MaterialSpec, ServiceItem
from chalicelib.domain.applications import validate_item as validate_item_
from chalicelib.domain.bundles import Bundle, BundleMember, validate_bundle

_PARENT = (
    FieldSpec("name", "姓名", "profile:name"),
    FieldSpec("id_number", "身份证号", "profile:subject_id", kind="id_number"),
    FieldSpec("mobile", "联系电话", "profile:mobile"),
    FieldSpec("address", "居住地址", "profile:address"),
    FieldSpec("child_name", "新生儿姓名"),
)
_BIRTH_CERTIFICATE = MaterialSpec(
    "birth_certificate", "出生医学证明", key=True, elicence_type="birth_certificate"
)


def _item(code: str, name: str, department_id: str, promised: int, **kw: Any) -> ServiceItem:
    return ServiceItem(
        code=code,
        name=name,
        department_id=department_id,
        kind=ItemKind.PROMISED,
        statutory_days=max(promised * 2, 5),
        promised_days=promised,
        subject_kind="person",
        **kw,
    )


MEMBER_ITEMS: tuple[ServiceItem, ...] = (
    _item(
        "QP-WJ-101",
        "出生医学证明签发",
        "dept-wjw",
        3,
        fields=(*_PARENT, FieldSpec("birth_hospital", "出生医院")),
        materials=(MaterialSpec("delivery_record", "分娩记录", key=True, file_types=("pdf",)),),
        issues_licence="birth_certificate",
    ),
    _item("QP-WJ-102", "预防接种证办理", "dept-wjw", 1, fields=_PARENT),
    _item(
        "QP-GA-602",
        "新生儿出生户口登记",
        "dept-gaj",
        5,
        fields=_PARENT,
        materials=(_BIRTH_CERTIFICATE,),
    ),
    _item(
        "QP-YB-303",
        "城乡居民医保参保登记（新生儿）",
        "dept-ybj",
        3,
        fields=_PARENT,
        materials=(MaterialSpec("insured_form", "参保登记表", key=True, file_types=("pdf",)),),
    ),
    _item("QP-RS-206", "社会保障卡申领（新生儿）", "dept-rsj", 10, fields=_PARENT),
)

BIRTH = Bundle(
    code="birth",
    name="出生一件事",
    description="新生儿出生医学证明、预防接种证、户口登记、医保参保与社保卡，一表申请、分头办理",
    subject_kind="person",
    members=(
        BundleMember("QP-WJ-101"),
        BundleMember("QP-WJ-102", ("QP-WJ-101",)),
        BundleMember("QP-GA-602", ("QP-WJ-101",)),
        BundleMember("QP-YB-303", ("QP-GA-602",)),
        BundleMember("QP-RS-206", ("QP-GA-602",)),
    ),
)

RESTAURANT = Bundle(
    code="restaurant",
    name="开办餐饮店一件事",
    description="营业执照、食品经营许可与涉税事项，一表申请、分头办理",
    subject_kind="enterprise",
    members=(
        BundleMember("QP-SC-101"),
        BundleMember("QP-SC-104", ("QP-SC-101",)),
        BundleMember("QP-SW-801", ("QP-SC-101",)),
    ),
)

BUNDLES: tuple[Bundle, ...] = (BIRTH, RESTAURANT)


def seed_bundles(container: Any) -> None:
    store = container.application_store
    for item in MEMBER_ITEMS:
        if store.latest_item(item.code) is None:
            store.put_item_version(validate_item_(item))
    for bundle in BUNDLES:
        members = {m.item_code: store.latest_item(m.item_code) for m in bundle.members}
        validate_bundle(bundle, {k: v for k, v in members.items() if v is not None})
        container.bundle_store.put_bundle(bundle)
