"""Replies read as answers: leniently, and never by guessing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tmc.boomerang.answers import (
    Answer,
    Kind,
    option_keys,
    parse_answer,
    parse_choice,
    parse_number,
    parse_yes_no,
)

CLEAR_YES = ["y", "Y", "Yes!", "yes", "YES please", "yeah", "Yep.", "ok", "Sure :)"]
CLEAR_NO = ["n", "No", "NO!!", "nope", "No thanks", "nah", "Can't, sorry", "cannot"]
UNCLEAR = ["", "   ", "maybe", "yes but not saturday", "no... actually yes", "1", "?"]


@pytest.mark.parametrize("text", CLEAR_YES)
def test_yes_in_its_many_forms(text: str) -> None:
    assert parse_yes_no(text) == Answer("yes", needs_attention=False)


@pytest.mark.parametrize("text", CLEAR_NO)
def test_no_in_its_many_forms(text: str) -> None:
    assert parse_yes_no(text) == Answer("no", needs_attention=False)


@pytest.mark.parametrize("text", UNCLEAR)
def test_an_unclear_yes_no_reply_needs_attention(text: str) -> None:
    assert parse_yes_no(text) == Answer.unclear()


@pytest.mark.parametrize(
    ("language", "text", "value"),
    [
        ("fr", "Oui !", "yes"),
        ("fr", "non merci", "no"),
        ("es", "Sí, claro", "yes"),
        ("es", "No", "no"),
        ("de", "Ja gerne", "yes"),
        ("de", "Nein, leider nicht", "no"),
    ],
)
def test_other_languages_have_their_own_words(
    language: str, text: str, value: str
) -> None:
    assert parse_yes_no(text, language) == Answer(value, needs_attention=False)


SHIFTS = ["Morning", "Afternoon", "Night shift"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("b)", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("b please", "B"),
        ("2", "B"),
        ("afternoon", "B"),
        ("The AFTERNOON one", "B"),
        ("night shift", "C"),
        ("a", "A"),
        ("3", "C"),
    ],
)
def test_a_choice_by_letter_number_or_words(text: str, value: str) -> None:
    assert parse_choice(text, SHIFTS) == Answer(value, needs_attention=False)


@pytest.mark.parametrize(
    "text", ["A or B", "4", "0", "evening", "morning or afternoon", "", "1 2"]
)
def test_an_unclear_choice_needs_attention(text: str) -> None:
    assert parse_choice(text, SHIFTS) == Answer.unclear()


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", "3"), ("about 12 people", "12"), ("2,5", "2.5"), ("-4", "-4")],
)
def test_a_number_is_read_from_the_reply(text: str, value: str) -> None:
    assert parse_number(text) == Answer(value, needs_attention=False)


@pytest.mark.parametrize("text", ["a few", "3 or 4", ""])
def test_no_number_or_two_numbers_need_attention(text: str) -> None:
    assert parse_number(text) == Answer.unclear()


def test_free_text_is_an_answer_unless_empty() -> None:
    assert parse_answer("Running late", kind=Kind.TEXT) == Answer("", False)
    assert parse_answer("  ", kind=Kind.TEXT) == Answer.unclear()


def test_options_are_lettered_in_order_and_capped() -> None:
    assert option_keys(["x", "y", "z"]) == ["A", "B", "C"]
    with pytest.raises(ValueError, match="At most 26"):
        option_keys(["x"] * 27)


@given(st.text(max_size=60))
def test_a_yes_no_reply_is_yes_no_or_flagged_never_anything_else(text: str) -> None:
    answer = parse_yes_no(text)

    assert (answer.value, answer.needs_attention) in {
        ("yes", False),
        ("no", False),
        ("", True),
    }


@given(st.text(max_size=60))
def test_a_choice_is_one_of_the_options_or_flagged(text: str) -> None:
    answer = parse_choice(text, SHIFTS)

    assert answer.needs_attention == (answer.value == "")
    assert answer.value in {"", "A", "B", "C"}
