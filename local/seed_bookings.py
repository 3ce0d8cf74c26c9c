"""Demo data for booking: the district centre, its 7 sub-centres and the 11 town and street
community centres (社区事务受理服务中心) of Qingpu, their opening hours and breaks, the services
they offer by channel, a manager per centre and home-visit staff per community centre.

Idempotent: the catalogue and the staff are written as they are here (twice → the same items);
the booking rules are written only if none are stored, so an admin's change survives a restart.
"""

from __future__ import annotations

import contextlib
from datetime import time
from typing import Any

from chalicelib.domain.bookings.centres import (
    Center,
    CenterKind,
    Channel,
    Complexity,
    Service,
    Session,
)
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.directory import UserProfile
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Role

S, C = Complexity.SIMPLE, Complexity.COMPLEX
COUNTER, VIDEO, HOME = Channel.COUNTER, Channel.VIDEO, Channel.HOME_VISIT

ITEMS: dict[str, tuple[str, Complexity]] = {
    "QP-GA-601": ("居民身份证申领", S),
    "QP-RS-203": ("社会保险参保登记", S),
    "QP-YB-302": ("医疗费用零星报销", S),
    "QP-MZ-701": ("老年综合津贴申领", S),
    "QP-MZ-702": ("残疾人两项补贴申请", S),
    "QP-SC-101": ("企业设立登记", C),
    "QP-SW-801": ("涉税综合业务", C),
    "QP-GH-901": ("不动产转移登记", C),
    "QP-RC-502": ("人才引进落户", C),
    "QP-MZ-703": ("社会救助申请", C),
}

# The department answering for each item's service (its reviews and rectification); items of
# departments without an account in the demo answer to the district office (None).
ITEM_DEPARTMENTS: dict[str, str] = {
    "QP-SC-101": "dept-scjgj",
    "QP-RS-203": "dept-rsj",
    "QP-RC-502": "dept-rsj",
    "QP-YB-302": "dept-ybj",
}

DISTRICT_HOURS = (Session(time(9, 0), time(12, 0)), Session(time(13, 0), time(17, 0)))
SUB_CENTER_HOURS = (Session(time(9, 0), time(11, 30)), Session(time(13, 30), time(17, 0)))
COMMUNITY_HOURS = (Session(time(8, 30), time(11, 30)), Session(time(13, 30), time(16, 30)))

# (id suffix, name, address, phone)
SUB_CENTERS = [
    ("industrial", "青浦工业园区分中心", "青浦区崧泽大道 9588 号", "021-59701101"),
    ("xihongqiao", "西虹桥分中心", "青浦区徐泾镇诸光路 1588 号", "021-59701102"),
    ("newcity", "青浦新城分中心", "青浦区淀山湖大道 218 号", "021-59701103"),
    ("software", "市西软件信息园分中心", "青浦区香花桥街道天辰路 1599 号", "021-59701104"),
    ("demozone", "长三角一体化示范区分中心", "青浦区金泽镇沪青平公路 6666 号", "021-59701105"),
    ("realestate", "不动产登记分中心", "青浦区公园东路 1177 号", "021-59701106"),
    ("talent", "人才服务分中心", "青浦区华乐路 100 号", "021-59701107"),
]

# (id suffix, town or street, address)
COMMUNITIES = [
    ("xiayang", "夏阳街道", "青浦区青松路 100 号"),
    ("yingpu", "盈浦街道", "青浦区盈港东路 500 号"),
    ("xianghuaqiao", "香花桥街道", "青浦区新府中路 1567 号"),
    ("zhaoxiang", "赵巷镇", "青浦区赵巷镇业辉路 118 号"),
    ("xujing", "徐泾镇", "青浦区徐泾镇振泾路 168 号"),
    ("huaxin", "华新镇", "青浦区华新镇华腾路 1288 号"),
    ("chonggu", "重固镇", "青浦区重固镇北青公路 6878 号"),
    ("baihe", "白鹤镇", "青浦区白鹤镇鹤祥路 88 号"),
    ("zhujiajiao", "朱家角镇", "青浦区朱家角镇沙家埭路 18 号"),
    ("liantang", "练塘镇", "青浦区练塘镇章练塘路 588 号"),
    ("jinze", "金泽镇", "青浦区金泽镇金溪路 318 号"),
]

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ["建华", "丽萍", "志强", "秀兰", "海燕", "国平", "晓东", "慧敏", "俊杰", "雪梅", "春明"]

DISTRICT_ID = "qp-district"


def _name(n: int) -> str:
    return _SURNAMES[n % len(_SURNAMES)] + _GIVEN[(n * 7) % len(_GIVEN)]


def _service(
    center_id: str,
    item_id: str,
    channel: Channel,
    minutes: int,
    seats: int,
    priority: int = 0,
    staff: tuple[str, ...] = (),
) -> Service:
    name, complexity = ITEMS[item_id]
    return Service(
        center_id,
        item_id,
        name,
        channel,
        minutes,
        seats,
        complexity,
        priority,
        staff,
        department_id=ITEM_DEPARTMENTS.get(item_id),
    )


def catalogue() -> tuple[list[Center], list[Service], list[UserProfile]]:
    """Every centre, service and centre staff member of the demo."""
    centers: list[Center] = []
    services: list[Service] = []
    staff: list[UserProfile] = []

    def manager(center_id: str, center_name: str) -> str:
        user_id = f"u-manager-{center_id.removeprefix('qp-')}"
        staff.append(
            UserProfile(
                user_id, Role.WINDOW_STAFF, _name(len(staff)), description=f"{center_name}值班长"
            )
        )
        return user_id

    district_name = "青浦区政务服务中心"
    centers.append(
        Center(
            DISTRICT_ID,
            district_name,
            CenterKind.DISTRICT,
            "青浦区华青南路 828 号",
            "021-59701100",
            DISTRICT_HOURS,
            manager_id=manager(DISTRICT_ID, district_name),
        )
    )
    services += [
        _service(DISTRICT_ID, "QP-GA-601", COUNTER, 15, 4, 1),
        _service(DISTRICT_ID, "QP-RS-203", COUNTER, 15, 4, 1),
        _service(DISTRICT_ID, "QP-YB-302", COUNTER, 15, 3, 1),
        _service(DISTRICT_ID, "QP-SC-101", COUNTER, 30, 3, 1),
        _service(DISTRICT_ID, "QP-SW-801", COUNTER, 30, 3, 1),
        _service(DISTRICT_ID, "QP-GH-901", COUNTER, 30, 2),
        _service(DISTRICT_ID, "QP-RC-502", COUNTER, 30, 2),
        _service(DISTRICT_ID, "QP-SC-101", VIDEO, 30, 2),
        _service(DISTRICT_ID, "QP-RS-203", VIDEO, 20, 2),
    ]

    offers = {
        "industrial": [("QP-SC-101", 30, 3, 1), ("QP-SW-801", 30, 2, 0)],
        "xihongqiao": [("QP-SC-101", 30, 3, 1), ("QP-SW-801", 30, 2, 0)],
        "newcity": [
            ("QP-GA-601", 15, 3, 1),
            ("QP-RS-203", 15, 3, 1),
            ("QP-YB-302", 15, 2, 1),
        ],
        "software": [("QP-SC-101", 30, 2, 0), ("QP-RC-502", 30, 2, 0)],
        "demozone": [("QP-SC-101", 30, 2, 0), ("QP-SW-801", 30, 2, 0)],
        "realestate": [("QP-GH-901", 30, 4, 1)],
        "talent": [("QP-RC-502", 30, 3, 1), ("QP-RS-203", 15, 3, 1)],
    }
    for suffix, name, address, phone in SUB_CENTERS:
        center_id = f"qp-sub-{suffix}"
        centers.append(
            Center(
                center_id,
                name,
                CenterKind.SUB_CENTER,
                address,
                phone,
                SUB_CENTER_HOURS,
                manager_id=manager(center_id, name),
            )
        )
        services += [
            _service(center_id, item, COUNTER, minutes, seats, priority)
            for item, minutes, seats, priority in offers[suffix]
        ]
        if suffix in ("industrial", "xihongqiao", "demozone"):
            services.append(_service(center_id, "QP-SC-101", VIDEO, 30, 1))

    for number, (suffix, town, address) in enumerate(COMMUNITIES, start=1):
        center_id = f"qp-cc-{suffix}"
        name = f"{town}社区事务受理服务中心"
        visitors = tuple(f"u-staff-{suffix}-{n}" for n in (1, 2))
        for n, user_id in enumerate(visitors, start=1):
            staff.append(
                UserProfile(
                    user_id,
                    Role.WINDOW_STAFF,
                    _name(len(staff) + n),
                    description=f"{name}上门办工作人员",
                )
            )
        centers.append(
            Center(
                center_id,
                name,
                CenterKind.COMMUNITY,
                address,
                f"021-5970{2100 + number}",
                COMMUNITY_HOURS,
                area=(town,),
                manager_id=manager(center_id, name),
            )
        )
        services += [
            _service(center_id, "QP-RS-203", COUNTER, 15, 2, 1),
            _service(center_id, "QP-YB-302", COUNTER, 15, 2, 1),
            _service(center_id, "QP-MZ-701", COUNTER, 20, 2, 1),
            _service(center_id, "QP-MZ-702", COUNTER, 20, 2, 1),
            _service(center_id, "QP-MZ-703", COUNTER, 30, 2),
            _service(center_id, "QP-RS-203", VIDEO, 20, 1),
            _service(center_id, "QP-MZ-701", HOME, 60, 2, staff=visitors),
            _service(center_id, "QP-MZ-702", HOME, 60, 2, staff=visitors),
        ]
    return centers, services, staff


def seed_bookings(container: Any) -> dict[str, int]:
    """The centres' catalogue and rules (bookings table) and their staff (directory)."""
    counts = seed_booking_catalogue(container)
    counts["staff"] = seed_booking_staff(container)
    return counts


def seed_booking_catalogue(container: Any) -> dict[str, int]:
    from local.seed_applications import GUIDE_ENTRIES, seed_guide_entries

    centers, services, _ = catalogue()
    guide = {item.code: item.name for item in GUIDE_ENTRIES}
    unknown = sorted({s.item_id for s in services if guide.get(s.item_id) != s.item_name})
    if unknown:
        raise ValueError(f"booking services name items missing from the guide: {unknown}")
    seed_guide_entries(container)
    store = container.booking_store
    store.put_catalog(centers, services)
    # Rules already stored (perhaps changed by an admin) are kept.
    with contextlib.suppress(Conflict):
        store.put_rules(BookingRules(), "system", container.clock.now(), None)
    return {"centers": len(centers), "services": len(services)}


def seed_booking_staff(container: Any) -> int:
    _, _, staff = catalogue()
    for user in staff:
        container.directory.put_user(user)
    return len(staff)
