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


@pytest.mark.parametrize(
    ("text", "encoding", "lengths"),
    [
        # 3GPP TS 23.040: a concatenation header takes 6 of a part's 140
        # octets, leaving 153 septets (GSM-7) or 67 UCS-2 characters.
        ("a" * 459, Encoding.GSM7, [153, 153, 153]),
        ("a" * 460, Encoding.GSM7, [153, 153, 153, 1]),
        ("✓" * 134, Encoding.UCS2, [67, 67]),
        ("✓" * 135, Encoding.UCS2, [67, 67, 1]),
        # An extension character at the 160th septet pushes a single part over.
        ("a" * 159 + "€", Encoding.GSM7, [153, 8]),
        ("a" * 158 + "€", Encoding.GSM7, [160]),
        # It fits whole when both of its septets do.
        ("a" * 151 + "€" + "b" * 10, Encoding.GSM7, [153, 10]),
        ("a" * 153 + "€" + "b" * 10, Encoding.GSM7, [153, 12]),
        # Basic characters that look special take one septet; form feed is
        # an extension character and takes two.
        ("@\n\rÇ", Encoding.GSM7, [4]),
        ("\f", Encoding.GSM7, [2]),
        # One character outside GSM-7 moves the whole text to UCS-2.
        ("a" * 159 + "\u2019", Encoding.UCS2, [67, 67, 26]),
        ("a" * 69 + "😀", Encoding.UCS2, [67, 4]),
    ],
    ids=[
        "gsm-459-fills-3",
        "gsm-460-needs-4",
        "ucs2-134-fills-2",
        "ucs2-135-needs-3",
        "gsm-extension-at-160",
        "gsm-extension-ends-at-160",
        "gsm-extension-ends-at-153",
        "gsm-extension-after-153",
        "gsm-basic-specials",
        "gsm-form-feed",
        "ucs2-one-quote",
        "ucs2-one-emoji",
    ],
)
def test_published_boundaries(
    text: str, encoding: Encoding, lengths: list[int]
) -> None:
    count = count_segments(text)

    assert (count.encoding, list(count.part_units)) == (encoding, lengths)


def test_a_literal_escape_character_is_not_sent_as_gsm7() -> None:
    """U+001B would merge with the next septet: "\x1be" must not read "€"."""
    count = count_segments("\x1be")

    assert count.encoding == Encoding.UCS2
    assert count.units == 2


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
# Texts long enough to need parts, dense in the characters that take two
# units, so that part boundaries often fall beside an escape or a surrogate.
wide_gsm_text = st.text(alphabet="ab" + GSM_EXTENSION, min_size=150, max_size=700)
wide_ucs2_text = st.text(alphabet="a✓\u2019😀🚀€", min_size=60, max_size=300)
hard_text = st.one_of(any_text, gsm_text, wide_gsm_text, wide_ucs2_text)


def _width(character: str, encoding: Encoding) -> int:
    if encoding == Encoding.GSM7:
        return len(character.encode(GSM_CODEC))
    return len(character.encode("utf-16-be")) // 2


@given(gsm_text)
def test_gsm_units_equal_encoded_septets(text: str) -> None:
    count = count_segments(text)

    assert count.encoding == Encoding.GSM7
    assert count.units == len(text.encode(GSM_CODEC))


@given(hard_text)
def test_parts_rebuild_the_text_and_respect_limits(text: str) -> None:
    count = count_segments(text)

    assert "".join(count.part_texts) == text
    assert sum(count.part_units) == count.units
    limit = count.per_part_limit
    assert all(0 < units <= limit for units in count.part_units)
    if count.parts > 1:
        single = 160 if count.encoding == Encoding.GSM7 else 70
        assert count.units > single


@given(hard_text)
def test_each_part_encodes_on_its_own(text: str) -> None:
    count = count_segments(text)

    for part, units in zip(count.part_texts, count.part_units, strict=True):
        if count.encoding == Encoding.GSM7:
            assert len(part.encode(GSM_CODEC)) == units
        else:
            assert len(part.encode("utf-16-be")) == 2 * units


@given(hard_text)
def test_no_escape_or_surrogate_pair_is_split(text: str) -> None:
    """Each part's units decode on their own, and together they are the text."""
    count = count_segments(text)

    if count.encoding == Encoding.GSM7:
        encoded = [part.encode(GSM_CODEC) for part in count.part_texts]
        # A part ending in a lone escape (0x1B) would have split a pair.
        assert not any(septets.endswith(b"\x1b") for septets in encoded)
        assert b"".join(encoded) == text.encode(GSM_CODEC)
    else:
        encoded = [part.encode("utf-16-be") for part in count.part_texts]
        assert [units.decode("utf-16-be") for units in encoded] == list(
            count.part_texts
        )
        assert b"".join(encoded) == text.encode("utf-16-be")


@given(hard_text)
def test_no_part_is_cut_short(text: str) -> None:
    """Every part but the last is full: its next character would not fit."""
    count = count_segments(text)

    for units, following in zip(
        count.part_units[:-1], count.part_texts[1:], strict=True
    ):
        width = _width(following[0], count.encoding)
        assert units + width > count.per_part_limit


@given(st.text(alphabet=GSM_BASIC, max_size=1200))
def test_basic_gsm_parts_follow_the_published_formula(text: str) -> None:
    count = count_segments(text)

    expected = 0 if not text else 1 if len(text) <= 160 else -(-len(text) // 153)
    assert count.parts == expected
