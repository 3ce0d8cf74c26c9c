"""Demo data for the local stage and the integration tests: users and departments.

Idempotent: running it twice leaves the same records. Webhook URLs of the seeded departments
point at the loopback receiver that `make run` starts.
"""

from __future__ import annotations

import base64

from chalicelib.domain.directory import Department, UserProfile
from chalicelib.domain.identity import Role

DEPARTMENTS = [
    Department("dept-scjgj", "青浦区市场监督管理局"),
    Department("dept-rsj", "青浦区人力资源和社会保障局"),
    Department("dept-ybj", "青浦区医疗保障局"),
    Department("dept-zwb", "青浦区政务服务办公室"),
    # Owners of guide items booked at the centres; no staff account in the demo.
    Department("dept-gaj", "上海市公安局青浦分局"),
    Department("dept-mzj", "青浦区民政局"),
    Department("dept-swj", "国家税务总局上海市青浦区税务局"),
    Department("dept-ghzyj", "青浦区规划和自然资源局"),
    Department("dept-wjw", "青浦区卫生健康委员会"),
    # 跨省通办 partner regions, registered like departments: their endpoint and shared secret.
    Department("region-wujiang", "江苏省苏州市吴江区（跨省通办）"),
    Department("region-jiashan", "浙江省嘉兴市嘉善县（跨省通办）"),
    # 12345: its work orders' results go back to it as a department's webhooks do.
    Department("hotline-12345", "12345市民服务热线"),
]


def _local_webhook_secret(department_id: str) -> str:
    # "local-only" in the key: every stage but local refuses it (adapters/secrets.py).
    key = f"local-only-webhook-key-{department_id}".encode()
    return "whsec_" + base64.b64encode(key).decode()


# The departments' Standard Webhooks secrets, created in the embedded AWS's Secrets Manager by
# local/provision.py (`<prefix>/webhooks/<department_id>`); the loopback receiver checks with
# them. dept-kjw is the policy seed's department.
WEBHOOK_SECRETS = {
    department_id: _local_webhook_secret(department_id)
    for department_id in [*(d.department_id for d in DEPARTMENTS), "dept-kjw"]
}

# The 跨省通办 partner regions' shared secrets (`<prefix>/regions/<region>`); the loopback
# regions of the local runner sign and verify with them.
REGION_SECRETS = {
    region: _local_webhook_secret(f"region-{region}") for region in ("wujiang", "jiashan")
}

USERS = [
    UserProfile(
        "u-citizen-zhang",
        Role.CITIZEN,
        "张伟",
        subject_id="310118198503121233",
        mobile="13812345678",
        description="市民（随申办小程序）",
    ),
    UserProfile(
        "u-citizen-li",
        Role.CITIZEN,
        "李秀英",
        subject_id="310118194801150026",
        mobile="13998765432",
        tags=frozenset({"elderly"}),
        description="老年市民，可预约上门办",
    ),
    UserProfile(
        "u-enterprise-lvjing",
        Role.ENTERPRISE,
        "上海绿境科技有限公司",
        subject_id="91310118MA1JL0000N",
        mobile="13700001111",
        description="企业账号",
    ),
    UserProfile("u-window-wang", Role.WINDOW_STAFF, "王芳", description="区政务服务中心综合窗口"),
    UserProfile(
        "u-dept-scjgj",
        Role.DEPARTMENT_STAFF,
        "刘强",
        department_id="dept-scjgj",
        description="区市场监管局承办人",
    ),
    UserProfile(
        "u-dept-rsj",
        Role.DEPARTMENT_STAFF,
        "孙丽",
        department_id="dept-rsj",
        description="区人社局承办人",
    ),
    UserProfile("u-dispatcher-chen", Role.DISPATCHER, "陈静", description="区政务服务中心派单员"),
    UserProfile("u-supervisor-zhao", Role.SUPERVISOR, "赵敏", description="区政务办督办员"),
    UserProfile("u-admin", Role.ADMIN, "系统管理员", description="平台管理员"),
]


def seed(directory, webhook_base_url: str | None = None) -> None:
    for department in DEPARTMENTS:
        url = (
            f"{webhook_base_url.rstrip('/')}/{department.department_id}"
            if webhook_base_url
            else None
        )
        directory.put_department(Department(department.department_id, department.name, url))
    for user in USERS:
        directory.put_user(user)
