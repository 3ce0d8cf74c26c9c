"""Demo 跨省通办 items: accepted and pre-reviewed at the Qingpu window or online, decided in the
partner region that holds the record. Idempotent: published only if the code has no version."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.applications import FieldSpec, ItemKind, ServiceItem, validate_item

_PERSON = (
    FieldSpec("name", "姓名", "profile:name"),
    FieldSpec("id_number", "身份证号", "profile:subject_id", kind="id_number"),
    FieldSpec("mobile", "联系电话", "profile:mobile"),
    FieldSpec("address", "居住地址", "profile:address"),
)

CROSS_REGION_ITEMS: tuple[ServiceItem, ...] = (
    ServiceItem(
        code="KS-WJ-201",
        name="吴江区社会保险参保缴费证明（跨省通办）",
        department_id="dept-zwb",
        kind=ItemKind.PROMISED,
        statutory_days=10,
        promised_days=3,
        subject_kind="person",
        fields=(*_PERSON, FieldSpec("period", "缴费期间")),
        handled_in="wujiang",
    ),
    ServiceItem(
        code="KS-JS-301",
        name="嘉善县不动产登记资料查询（跨省通办）",
        department_id="dept-zwb",
        kind=ItemKind.PROMISED,
        statutory_days=10,
        promised_days=5,
        subject_kind="person",
        fields=(*_PERSON, FieldSpec("property_address", "不动产坐落")),
        handled_in="jiashan",
    ),
)


def seed_crossregion(container: Any) -> None:
    store = container.application_store
    for item in CROSS_REGION_ITEMS:
        if store.latest_item(item.code) is None:
            store.put_item_version(validate_item(item))
