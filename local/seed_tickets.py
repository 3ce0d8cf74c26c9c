"""Demo data for 办不成事 tickets: the routing rules and a few tickets in different states.

Idempotent: the rules are written only while none exist (an admin's later edits stay), each
demo ticket is filed with its own Idempotency-Key and moved on only as far as it has not gone
yet, so running it at every `make run` leaves the same tickets.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.tickets.routing import RoutingRule
from chalicelib.domain.tickets.ticket import Channel, ContactMethod, TicketKind, TicketState

# The guide says which department owns each item (a ticket naming one is routed on it); the
# rule set may override that per item, which the demo does not.
ITEM_DEPARTMENTS: dict[str, str] = {}

RULES = [
    RoutingRule(
        "staff-conduct",
        "工作人员作风问题由区政务办直接办理",
        "dept-zwb",
        kinds=frozenset({TicketKind.STAFF_CONDUCT}),
    ),
    RoutingRule(
        "market-items",
        "市场监管事项",
        "dept-scjgj",
        kinds=frozenset({TicketKind.NOT_ACCEPTED, TicketKind.NOT_APPROVED, TicketKind.OTHER}),
        item_department_ids=frozenset({"dept-scjgj"}),
    ),
    RoutingRule(
        "hr-items",
        "人社事项",
        "dept-rsj",
        kinds=frozenset({TicketKind.NOT_ACCEPTED, TicketKind.NOT_APPROVED, TicketKind.OTHER}),
        item_department_ids=frozenset({"dept-rsj"}),
    ),
    RoutingRule(
        "medical-insurance-keywords",
        "医保相关诉求",
        "dept-ybj",
        keywords=("医保", "报销", "异地就医"),
    ),
    # Cross-department matters match no rule: the dispatcher routes them by hand (转办).
]


def seed_routing_rules(container: Any) -> None:
    from chalicelib.domain.identity import SYSTEM
    from chalicelib.service_layer.tickets.common import TicketDeps
    from chalicelib.service_layer.tickets.routing import replace_rule_set

    deps = TicketDeps.from_container(container)
    if deps.tickets.current_rule_set().version > 0:
        return
    replace_rule_set(
        deps, SYSTEM, rules=RULES, item_departments=ITEM_DEPARTMENTS, expected_version=0
    )


def seed_ticket_limits(container: Any) -> None:
    """Version 1 of the ticket limits: DOMAIN.md's defaults, in force for every date."""
    from datetime import date

    from chalicelib.domain.tickets.limits import DEFAULT_TICKET_LIMITS, TicketLimitsVersion
    from chalicelib.service_layer.tickets.common import TicketDeps

    deps = TicketDeps.from_container(container)
    if deps.tickets.limits_versions():
        return
    deps.tickets.put_limits_version(
        TicketLimitsVersion(
            version=1,
            limits=DEFAULT_TICKET_LIMITS,
            effective_from=date.min,
            updated_by="system",
            updated_at=container.clock.now(),
            note="默认值（DOMAIN.md）",
        )
    )


# (idempotency key, filer, intake fields, steps to take): each step is
# (the state it leaves, acting user, use case, arguments).
DEMO_TICKETS: list[dict[str, Any]] = [
    {
        "key": "seed-ticket-dispatched",
        "user": "u-citizen-zhang",
        "intake": {
            "kind": TicketKind.NOT_ACCEPTED,
            "channel": Channel.MINI_PROGRAM,
            "description": "网上提交企业设立登记三次都被退回，每次退回的理由都不一样。",
            "contact_method": ContactMethod.PHONE,
            "service_item_id": "QP-SC-101",
            "service_item_name": "企业设立登记",
        },
        "steps": [],
    },
    {
        "key": "seed-ticket-accepted",
        "user": "u-citizen-li",
        "intake": {
            "kind": TicketKind.NOT_APPROVED,
            "channel": Channel.MINI_PROGRAM,
            "description": "补办社保卡申请一直显示审核中，已经超过承诺时限。",
            "contact_method": ContactMethod.PHONE,
            "service_item_id": "QP-RS-204",
            "service_item_name": "社会保障卡申领",
        },
        "steps": [
            (
                TicketState.DISPATCHED,
                "u-dept-rsj",
                "accept",
                {"contact_method": ContactMethod.PHONE, "note": "已电话联系，约定上门核实。"},
            ),
        ],
    },
    {
        "key": "seed-ticket-replied",
        "user": "u-enterprise-lvjing",
        "intake": {
            "kind": TicketKind.NOT_ACCEPTED,
            "channel": Channel.PC,
            "description": "食品经营许可申请因场地证明被拒收，但材料清单中没有要求该证明。",
            "contact_method": ContactMethod.PHONE,
            "service_item_id": "QP-SC-104",
            "service_item_name": "食品经营许可",
        },
        "steps": [
            (
                TicketState.DISPATCHED,
                "u-dept-scjgj",
                "accept",
                {"contact_method": ContactMethod.PHONE, "note": "已联系企业经办人。"},
            ),
            (
                TicketState.ACCEPTED,
                "u-dept-scjgj",
                "reply",
                {
                    "answer": "经核实，场地证明不属于必须材料，已通知窗口按清单受理。",
                    "evidence": ("evidence/spjy-checklist.pdf",),
                    "rectification": "已对窗口人员进行材料清单培训。",
                },
            ),
        ],
    },
    {
        "key": "seed-ticket-closed",
        "user": "u-enterprise-lvjing",
        "intake": {
            "kind": TicketKind.OTHER,
            "channel": Channel.MINI_PROGRAM,
            "description": "员工灵活就业登记后无法在线打印证明。",
            "contact_method": ContactMethod.MINI_PROGRAM,
            "service_item_id": "QP-RS-205",
            "service_item_name": "灵活就业登记",
        },
        "steps": [
            (
                TicketState.DISPATCHED,
                "u-dept-rsj",
                "accept",
                {"contact_method": ContactMethod.PHONE, "note": "已联系，确认是打印接口故障。"},
            ),
            (
                TicketState.ACCEPTED,
                "u-dept-rsj",
                "reply",
                {"answer": "打印接口已修复，可在线打印证明。", "evidence": ("evidence/lhjy.png",)},
            ),
            (
                TicketState.REPLIED,
                "u-supervisor-zhao",
                "call_back",
                {"satisfied": True, "note": "企业表示满意。"},
            ),
            (TicketState.CALLED_BACK, "u-supervisor-zhao", "close", {"note": "回访满意，办结。"}),
        ],
    },
    {
        "key": "seed-ticket-unrouted",
        "user": "u-citizen-zhang",
        "intake": {
            "kind": TicketKind.CROSS_DEPARTMENT,
            "channel": Channel.MINI_PROGRAM,
            "description": "开办民宿需要消防、卫生、市场监管多个部门审批，各部门互相推诿。",
            "contact_method": ContactMethod.PHONE,
        },
        "steps": [],
    },
]


def seed_tickets(container: Any) -> None:
    """Routing rules, then the demo tickets moved to their states."""
    from chalicelib.service_layer.tickets import transitions as service
    from chalicelib.service_layer.tickets.common import TicketDeps
    from chalicelib.service_layer.tickets.intake import IntakeRequest, file_ticket
    from local.seed_applications import seed_guide_entries

    seed_guide_entries(container)  # the items the demo tickets name
    seed_routing_rules(container)
    seed_ticket_limits(container)
    deps = TicketDeps.from_container(container)
    for demo in DEMO_TICKETS:
        filer = container.directory.get_user(demo["user"])
        if filer is None:
            continue
        request = IntakeRequest(**demo["intake"])
        ticket = (
            _filed_before(deps, filer, request, demo["key"])
            or (file_ticket(deps, filer.principal(), request, idempotency_key=demo["key"])).ticket
        )
        for state, user_id, use_case, arguments in demo["steps"]:
            if ticket.state is not state:
                continue  # done at an earlier start
            actor = container.directory.get_user(user_id)
            ticket = getattr(service, use_case)(
                deps, actor.principal(), ticket.ticket_id, **arguments
            )


def _filed_before(deps: Any, filer: Any, request: Any, key: str) -> Any:
    """The demo ticket an earlier start filed (its id carries the day it was filed on)."""
    from chalicelib.domain.identity import PUBLIC_ROLES
    from chalicelib.domain.tickets.ticket import Owner

    principal = filer.principal()
    if principal.role in PUBLIC_ROLES:
        owner = Owner(principal.user_id, principal.subject_id)
    else:
        owner = Owner(request.on_behalf_user_id, request.on_behalf_subject_id)
    page = deps.tickets.by_owner(owner.key, 100, None)
    intake_key = f"{principal.user_id}#{key}"
    return next((t for t in page.items if t.intake_key == intake_key), None)
