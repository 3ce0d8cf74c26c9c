"""Routing rules: which department handles a ticket, by item, kind, channel and keywords."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.items import item_code
from chalicelib.domain.tickets.ticket import Complexity, RoutingMatch, TicketKind

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
# The rule id recorded when a ticket was routed to its service item's owner, no rule matching.
ITEM_OWNER_RULE = "item-owner"


@dataclass(frozen=True)
class RoutingFacts:
    kind: TicketKind
    service_item_id: str | None
    item_department_id: str | None
    text: str
    centre_id: str | None


@dataclass(frozen=True)
class RoutingRule:
    """Every criterion that is set must hold (values of one criterion are alternatives)."""

    rule_id: str
    name: str
    department_id: str
    complexity: Complexity = Complexity.SIMPLE
    kinds: frozenset[TicketKind] = frozenset()
    service_item_ids: frozenset[str] = frozenset()
    item_department_ids: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    centre_ids: frozenset[str] = frozenset()
    enabled: bool = True
    version: int = 1

    def matches(self, facts: RoutingFacts) -> bool:
        if not self.enabled:
            return False
        if self.kinds and facts.kind not in self.kinds:
            return False
        if self.service_item_ids and facts.service_item_id not in self.service_item_ids:
            return False
        if self.item_department_ids and facts.item_department_id not in self.item_department_ids:
            return False
        if self.centre_ids and facts.centre_id not in self.centre_ids:
            return False
        text = facts.text.lower()
        return not self.keywords or any(k.lower() in text for k in self.keywords)

    def content(self) -> dict[str, Any]:
        """Everything but the version: a change of content makes a new version."""
        return {
            "rule_id": self.rule_id,
            "name": self.name,
            "department_id": self.department_id,
            "complexity": self.complexity.value,
            "kinds": sorted(k.value for k in self.kinds),
            "service_item_ids": sorted(self.service_item_ids),
            "item_department_ids": sorted(self.item_department_ids),
            "keywords": list(self.keywords),
            "centre_ids": sorted(self.centre_ids),
            "enabled": self.enabled,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.content(), "version": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingRule:
        return cls(
            rule_id=data["rule_id"],
            name=data.get("name", ""),
            department_id=data["department_id"],
            complexity=Complexity(data.get("complexity", Complexity.SIMPLE)),
            kinds=frozenset(TicketKind(k) for k in data.get("kinds", ())),
            service_item_ids=frozenset(item_code(i) for i in data.get("service_item_ids", ())),
            item_department_ids=frozenset(data.get("item_department_ids", ())),
            keywords=tuple(data.get("keywords", ())),
            centre_ids=frozenset(data.get("centre_ids", ())),
            enabled=bool(data.get("enabled", True)),
            version=int(data.get("version", 1)),
        )


@dataclass(frozen=True)
class RuleSet:
    """The ordered rules (first match wins) and which department owns each service item."""

    version: int = 0
    rules: tuple[RoutingRule, ...] = ()
    item_departments: Mapping[str, str] = field(default_factory=dict)
    updated_by: str | None = None
    updated_at: datetime | None = None

    def route(self, facts: RoutingFacts) -> RoutingMatch | None:
        for rule in self.rules:
            if rule.matches(facts):
                return RoutingMatch(
                    rule.rule_id, rule.version, self.version, rule.department_id, rule.complexity
                )
        # No rule more specific: the item's owner answers for it. Matters across departments
        # and staff conduct stay with the dispatcher unless a rule says otherwise.
        if facts.item_department_id and facts.kind not in (
            TicketKind.CROSS_DEPARTMENT,
            TicketKind.STAFF_CONDUCT,
        ):
            return RoutingMatch(
                ITEM_OWNER_RULE, 0, self.version, facts.item_department_id, Complexity.SIMPLE
            )
        return None

    def item_department(self, code: str | None) -> str | None:
        if not code:
            return None
        for item, department in self.item_departments.items():
            if item_code(item) == code:
                return department
        return None


def next_rule_set(
    current: RuleSet,
    rules: list[RoutingRule],
    item_departments: Mapping[str, str],
    *,
    known_departments: set[str],
    by: str,
    now: datetime,
) -> RuleSet:
    """The next version: a rule keeps its version when its content is unchanged, else +1."""
    problems = []
    seen: set[str] = set()
    for rule in rules:
        if not _RULE_ID.match(rule.rule_id):
            problems.append(f"规则编号 {rule.rule_id!r} 应为小写字母、数字、下划线或连字符")
        if rule.rule_id in seen or rule.rule_id == ITEM_OWNER_RULE:
            problems.append(f"规则编号 {rule.rule_id} 重复或为保留编号")
        seen.add(rule.rule_id)
        if rule.department_id not in known_departments:
            problems.append(f"规则 {rule.rule_id} 的承办部门 {rule.department_id} 不存在")
    for item, department in item_departments.items():
        if department not in known_departments:
            problems.append(f"事项 {item} 的主管部门 {department} 不存在")
    if problems:
        raise InvalidInput("；".join(problems), code="invalid_routing_rules")
    previous = {r.rule_id: r for r in current.rules}
    versioned = []
    for rule in rules:
        before = previous.get(rule.rule_id)
        if before is None:
            version = 1
        elif before.content() == rule.content():
            version = before.version
        else:
            version = before.version + 1
        versioned.append(replace(rule, version=version))
    return RuleSet(
        version=current.version + 1,
        rules=tuple(versioned),
        item_departments=dict(item_departments),
        updated_by=by,
        updated_at=now,
    )
