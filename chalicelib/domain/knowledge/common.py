"""What the knowledge base's parts share: seed targets, the default department and the
JSON mapping of instants and days."""

from __future__ import annotations

from datetime import date, datetime

from chalicelib.domain.calendar import CHINA_TZ

# Questions nobody's topic matches go to the district government-service office.
DEFAULT_DEPARTMENT_ID = "dept-zwb"
QUESTION_ANSWER_DAYS = 5  # seed target: an unanswered question is answered within 5 working days
READINESS_LEAD_DAYS = 1  # seed target: answers ready 1 working day before a policy takes effect


def iso_or_none(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


def moment_or_none(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(CHINA_TZ) if value else None


def day_or_none(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
