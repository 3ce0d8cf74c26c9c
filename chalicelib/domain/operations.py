"""The monthly operations report: every target of the work plan beside the month's figure.

Pure: the service layer gathers the month's inputs (the capabilities' own monthly figures and
the facts recorded for this report) and this module turns them into figures. A figure is met
when its value reaches the target: at least the target for a rate, at most for a duration;
a figure with nothing to measure this month has no value and is neither met nor missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.applications import TARGETS as APPLICATION_TARGETS
from chalicelib.domain.bookings.live_help import HELP_RESOLUTION_TARGET
from chalicelib.domain.hotline import ANSWER_RATE_TARGET, AnswerRate

RATIO, SECONDS, MINUTES = "ratio", "seconds", "minutes"
GOOD_REVIEW_TARGET = 0.90
# 1/5/15: every ticket contacted within 1 working day and resolved within 5 (simple) or 15
# (complex); the plan admits no share of late ones.
TICKET_ON_TIME_TARGET = 1.0
HELP_PICKUP_TARGET_SECONDS = 60

# Fact kinds the capabilities record for the report (table "operations").
HELP_FACT = "help"
HANDLING_FACT = "handling"


@dataclass(frozen=True)
class Figure:
    key: str
    name: str
    value: float | None
    target: float
    unit: str  # ratio | seconds | minutes

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.unit == RATIO:
            return self.value >= self.target
        return self.value <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "target": self.target,
            "unit": self.unit,
            "met": self.met,
        }


@dataclass(frozen=True)
class MonthInputs:
    month: str
    application_kpis: Mapping[str, Any]  # domain.applications.kpis of the month's facts
    reviews_good: int
    reviews_counted: int
    ticket_counters: Mapping[str, Mapping[str, int]]  # department → counter → amount
    help_facts: Sequence[Mapping[str, Any]]
    handling_facts: Sequence[Mapping[str, Any]]
    answer_total: AnswerRate
    answer_rows: list[AnswerRate]
    wait_targets: Mapping[str, int]  # complexity → minutes
    handling_target_minutes: int
    names: Mapping[str, str]  # department / team id → name


def _rate(good: int, total: int) -> float | None:
    return round(good / total, 4) if total else None


def _mean(values: list[float], digits: int = 1) -> float | None:
    return round(sum(values) / len(values), digits) if values else None


def _counter_sum(counters: Mapping[str, Mapping[str, int]], name: str) -> int:
    return sum(int(c.get(name, 0)) for c in counters.values())


def help_resolution(facts: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """(resolved, judged) per team: a request judged is one that ended resolved or not
    resolved; one the person abandoned is not the team's to resolve."""
    counts: dict[str, tuple[int, int]] = {}
    for fact in facts:
        outcome = fact.get("outcome")
        if outcome not in ("resolved", "not_resolved"):
            continue
        team = str(fact.get("team") or "")
        resolved, judged = counts.get(team, (0, 0))
        counts[team] = (resolved + (outcome == "resolved"), judged + 1)
    return counts


def build_figures(inputs: MonthInputs) -> list[Figure]:
    kpis = inputs.application_kpis
    labels = {
        "prefill_rate": "申请表单预填率",
        "prereview_automation_rate": "智能预审率",
        "first_submission_success_rate": "一次申报成功率",
        "online_completion_rate": "网上办结率",
    }
    figures = [
        Figure(key, name, kpis.get(key), APPLICATION_TARGETS[key], RATIO)
        for key, name in labels.items()
    ]
    figures.append(
        Figure(
            "good_review_rate",
            "好差评好评率",
            _rate(inputs.reviews_good, inputs.reviews_counted),
            GOOD_REVIEW_TARGET,
            RATIO,
        )
    )
    counters = inputs.ticket_counters
    figures += [
        Figure(
            "ticket_contact_on_time_rate",
            "办不成事1个工作日内联系率",
            _rate(
                _counter_sum(counters, "contact_on_time"), _counter_sum(counters, "contact_judged")
            ),
            TICKET_ON_TIME_TARGET,
            RATIO,
        ),
        Figure(
            "ticket_resolve_on_time_rate",
            "办不成事5/15个工作日内办结率",
            _rate(
                _counter_sum(counters, "resolve_on_time"), _counter_sum(counters, "resolve_judged")
            ),
            TICKET_ON_TIME_TARGET,
            RATIO,
        ),
    ]
    picked = [
        float(f["pickup_seconds"]) for f in inputs.help_facts if f.get("pickup_seconds") is not None
    ]
    figures.append(
        Figure(
            "help_pickup_average_seconds",
            "人工帮办平均接入时长",
            _mean(picked),
            HELP_PICKUP_TARGET_SECONDS,
            SECONDS,
        )
    )
    teams = help_resolution(inputs.help_facts)
    figures.append(
        Figure(
            "help_resolution_rate",
            "人工帮办解决率",
            _rate(sum(r for r, _ in teams.values()), sum(j for _, j in teams.values())),
            HELP_RESOLUTION_TARGET,
            RATIO,
        )
    )
    figures += [
        Figure(
            f"help_resolution_rate:{team}",
            f"人工帮办解决率（{inputs.names.get(team, team)}）",
            _rate(resolved, judged),
            HELP_RESOLUTION_TARGET,
            RATIO,
        )
        for team, (resolved, judged) in sorted(teams.items())
    ]
    figures.append(
        Figure(
            "hotline_answer_rate",
            "12345转接专席接通率",
            inputs.answer_total.rate,
            ANSWER_RATE_TARGET,
            RATIO,
        )
    )
    figures += [
        Figure(
            f"hotline_answer_rate:{row.department_id}",
            f"12345转接专席接通率（{inputs.names.get(row.department_id, row.department_id)}）",
            row.rate,
            ANSWER_RATE_TARGET,
            RATIO,
        )
        for row in inputs.answer_rows
    ]
    for complexity, label in (("simple", "简单事项"), ("complex", "复杂事项")):
        waits = [
            float(f["wait_seconds"]) / 60
            for f in inputs.handling_facts
            if f.get("complexity") == complexity and f.get("wait_seconds") is not None
        ]
        figures.append(
            Figure(
                f"wait_average_minutes:{complexity}",
                f"窗口平均等候时长（{label}）",
                _mean(waits),
                inputs.wait_targets[complexity],
                MINUTES,
            )
        )
    handled = [
        (float(f["handling_seconds"]) / 60, int(f["target_minutes"]))
        for f in inputs.handling_facts
        if f.get("handling_seconds") is not None and f.get("target_minutes") is not None
    ]
    figures += [
        Figure(
            "handling_average_minutes",
            "窗口平均办理时长（叫号至办结）",
            _mean([minutes for minutes, _ in handled]),
            inputs.handling_target_minutes,
            MINUTES,
        ),
        Figure(
            "handling_on_target_rate",
            "窗口办理时长达标率（按事项目标）",
            _rate(sum(m <= t for m, t in handled), len(handled)),
            1.0,
            RATIO,
        ),
    ]
    return figures


def report(month: str, figures: list[Figure]) -> dict[str, Any]:
    return {"month": month, "figures": [f.to_dict() for f in figures]}
