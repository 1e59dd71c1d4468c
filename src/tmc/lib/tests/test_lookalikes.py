"""Look-alike characters: replaced by their GSM-7 twins, and only when it pays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tmc.lib.lookalikes import LOOKALIKES, lookalikes_offer, lookalikes_replace
from tmc.lib.segments import Encoding, count_segments, gsm7_septets
from tmc.lib.tests.test_segments import GSM_BASIC, GSM_EXTENSION

RIGHT_QUOTE = "\u2019"
LEFT_DOUBLE, RIGHT_DOUBLE = "\u201c", "\u201d"
EN_DASH, ELLIPSIS, NO_BREAK_SPACE = "\u2013", "\u2026", "\u00a0"


@pytest.mark.parametrize("character", sorted(LOOKALIKES))
def test_every_entry_forces_ucs2_and_its_twin_is_gsm7(character: str) -> None:
    twin = LOOKALIKES[character].replacement

    assert gsm7_septets(character) is None
    assert all(gsm7_septets(c) == 1 for c in twin)


def test_quotes_dashes_and_spaces_are_replaced_and_listed_where_they_were() -> None:
    text = f"It{RIGHT_QUOTE}s 9{EN_DASH}5,{NO_BREAK_SPACE}{LEFT_DOUBLE}ok{RIGHT_DOUBLE}"

    replaced = lookalikes_replace(text)

    assert replaced.text == 'It\'s 9-5, "ok"'
    assert [(r.position, r.original, r.replacement) for r in replaced.replacements] == [
        (2, RIGHT_QUOTE, "'"),
        (6, EN_DASH, "-"),
        (9, NO_BREAK_SPACE, " "),
        (10, LEFT_DOUBLE, '"'),
        (13, RIGHT_DOUBLE, '"'),
    ]


def test_each_kind_of_change_is_shown_once_and_invisible_ones_by_name() -> None:
    text = f"a{RIGHT_QUOTE}b{RIGHT_QUOTE}c{NO_BREAK_SPACE}d{ELLIPSIS}\u200b"

    shown = lookalikes_replace(text).changes_shown

    assert shown == (
        f"{RIGHT_QUOTE} → '",
        "no-break space → space",
        f"{ELLIPSIS} → ...",
        "zero-width space removed",
    )


def test_an_ellipsis_becomes_three_dots() -> None:
    assert lookalikes_replace(f"Wait{ELLIPSIS}").text == "Wait..."


def test_accented_letters_are_kept() -> None:
    replaced = lookalikes_replace("Ça coûte 5€")

    assert replaced.text == "Ça coûte 5€"
    assert replaced.replacements == ()


def test_the_offer_compares_parts_before_and_after() -> None:
    text = "a" * 100 + RIGHT_QUOTE

    offer = lookalikes_offer(text)

    assert offer is not None
    assert (offer.before.encoding, offer.before.parts) == (Encoding.UCS2, 2)
    assert (offer.after.encoding, offer.after.parts) == (Encoding.GSM7, 1)
    assert offer.text == "a" * 100 + "'"
    assert offer.count == 1


@pytest.mark.parametrize(
    "text",
    [
        "Plain GSM text, 10€",
        "",
        # The emoji keeps it UCS-2 whatever the quotes become.
        f"See you {LEFT_DOUBLE}soon{RIGHT_DOUBLE} 😀",
        "Привет",
    ],
)
def test_no_offer_when_replacing_would_not_make_it_gsm7(text: str) -> None:
    assert lookalikes_offer(text) is None


lookalike_text = st.text(
    alphabet=st.sampled_from(sorted(LOOKALIKES) + list(GSM_BASIC + GSM_EXTENSION)),
    max_size=400,
)


@given(lookalike_text)
def test_gsm_text_with_lookalikes_always_becomes_gsm7(text: str) -> None:
    replaced = lookalikes_replace(text)

    assert count_segments(replaced.text).encoding == Encoding.GSM7
    assert all(text[r.position] == r.original for r in replaced.replacements)
    assert len(replaced.replacements) == sum(c in LOOKALIKES for c in text)


@given(st.text(max_size=300))
def test_replacing_twice_changes_nothing_more(text: str) -> None:
    once = lookalikes_replace(text)
    twice = lookalikes_replace(once.text)

    assert twice.text == once.text
    assert twice.replacements == ()


@given(st.text(max_size=300).filter(lambda t: not set(t) & LOOKALIKES.keys()))
def test_text_without_lookalikes_is_returned_unchanged(text: str) -> None:
    assert lookalikes_replace(text).text == text
