from __future__ import annotations

import pytest

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
