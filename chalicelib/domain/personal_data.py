"""Personal data rules: GB 11643 ID numbers, GB 32100 credit codes, mobiles, and masking.

Masking pattern (local practice, configurable by callers): ID number keeps the first 6 and the
last 4 characters; mobile keeps 3 + **** + 4.

`mask_text` masks free text (log lines are JSON text, so JSON escapes count as separators):
- an 18-character run (17 digits + digit or X) not touching other digits is masked when its
  GB 11643 check digit is right, wherever it stands (strong evidence: even glued to letters);
  with a wrong check digit it is still masked when it stands alone and carries a real birth
  date (a mistyped ID number is personal data too);
- a mainland mobile (11 digits, 1[3-9]..., optionally +86/0086/86 and "-" or " " separators)
  is masked when it stands alone: not touching digits or Latin letters, so digit runs inside
  hex identifiers are left alone;
- longer or shorter digit runs (13-digit epoch milliseconds, 19-digit nanoseconds, amounts)
  are never touched.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_CREDIT_SHAPE = re.compile(rf"^[{CREDIT_CODE_ALPHABET}]{{18}}$")

_MOBILE_SHAPE = re.compile(r"^1[3-9][0-9]{9}$")
_MOBILE_PREFIX = re.compile(r"^(?:\+86|0086)")
_MOBILE_SEPARATORS = re.compile(r"[\s\-]")


def id_number_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def _birth_date_ok(value: str) -> bool:
    """Characters 7-14 of an ID number are the birth date (YYYYMMDD)."""
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return 1800 <= born.year <= 2099


def id_birth_date(value: str) -> date | None:
    """The birth date an ID number carries, or None if it carries no real date."""
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def is_valid_id_number(value: str, *, as_of: date | None = None) -> bool:
    """Shape, a real birth date (not after `as_of`, when given) and the check digit."""
    value = value.strip().upper()
    if not (_ID_SHAPE.match(value) and _birth_date_ok(value)):
        return False
    if as_of is not None and id_birth_date(value) > as_of:  # type: ignore[operator]
        return False
    return id_number_check_char(value[:17]) == value[17]


def is_future_birth_date(value: str, as_of: date) -> bool:
    born = id_birth_date(value.strip().upper())
    return born is not None and born > as_of


def credit_code_check_char(first17: str) -> str:
    total = sum(
        CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True)
    )
    check = 31 - total % 31
    return CREDIT_CODE_ALPHABET[0 if check == 31 else check]


def is_credit_code_shape(value: str) -> bool:
    return bool(_CREDIT_SHAPE.match(value.strip().upper()))


def credit_code_check_digit_ok(value: str) -> bool:
    """Some early codes fail the check digit: callers warn, they do not reject."""
    value = value.strip().upper()
    return is_credit_code_shape(value) and credit_code_check_char(value[:17]) == value[17]


def normalise_mobile(value: str) -> str:
    """'+86 138-1234-5678' -> '13812345678'; anything else is returned stripped of separators."""
    return _MOBILE_PREFIX.sub("", _MOBILE_SEPARATORS.sub("", value))


def is_valid_mobile(value: str) -> bool:
    return bool(_MOBILE_SHAPE.match(normalise_mobile(value)))


def mask_id_number(value: str) -> str:
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_mobile(value: str) -> str:
    if len(value) != 11:
        return "*" * len(value)
    return value[:3] + "****" + value[-4:]


# Candidates only; the decision (check digit, standing alone) is taken in the replacers.
# A JSON escape such as \u0001 ends in a digit but does not continue the run.
# \d also matches full-width digits, which people type and logs may carry.
_NOT_AFTER_DIGIT = r"(?:(?<!\d)|(?<=\\u[0-9a-fA-F]{4}))"
_ID_IN_TEXT = re.compile(_NOT_AFTER_DIGIT + r"\d{17}[\dXxＸｘ](?!\d)")
_MOBILE_IN_TEXT = re.compile(
    _NOT_AFTER_DIGIT + r"(?P<prefix>(?:(?:\+|00)?86[ -]?)?)"
    r"(?P<head>[1１][3-9３-９]\d)(?P<sep>[ -]?)\d{4}(?P=sep)(?P<tail>\d{4})(?!\d)"
)
_JSON_ESCAPE_LETTER = re.compile(r"\\(?:[nrtbf]|u[0-9a-fA-F]{4})$")


def _is_ascii_letter(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _stands_alone(text: str, start: int, end: int) -> bool:
    """No Latin letter or digit touches the run; a JSON escape such as \\n is a separator."""
    before = text[start - 1] if start > 0 else ""
    if (
        before
        and (_is_ascii_letter(before) or before.isdigit())
        and not _JSON_ESCAPE_LETTER.search(text[max(0, start - 6) : start])
    ):
        return False
    return not (end < len(text) and (_is_ascii_letter(text[end]) or text[end].isdigit()))


def _mask_id_match(match: re.Match[str]) -> str:
    value = match.group(0)
    upper = unicodedata.normalize("NFKC", value).upper()
    if id_number_check_char(upper[:17]) == upper[17] or (
        _birth_date_ok(upper) and _stands_alone(match.string, match.start(), match.end())
    ):
        return mask_id_number(value)
    return value


def _mask_mobile_match(match: re.Match[str]) -> str:
    if not _stands_alone(match.string, match.start(), match.end()):
        return match.group(0)
    sep = match.group("sep")
    return f"{match.group('prefix')}{match.group('head')}{sep}****{sep}{match.group('tail')}"


def mask_text(text: str) -> str:
    """Mask every ID number and mobile number in free text (log lines, messages)."""
    text = _ID_IN_TEXT.sub(_mask_id_match, text)
    return _MOBILE_IN_TEXT.sub(_mask_mobile_match, text)


def _typed(value: str) -> str:
    """What people type: full-width digits and letters (IME input) become ASCII."""
    return unicodedata.normalize("NFKC", value).strip()


def _normalise(value: object) -> object:
    return _typed(value).upper() if isinstance(value, str) else value


def _normalise_mobile(value: object) -> object:
    return normalise_mobile(_typed(value)) if isinstance(value, str) else value


def _check_id_number(value: str) -> str:
    if not _ID_SHAPE.match(value):
        raise ValueError("身份证号码应为18位，前17位为数字，末位为数字或X")
    if not _birth_date_ok(value):
        raise ValueError("身份证号码中的出生日期不正确")
    if id_number_check_char(value[:17]) != value[17]:
        raise ValueError("身份证号码校验位不正确")
    return value


def _check_credit_code(value: str) -> str:
    if not _CREDIT_SHAPE.match(value):
        raise ValueError("统一社会信用代码应为18位，由数字和大写字母（不含I、O、S、V、Z）组成")
    return value


def _check_mobile(value: str) -> str:
    if not _MOBILE_SHAPE.match(value):
        raise ValueError("手机号码应为11位中国大陆手机号")
    return value


IdNumber = Annotated[str, BeforeValidator(_normalise), AfterValidator(_check_id_number)]
# Check digit is not enforced here (GB 32100 early codes); see credit_code_check_digit_ok.
CreditCode = Annotated[str, BeforeValidator(_normalise), AfterValidator(_check_credit_code)]
MobileNumber = Annotated[str, BeforeValidator(_normalise_mobile), AfterValidator(_check_mobile)]
