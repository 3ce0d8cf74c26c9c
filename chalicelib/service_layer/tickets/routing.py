"""The routing rules: reading them and replacing the rule set."""

from __future__ import annotations

from dataclasses import replace

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Principal
from chalicelib.domain.items import item_code
from chalicelib.domain.tickets.routing import RoutingRule, RuleSet, next_rule_set
from chalicelib.observability import get_correlation_id
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.tickets.common import TicketDeps, _guide_item


def get_rule_set(deps: TicketDeps, principal: Principal) -> RuleSet:
    require(principal, Action.READ_TICKET_ROUTING)
    return deps.tickets.current_rule_set()


def replace_rule_set(
    deps: TicketDeps,
    principal: Principal,
    *,
    rules: list[RoutingRule],
    item_departments: dict[str, str],
    expected_version: int,
) -> RuleSet:
    """Store the next version of the ordered rules. Tickets keep the rule version that routed
    them; a concurrent edit (another version stored meanwhile) is a conflict."""
    require(principal, Action.MANAGE_TICKET_ROUTING)
    current = deps.tickets.current_rule_set()
    if expected_version != current.version:
        raise Conflict(
            f"派单规则已更新为第{current.version}版，请刷新后再修改", code="ruleset_changed"
        )
    for rule in rules:
        for code in rule.service_item_ids:
            _guide_item(deps, code)
    item_departments = {
        _guide_item(deps, code).code if deps.items is not None else code: department
        for code, department in item_departments.items()
    }
    rules = [
        replace(rule, service_item_ids=frozenset(item_code(i) for i in rule.service_item_ids))
        for rule in rules
    ]
    departments = {r.department_id for r in rules} | set(item_departments.values())
    known = {d for d in departments if deps.directory.get_department(d) is not None}
    now = deps.clock.now()
    new = next_rule_set(
        current,
        rules,
        item_departments,
        known_departments=known,
        by=principal.user_id,
        now=now,
    )
    if not deps.tickets.put_rule_set(new):
        raise Conflict("派单规则已被他人更新，请刷新后再修改", code="ruleset_changed")
    deps.audit_log.append(
        AuditEntry(
            actor_id=principal.user_id,
            actor_role=principal.role.value,
            action="ticket_routing.updated",
            subject_type="ticket_routing",
            subject_id="rules",
            before={"version": current.version, "rules": [r.to_dict() for r in current.rules]},
            after={"version": new.version, "rules": [r.to_dict() for r in new.rules]},
            correlation_id=get_correlation_id(),
            details={"item_departments": dict(new.item_departments)},
        )
    )
    return new
