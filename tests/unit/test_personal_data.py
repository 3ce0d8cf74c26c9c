"""GB 11643 ID numbers, GB 32100 credit codes, mobiles, masking, and the pydantic field types."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from chalicelib.domain.personal_data import (
    CREDIT_CODE_ALPHABET,
    CreditCode,
    IdNumber,
    MobileNumber,
    credit_code_check_char,
    credit_code_check_digit_ok,
    id_number_check_char,
    is_credit_code_shape,
    is_valid_id_number,
    is_valid_mobile,
    mask_id_number,
    mask_mobile,
    mask_text,
)

# Examples published with GB 11643 and in the seed data; one ends in X.
VALID_IDS = ["11010519491231002X", "440524188001010014", "310118198503121233", "310118194801150026"]
VALID_CREDIT_CODES = ["91350100M000100Y43", "91310118MA1JL0000N"]
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _with_wrong_check(value: str) -> str:
    right = value[17]
    wrong = next(c for c in "0123456789X" if c != right)
    return value[:17] + wrong


# --- GB 11643 ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_IDS)
def test_known_valid_id_numbers_pass(value):
    assert is_valid_id_number(value)


def test_check_digit_ten_is_written_x():
    assert id_number_check_char("11010519491231002") == "X"


def test_lowercase_x_is_accepted_by_the_check():
    assert is_valid_id_number("11010519491231002x")


@pytest.mark.parametrize("value", VALID_IDS)
def test_wrong_check_digit_is_rejected(value):
    assert not is_valid_id_number(_with_wrong_check(value))


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002",  # 17 characters
        "11010519491231002X1",  # 19 characters
        "1101051949123100X2",  # X not in last place
        "11010519491231002Y",  # letter other than X
        "11010519491231００2X",  # full-width digits
        "",
    ],
)
def test_wrong_length_or_characters_are_rejected(value):
    assert not is_valid_id_number(value)


def test_impossible_birth_date_is_rejected_even_with_a_right_check_digit():
    first17 = "31011819850230123"  # 30 February
    assert not is_valid_id_number(first17 + id_number_check_char(first17))


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_exactly_one_check_character_completes_any_first_17_digits(first17):
    completions = [c for c in "0123456789X" if is_valid_id_number(first17 + c)]
    assert len(completions) <= 1
    if completions:
        assert completions == [id_number_check_char(first17)]


# --- GB 32100 ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", VALID_CREDIT_CODES)
def test_valid_credit_codes_pass_the_check(value):
    assert is_credit_code_shape(value)
    assert credit_code_check_digit_ok(value)
    assert credit_code_check_char(value[:17]) == value[17]


def test_check_value_31_maps_to_zero():
    # Sum ≡ 0 (mod 31) gives 31 − 0 = 31, written "0": all zeros is the simplest such prefix.
    assert credit_code_check_char("0" * 17) == "0"


def test_credit_code_check_characters_come_from_the_alphabet():
    for first in CREDIT_CODE_ALPHABET:
        assert credit_code_check_char(first + "1310118MA1JL0000") in CREDIT_CODE_ALPHABET


class Firm(BaseModel):
    credit_code: CreditCode


def test_bad_credit_code_check_digit_is_accepted_by_the_type_but_flagged():
    value = "91350100M000100Y44"
    firm = Firm(credit_code=value)
    assert firm.credit_code == value
    assert not credit_code_check_digit_ok(value)


def test_credit_code_is_normalised_to_upper_case():
    assert Firm(credit_code=" 91310118ma1jl0000n ").credit_code == "91310118MA1JL0000N"


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_forbidden_credit_code_letters_are_rejected(letter):
    value = "91310118MA1JL000" + letter + "N"
    assert not is_credit_code_shape(value)
    assert not credit_code_check_digit_ok(value)
    with pytest.raises(ValidationError):
        Firm(credit_code=value)


@pytest.mark.parametrize(
    "value", ["91310118MA1JL0000", "91310118MA1JL0000NN", "9131-0118MA1JL000N"]
)
def test_credit_code_of_wrong_length_or_characters_is_rejected(value):
    with pytest.raises(ValidationError):
        Firm(credit_code=value)


# --- Mobiles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["13812345678", "19912345678", "+86 138 1234 5678", "138-1234-5678", "008613812345678"]
)
def test_mainland_mobiles_are_valid(value):
    assert is_valid_mobile(value)


@pytest.mark.parametrize(
    "value", ["12812345678", "1381234567", "138123456789", "23812345678", "1381234567a", ""]
)
def test_other_numbers_are_not_mobiles(value):
    assert not is_valid_mobile(value)


# --- Masking -----------------------------------------------------------------------------


def test_id_number_mask_keeps_first_6_and_last_4():
    assert mask_id_number("310118198503121233") == "310118********1233"
    assert mask_id_number("11010519491231002X") == "110105********002X"


def test_short_values_are_masked_entirely():
    assert mask_id_number("123456789") == "*********"
    assert mask_mobile("1381234") == "*******"


def test_mobile_mask_is_3_stars_4():
    assert mask_mobile("13812345678") == "138****5678"


def test_mask_text_masks_ids_and_mobiles_in_chinese_text():
    text = "申请人身份证号310118198503121233，联系电话13812345678。"
    assert mask_text(text) == "申请人身份证号310118********1233，联系电话138****5678。"


def test_mask_text_masks_ids_with_lowercase_x_and_ids_glued_to_letters():
    assert mask_text("id=11010519491231002x") == "id=110105********002x"
    # A right check digit is strong evidence: masked even when glued to letters.
    assert mask_text("ID310118198503121233ok") == "ID310118********1233ok"


def test_mask_text_masks_a_mistyped_id_standing_alone():
    mistyped = _with_wrong_check("310118198503121233")
    assert mask_text(f"证件 {mistyped}") == f"证件 {mistyped[:6]}********{mistyped[-4:]}"


def test_mask_text_masks_mobiles_with_country_code_and_separators():
    assert mask_text("tel: +86 138-1234-5678") == "tel: +86 138-****-5678"
    assert mask_text("8613812345678") == "86138****5678"
    assert mask_text("138 1234 5678") == "138 **** 5678"


def test_mask_text_masks_inside_json_escapes():
    # Log lines are JSON: "\n" and "\u0001" escapes separate the number from the text before.
    line = '{"message":"联系人\\n13812345678\\u0001310118198503121233"}'
    masked = mask_text(line)
    assert "13812345678" not in masked
    assert "310118198503121233" not in masked
    assert "138****5678" in masked
    assert "310118********1233" in masked


@pytest.mark.parametrize(
    "text",
    [
        "ts=1764129600000",  # epoch milliseconds: 13 digits, starts with 1 like a mobile
        "1764129600123 1764129600456",
        "epoch_ns=1764129600123456789",  # 19 digits
        "2026-11-26T10:00:00.123456+08:00",
        "request 9f1c2e3d4b5a69788796a5b4c3d2e1f0",  # 32-hex id
        "corr=a13812345678b0c1d2e3f4a5b6c7d8",  # hex id with a mobile-like digit run inside
        "trace=ab310118198503121234cd0123456789",  # hex with an 18-digit run, wrong check digit
        "amount=12345678901.50",  # does not start like a mobile
        "order 202611261000001234",  # 18 digits, no birth date, wrong check digit
    ],
)
def test_mask_text_leaves_non_personal_numbers_alone(text):
    assert mask_text(text) == text


def test_mask_text_masks_full_width_numbers():
    masked = mask_text("证件号３１０１１８１９８５０３１２１２３３，手机１３８１２３４５６７８")
    assert masked == "证件号３１０１１８********１２３３，手机１３８****５６７８"


def test_mask_text_is_idempotent():
    once = mask_text("310118198503121233 13812345678")
    assert mask_text(once) == once


@settings(max_examples=40, deadline=None)
@given(
    prefix=st.text(alphabet="，。 :=\"'/中文", max_size=5),
    suffix=st.text(alphabet="，。 :=\"'/中文", max_size=5),
    which=st.sampled_from([*VALID_IDS, "13812345678", "15900001111"]),
)
def test_mask_text_never_leaves_a_known_value_in_any_punctuation(prefix, suffix, which):
    assert which not in mask_text(prefix + which + suffix)


# --- Pydantic field types ----------------------------------------------------------------


class Person(BaseModel):
    id_number: IdNumber
    mobile: MobileNumber


def test_valid_person_is_normalised():
    person = Person(id_number=" 11010519491231002x ", mobile="+86 138-1234-5678")
    assert person.id_number == "11010519491231002X"
    assert person.mobile == "13812345678"


def test_full_width_input_is_normalised_by_the_types():
    person = Person(
        id_number="１１０１０５１９４９１２３１００２ｘ", mobile="１３８１２３４５６７８"
    )
    assert person.id_number == "11010519491231002X"
    assert person.mobile == "13812345678"


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"id_number": "11010519491231002", "mobile": "13812345678"}, "id_number", "18位"),
        ({"id_number": "110105194912310021", "mobile": "13812345678"}, "id_number", "校验位"),
        ({"id_number": "110105194913310023", "mobile": "13812345678"}, "id_number", "出生日期"),
        ({"id_number": "11010519491231002X", "mobile": "12812345678"}, "mobile", "手机号码"),
    ],
)
def test_invalid_values_give_chinese_field_errors(data, field, message):
    with pytest.raises(ValidationError) as info:
        Person(**data)
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    assert message in errors[0]["msg"]
    assert _CJK.search(errors[0]["msg"])


def test_api_field_errors_carry_the_chinese_message():
    from chalicelib.entrypoints.http.routing import field_errors

    with pytest.raises(ValidationError) as info:
        Person(id_number="110105194912310021", mobile="1")
    by_field = {item["field"]: item["message"] for item in field_errors(info.value)}
    assert by_field == {
        "id_number": "身份证号码校验位不正确",
        "mobile": "手机号码应为11位中国大陆手机号",
    }


def test_credit_code_type_error_is_chinese():
    with pytest.raises(ValidationError) as info:
        Firm(credit_code="91310118MA1JL000IN")
    assert "统一社会信用代码" in info.value.errors()[0]["msg"]
