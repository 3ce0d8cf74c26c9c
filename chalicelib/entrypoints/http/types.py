"""Field types shared by every request model: text, dates and numbers with their bounds.

A request model says `name: Text(100)`, `founded_on: Day`, `capital: Money`, `employees: Count`
instead of a bare `str`, `int` or `float`, so that what can be stored is decided here once:
real calendar dates only, finite numbers in a sane range, no control characters, bounded length.
The routing layer also refuses control characters anywhere in a body; these types say it in the
OpenAPI document and refuse line breaks in one-line fields.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

# C0 controls and DEL, C1 controls, and lone surrogates (JSON "\ud800" decodes to one; it cannot
# be encoded to UTF-8, so storing it would fail later, far from the request).
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
_LINE_BREAKS = "\t\n\r"
CONTROL_CHARACTERS = re.compile(f"[{_CONTROL}]")
_ONE_LINE_FORBIDDEN = re.compile(f"[{_CONTROL}{_LINE_BREAKS}\u2028\u2029]")
# The same rules as JSON Schema patterns (ECMA-262), so generated clients and fuzzers know them.
_MULTILINE_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
_ONE_LINE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2199, 12, 31)
MAX_MONEY = 1e13  # yuan: beyond any subsidy, capital or revenue a district sees
MAX_COUNT = 10**7  # people, items: beyond any employer or queue in the district


def _one_line(value: str) -> str:
    if _ONE_LINE_FORBIDDEN.search(value):
        raise ValueError("不能含有换行或控制字符")
    return value


def _multiline(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("不能含有控制字符")
    return value


def Text(max_length: int, *, min_length: int = 0, multiline: bool = False) -> Any:
    """A string of at most `max_length` characters without control characters (line breaks
    only where `multiline`)."""
    pattern = _MULTILINE_PATTERN if multiline else _ONE_LINE_PATTERN
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": pattern}
    if min_length:
        schema["minLength"] = min_length
    return Annotated[
        str,
        Field(min_length=min_length, max_length=max_length),
        AfterValidator(_multiline if multiline else _one_line),
        WithJsonSchema(schema),
    ]


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _day(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("日期格式应为 YYYY-MM-DD")
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str) and _DAY.match(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise ValueError("日期不存在，请检查月份和日") from None
    else:
        # Timestamps and datetimes would be accepted by pydantic's lax date: not a day.
        raise ValueError("日期格式应为 YYYY-MM-DD")
    if not EARLIEST_DAY <= parsed <= LATEST_DAY:
        raise ValueError(f"日期应在 {EARLIEST_DAY.year} 年至 {LATEST_DAY.year} 年之间")
    return parsed


Day = Annotated[
    date,
    BeforeValidator(_day),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            # formatMinimum/-Maximum are not OpenAPI 3.1 keywords: generators would reject it.
            "description": f"YYYY-MM-DD，{EARLIEST_DAY.isoformat()} 至 {LATEST_DAY.isoformat()}",
        }
    ),
]
"""A real calendar day given as YYYY-MM-DD, between 1900 and 2199 ("2026-02-30" is refused)."""


def _moment(value: Any) -> Any:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _MOMENT.match(value):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("时间不存在，请检查日期和时刻") from None
    else:
        raise ValueError("时间格式应为带时区的 ISO 8601，如 2026-12-01T09:00:00+08:00")
    if parsed.tzinfo is None:
        raise ValueError("时间应带时区，如 +08:00")
    if not EARLIEST_DAY <= parsed.date() <= LATEST_DAY:
        raise ValueError(f"时间应在 {EARLIEST_DAY.year} 年至 {LATEST_DAY.year} 年之间")
    return parsed


_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})$")

Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An instant with its time zone (ISO 8601), between 1900 and 2199."""

DayOrNever = Day | Literal["never"]
"""A day, or "never" where a record says something has never happened."""


Money = Annotated[float, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)]
"""An amount in yuan: finite, 0 to 10^13."""

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
"""A number of people or things: 0 to 10^7."""

Finite = Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]
"""Any finite number of sane size (free-form field values)."""

Whole = Annotated[int, Field(ge=-(10**15), le=10**15)]
"""Any integer of sane size (free-form field values; DynamoDB keeps 38 digits at most)."""

Minutes = Annotated[int, Field(ge=0, le=366 * 24 * 60)]
"""A duration in minutes, up to a year."""

Days = Annotated[int, Field(ge=0, le=3660)]
"""A duration in days, up to ten years."""

Tag = Text(30, min_length=1)
"""A short label (tags, conditions, bundles)."""


def _subject_id(value: str) -> str:
    """An ID number (checked) or a credit code (shape only: early codes fail their check)."""
    from chalicelib.bootstrap import container
    from chalicelib.domain.personal_data import (
        is_credit_code_shape,
        is_future_birth_date,
        is_valid_id_number,
    )

    value = value.strip().upper()
    if re.fullmatch(r"\d{6}(18|19|20)\d{2}(0[1-9]|1[0-2])\d{5}[\dX]", value):
        if is_future_birth_date(value, container().clock.now().date()):
            raise ValueError("身份证号码中的出生日期晚于今天")
        if not is_valid_id_number(value):
            raise ValueError("身份证号码校验位不正确")
        return value
    if not is_credit_code_shape(value):
        raise ValueError("证件号码应为有效的18位身份证号码或统一社会信用代码")
    return value


SubjectId = Annotated[str, AfterValidator(_subject_id)]
"""A person's ID number with a valid check digit and a past birth date, or a credit code: a
wrong one is a 400 with the reason, never a search that finds nothing."""
