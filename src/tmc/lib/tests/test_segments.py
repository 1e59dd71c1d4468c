"""Segment counting per 3GPP TS 23.038, checked against the GSM codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tmc.lib.segments import GSM_CODEC, Encoding, count_segments

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "lengths"),
    [
        ("", Encoding.GSM7, 0, []),
        ("Can you work Saturday? Reply YES or NO", Encoding.GSM7, 1, [38]),
        ("a" * 160, Encoding.GSM7, 1, [160]),
        ("a" * 161, Encoding.GSM7, 2, [153, 8]),
        ("a" * 306, Encoding.GSM7, 2, [153, 153]),
        ("a" * 307, Encoding.GSM7, 3, [153, 153, 1]),
        ("€" * 80, Encoding.GSM7, 1, [160]),
        ("€" * 81, Encoding.GSM7, 2, [152, 10]),
        ("Price: 10€ [offer]", Encoding.GSM7, 1, [21]),
        ("é" * 160, Encoding.GSM7, 1, [160]),
        ("ç", Encoding.UCS2, 1, [1]),
        ("✓" * 70, Encoding.UCS2, 1, [70]),
        ("✓" * 71, Encoding.UCS2, 2, [67, 4]),
        ("😀" * 35, Encoding.UCS2, 1, [70]),
        ("😀" * 36, Encoding.UCS2, 2, [66, 6]),
        ("“quoted”", Encoding.UCS2, 1, [8]),
    ],
)
def test_known_texts(
    text: str, encoding: Encoding, parts: int, lengths: list[int]
) -> None:
    count = count_segments(text)

    assert count.encoding == encoding
    assert count.parts == parts
    assert list(count.part_units) == lengths


def test_escape_pair_is_never_split_across_parts() -> None:
    # 152 plain septets leave one septet in the first part: the euro sign,
    # two septets, must move whole to the second part.
    text = "a" * 152 + "€" + "b" * 10

    count = count_segments(text)

    assert count.part_units == (152, 12)
    assert count.part_texts[1].startswith("€")


def test_surrogate_pair_is_never_split_across_parts() -> None:
    text = "✓" * 66 + "😀" + "✓" * 10

    count = count_segments(text)

    assert count.part_units == (66, 12)
    assert count.part_texts[1].startswith("😀")


def test_remaining_counts_down_within_a_part() -> None:
    assert count_segments("hello").remaining_in_part == 155
    assert count_segments("a" * 161).remaining_in_part == 145
    assert count_segments("").remaining_in_part == 160


gsm_text = st.text(alphabet=GSM_BASIC + GSM_EXTENSION, max_size=1200)
any_text = st.text(max_size=600)


@given(gsm_text)
def test_gsm_units_equal_encoded_septets(text: str) -> None:
    count = count_segments(text)

    assert count.encoding == Encoding.GSM7
    assert count.units == len(text.encode(GSM_CODEC))


@given(any_text)
def test_parts_rebuild_the_text_and_respect_limits(text: str) -> None:
    count = count_segments(text)

    assert "".join(count.part_texts) == text
    assert sum(count.part_units) == count.units
    limit = count.per_part_limit
    assert all(0 < units <= limit for units in count.part_units)
    if count.parts > 1:
        single = 160 if count.encoding == Encoding.GSM7 else 70
        assert count.units > single


@given(any_text)
def test_each_part_encodes_on_its_own(text: str) -> None:
    count = count_segments(text)

    for part, units in zip(count.part_texts, count.part_units, strict=True):
        if count.encoding == Encoding.GSM7:
            assert len(part.encode(GSM_CODEC)) == units
        else:
            assert len(part.encode("utf-16-be")) == 2 * units
