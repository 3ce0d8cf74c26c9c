"""The monthly report of tickets per department."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Principal
from chalicelib.domain.tickets.ticket import SUBJECT_TYPE
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.tickets.common import TicketDeps


@dataclass(frozen=True)
class DepartmentFigures:
    department_id: str
    department_name: str
    counts: dict[str, int]
    overdue: int  # ticket deadlines that passed this month (催办 sent)
    escalations: int  # 督办 this month
    reported: int  # 通报 this month

    def rate(self, good: str, total: str) -> float | None:
        judged = self.counts.get(total, 0)
        return round(self.counts.get(good, 0) / judged, 4) if judged else None


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_STEP_PAGE = 100


def ticket_report(deps: TicketDeps, principal: Principal, month: str) -> list[DepartmentFigures]:
    """Per department: received, on-time contact and resolution, overdue, escalations and
    call-back satisfaction. Counters are one Query on the month; overdue and escalations come
    from the deadline engine's ladder steps of the month (Queries on its step index)."""
    require(principal, Action.READ_TICKET_REPORTS)
    if not _MONTH.match(month):
        raise InvalidInput("月份格式应为 YYYY-MM", code="invalid_month")
    counters = deps.tickets.month_counters(month)
    steps = {name: _ticket_steps(deps, name, month) for name in ("urge", "supervise", "report")}
    departments = set(counters) | {d for found in steps.values() for d in found}
    rows = []
    names: dict[str, str] = {}
    for department in sorted(departments):
        if not can(principal, Action.READ_TICKET_REPORTS, Resource(department_id=department)):
            continue
        found = deps.directory.get_department(department)
        names[department] = found.name if found else department
        rows.append(
            DepartmentFigures(
                department_id=department,
                department_name=names[department],
                counts=counters.get(department, {}),
                overdue=steps["urge"].get(department, 0),
                escalations=steps["supervise"].get(department, 0),
                reported=steps["report"].get(department, 0),
            )
        )
    return rows


def _ticket_steps(deps: TicketDeps, step: str, month: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    start_key = None
    while True:
        page = deps.deadlines.escalations.steps_in_month(step, month, _STEP_PAGE, start_key)
        for record in page.items:
            if record.get("subject_type") == SUBJECT_TYPE and record.get("department_id"):
                department = record["department_id"]
                counts[department] = counts.get(department, 0) + 1
        start_key = page.last_key
        if start_key is None:
            return counts
