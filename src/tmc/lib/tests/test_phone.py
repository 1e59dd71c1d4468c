from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from tmc.lib.phone import InvalidNumber, mask_number, normalise_mobile


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("07400 123456", "GB", "+447400123456"),
        ("+44 7400 123456", "GB", "+447400123456"),
        ("0044 7400 123456", "GB", "+447400123456"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33612345678", "GB", "+33612345678"),
    ],
)
def test_numbers_normalise_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalise_mobile(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "Enter a mobile number"),
        ("hello", "not a phone number"),
        ("0740012", "not a valid phone number"),
        ("020 7946 0000", "not a mobile number"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        normalise_mobile(raw, "GB")


def test_masking_hides_the_middle_digits() -> None:
    masked = mask_number("+447400123456")

    assert masked.startswith("+44 7400 1")
    assert masked.endswith("56")
    assert "23" not in masked.replace("+44", "")
    assert masked == "+44 7400 1\u2022\u2022\u202256"


@settings(max_examples=400)
@given(
    st.from_regex(r"\A(\+44|0044|0|\+33|\+1)?[1-9][0-9]{5,10}\Z"),
    st.sampled_from(["GB", "FR", "US"]),
)
def test_one_look_at_the_type_agrees_with_the_full_validity_check(
    raw: str, region: str
) -> None:
    """normalise_mobile skips is_valid_number; the answer must not change."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return
    expected = phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(
        parsed
    ) in {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}

    if expected:
        assert normalise_mobile(raw, region).startswith("+")
    else:
        with pytest.raises(InvalidNumber):
            normalise_mobile(raw, region)


def test_the_reason_never_repeats_the_number() -> None:
    with pytest.raises(InvalidNumber) as refused:
        normalise_mobile("020 7946 0000", "GB")

    assert "7946" in str(refused.value)
    assert "7946" not in refused.value.reason
