"""Personal data rules: GB 11643 ID numbers, GB 32100 credit codes, and display masking.

Masking pattern (local practice, configurable by callers): ID number keeps the first 6 and the
last 4 characters; mobile keeps 3 + **** + 4.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_CREDIT_SHAPE = re.compile(rf"^[{CREDIT_CODE_ALPHABET}]{{18}}$")

_MOBILE_SHAPE = re.compile(r"^1[3-9]\d{9}$")


def id_number_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def is_valid_id_number(value: str) -> bool:
    value = value.strip().upper()
    if not _ID_SHAPE.match(value):
        return False
    return id_number_check_char(value[:17]) == value[17]


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


def is_valid_mobile(value: str) -> bool:
    return bool(_MOBILE_SHAPE.match(value.strip()))


def mask_id_number(value: str) -> str:
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_mobile(value: str) -> str:
    if len(value) != 11:
        return "*" * len(value)
    return value[:3] + "****" + value[-4:]


# Free-text masking for log lines and messages: any 18-character ID-shaped run and any
# mainland mobile number standing alone among digits.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    text = _ID_IN_TEXT.sub(r"\1********\2", text)
    return _MOBILE_IN_TEXT.sub(r"\1****\2", text)


def _normalise(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _check_id_number(value: str) -> str:
    if not _ID_SHAPE.match(value):
        raise ValueError("身份证号码应为18位，前17位为数字，末位为数字或X")
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
MobileNumber = Annotated[
    str,
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    AfterValidator(_check_mobile),
]
