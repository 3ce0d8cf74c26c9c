"""The monthly operations report of the whole 一网通办 operation: every target of the work plan
beside the month's figure, gathered from the capabilities' own monthly figures (application
KPI facts, the month's reviews, ticket counters) and the facts recorded for this report (12345
transfers, help requests, window services). Built once a month by a schedule and kept; a month
not yet built is computed as of now."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from chalicelib.domain import operations as domain
from chalicelib.domain.applications import kpis
from chalicelib.domain.bookings.centres import Complexity
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.calendar import CHINA_TZ, WorkingCalendar
from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.hotline import answer_rates
from chalicelib.domain.identity import SYSTEM, Principal
from chalicelib.domain.notifications import RecipientKind
from chalicelib.service_layer.audit import AuditLog, record_change
from chalicelib.service_layer.authorization import Action, require
from chalicelib.service_layer.notify import Notifier, notify
from chalicelib.service_layer.ports import Directory, TimeSource
from chalicelib.service_layer.ports.hotline import HotlineStore
from chalicelib.service_layer.ports.operations import (
    ApplicationFacts,
    MonthReviews,
    OperationsStore,
    TicketCounters,
)

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class Rules(Protocol):
    def get_rules(self, fresh: bool = False) -> tuple[BookingRules, int | None]: ...


class Calendars(Protocol):
    def calendar(self) -> WorkingCalendar: ...


@dataclass
class OperationsDeps:
    store: OperationsStore
    hotline: HotlineStore
    applications: ApplicationFacts
    reviews: MonthReviews
    tickets: TicketCounters
    rules: Rules  # the booking rules: wait and handling targets
    directory: Directory
    calendars: Calendars
    notifier: Notifier
    audit_log: AuditLog
    clock: TimeSource

    @classmethod
    def from_container(cls, c: Any) -> OperationsDeps:
        return cls(
            store=c.operations_store,
            hotline=c.hotline_store,
            applications=c.application_store,
            reviews=c.review_store,
            tickets=c.ticket_store,
            rules=c.booking_store,
            directory=c.directory,
            calendars=c.calendar_store,
            notifier=c.notifier,
            audit_log=c.audit_log,
            clock=c.clock,
        )


def check_month(month: str) -> str:
    if not _MONTH.match(month or ""):
        raise InvalidInput("月份格式应为 YYYY-MM", code="invalid_month")
    return month


def compute(deps: OperationsDeps, month: str) -> list[domain.Figure]:
    """The month's figures: a few Queries of the month's partitions, never a table read."""
    reviews = [r for r in deps.reviews.reviews_in_month(month) if not r.excluded]
    help_facts = deps.store.facts(month, domain.HELP_FACT)
    total, rows = answer_rates(deps.hotline.transfers_in_month(month))
    rules = deps.rules.get_rules()[0]
    ids = {str(f.get("team")) for f in help_facts if f.get("team")} | {
        r.department_id for r in rows
    }
    names = {}
    for key in sorted(ids):
        found = deps.directory.get_department(key)
        names[key] = found.name if found is not None else key
    inputs = domain.MonthInputs(
        month=month,
        application_kpis=kpis(deps.applications.facts(month)),
        reviews_good=sum(not r.is_bad for r in reviews),
        reviews_counted=len(reviews),
        ticket_counters=deps.tickets.month_counters(month),
        help_facts=help_facts,
        handling_facts=deps.store.facts(month, domain.HANDLING_FACT),
        answer_total=total,
        answer_rows=rows,
        wait_targets={c.value: rules.wait_target_minutes(c) for c in Complexity},
        handling_target_minutes=rules.handling_target_minutes,
        names=names,
    )
    return domain.build_figures(inputs)


def read_report(deps: OperationsDeps, principal: Principal, month: str) -> dict[str, Any]:
    """The stored report of a closed month; a month not yet built is computed as of now."""
    require(principal, Action.READ_OPERATIONS_REPORT)
    check_month(month)
    stored = deps.store.get_report(month)
    if stored is not None:
        return {**stored, "final": True}
    report = domain.report(month, compute(deps, month))
    return {**report, "final": False, "built_at": deps.clock.now().isoformat()}


def previous_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def build_monthly_report_if_due(deps: OperationsDeps) -> tuple[str, bool]:
    """On (or after) the first working day of a month, build last month's report once, keep
    it and tell the district office. Later runs find it stored and do nothing."""
    now = deps.clock.now().astimezone(CHINA_TZ)
    month = previous_month(now.strftime("%Y-%m"))
    first: date = deps.calendars.calendar().next_working_day(now.date().replace(day=1))
    if now.date() < first or deps.store.get_report(month) is not None:
        return month, False
    figures = compute(deps, month)
    report = {**domain.report(month, figures), "built_at": now.isoformat()}
    if not deps.store.put_report_once(month, report):
        return month, False
    missed = [f.name for f in figures if f.met is False]
    notify(
        deps.notifier,
        f"operations-report:{month}:{SUPERVISOR_DEPARTMENT_ID}",
        RecipientKind.DEPARTMENT,
        SUPERVISOR_DEPARTMENT_ID,
        "operations.monthly_report",
        f"{month} 一网通办运行月报",
        f"{month} 运行月报已生成，共{len(figures)}项指标"
        + (f"；未达标：{'、'.join(missed)}。" if missed else "，均已达标或本月无数据。"),
        {"month": month, "missed": [f.key for f in figures if f.met is False]},
    )
    record_change(
        deps.audit_log,
        SYSTEM,
        "operations.monthly_report_built",
        "operations_report",
        month,
        None,
        {"figures": len(figures), "missed": len(missed)},
    )
    return month, True


CSV_COLUMNS = (
    ("key", "指标编号"),
    ("name", "指标"),
    ("value", "本月数值"),
    ("target", "目标值"),
    ("unit", "单位"),
    ("met", "是否达标"),
)
_UNITS = {domain.RATIO: "比率", domain.SECONDS: "秒", domain.MINUTES: "分钟"}


def report_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([label for _, label in CSV_COLUMNS])
    for figure in report["figures"]:
        row = []
        for name, _ in CSV_COLUMNS:
            value = figure.get(name)
            if name == "unit":
                value = _UNITS.get(value, value)
            elif name == "met":
                value = "" if value is None else ("是" if value else "否")
            elif value is None:
                value = ""
            row.append(str(value))
        writer.writerow(row)
    return "\ufeff" + buffer.getvalue()  # BOM: spreadsheet programs read it as UTF-8
