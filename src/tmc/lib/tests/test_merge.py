"""Merge fields: filled per recipient, refused or defaulted when missing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tmc.lib.merge import (
    MergeSyntaxError,
    MissingMergeValues,
    merge_parse,
    template_check,
    template_render,
)

ADA = {"first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace"}


@pytest.mark.parametrize(
    ("body", "values", "expected"),
    [
        ("Hi {first_name}, see you at 9.", ADA, "Hi Ada, see you at 9."),
        ("{name}", ADA, "Ada Lovelace"),
        ("{first_name} {last_name}", ADA, "Ada Lovelace"),
        ("{first_name}{first_name}", ADA, "AdaAda"),
        ("Shift: {shift_day}", {"shift_day": "Sat"}, "Shift: Sat"),
        ("No fields at all", {}, "No fields at all"),
        ("", {}, ""),
        ("{{first_name}}", ADA, "{first_name}"),
        ("{{{first_name}}}", ADA, "{Ada}"),
        ("Set {{ and }}", {}, "Set { and }"),
        ("Code {{A1}} for {first_name}", ADA, "Code {A1} for Ada"),
        # Values are not read again: a brace in a value stays as it is.
        ("Hi {first_name}", {"first_name": "{name}"}, "Hi {name}"),
        ("€{first_name}😀", ADA, "€Ada😀"),
    ],
)
def test_fields_are_filled_and_escaped_braces_kept(
    body: str, values: dict[str, str], expected: str
) -> None:
    assert template_render(body, values, missing="refuse", fallback="") == expected


@pytest.mark.parametrize(
    ("body", "values", "fields"),
    [
        ("Hi {first_name}", {}, ("first_name",)),
        ("Hi {first_name}", {"first_name": "  "}, ("first_name",)),
        ("{shift_day} at {depot}, {first_name}", ADA, ("shift_day", "depot")),
        ("{depot} {depot}", {}, ("depot",)),
        ("Hi {First_Name}", ADA, ("First_Name",)),
    ],
)
def test_refusing_names_every_missing_field_once(
    body: str, values: dict[str, str], fields: tuple[str, ...]
) -> None:
    with pytest.raises(MissingMergeValues) as refused:
        template_render(body, values, missing="refuse", fallback="")

    assert refused.value.fields == fields
    assert (
        str(refused.value)
        == "No value for " + ", ".join(f"{{{field}}}" for field in fields) + "."
    )


@pytest.mark.parametrize(
    ("body", "values", "fallback", "expected"),
    [
        ("Hi {first_name}!", {}, "there", "Hi there!"),
        ("Hi {first_name}!", {"first_name": ""}, "there", "Hi there!"),
        ("Hi {first_name} {last_name}", {"first_name": "Ada"}, "", "Hi Ada "),
        ("{a}{b}", {"b": "B"}, "-", "-B"),
    ],
)
def test_fallback_stands_in_for_missing_values(
    body: str, values: dict[str, str], fallback: str, expected: str
) -> None:
    rendered = template_render(body, values, missing="fallback", fallback=fallback)

    assert rendered == expected


@pytest.mark.parametrize(
    ("body", "position"),
    [
        ("Hi {first name}", 4),
        ("Hi {", 4),
        ("Hi }", 4),
        ("{}", 1),
        ("Hi {1st}", 4),
        ("{{first_name}", 13),
        ("ok {first_name} then { x }", 22),
    ],
)
def test_a_stray_brace_is_refused_with_its_position(body: str, position: int) -> None:
    with pytest.raises(MergeSyntaxError) as refused:
        merge_parse(body)

    assert refused.value.position == position
    assert f"character {position}" in str(refused.value)
    assert "{{" in str(refused.value)


def test_fields_are_listed_once_in_order_of_first_use() -> None:
    parsed = merge_parse("{b} {a} {b} {{c}} {name}")

    assert parsed.fields == ("b", "a", "name")


def test_one_check_counts_what_a_recipient_set_lacks() -> None:
    parsed = merge_parse("Hi {first_name}, {shift_day} at {depot}")
    recipients = [
        {"first_name": "Ada", "shift_day": "Sat"},
        {"first_name": "Bob"},
        {"first_name": "Cy", "shift_day": "Sun"},
    ]

    check = template_check(parsed, recipients)

    assert check.recipients == 3
    assert dict(check.missing) == {"shift_day": 1, "depot": 3}
    assert not check.complete
    assert check.problems == (
        "1 of 3 recipients have no value for {shift_day}.",
        "Nobody has a value for {depot}.",
    )
    assert template_check(parsed, [ADA | {"shift_day": "S", "depot": "D"}]).complete


def test_a_check_reads_the_recipients_once() -> None:
    """A generator of recipients (a streamed query) is enough."""
    recipients = ({"first_name": name} for name in ["Ada", "", "Cy"])

    check = template_check("Hi {first_name}", recipients)

    assert (check.recipients, dict(check.missing)) == (3, {"first_name": 1})


brace_free = st.text(max_size=300).filter(lambda t: "{" not in t and "}" not in t)
field_values = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.text(max_size=20)
)


@given(brace_free, field_values)
def test_a_body_without_braces_comes_back_unchanged(
    body: str, values: dict[str, str]
) -> None:
    assert template_render(body, values, missing="refuse", fallback="") == body
    assert template_render(body, values, missing="fallback", fallback="x") == body


@given(st.text(max_size=200))
def test_escaping_every_brace_gives_the_text_back(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")

    assert template_render(escaped, {}, missing="refuse", fallback="") == text


@given(st.lists(st.one_of(brace_free, st.sampled_from(["{a}", "{b}"])), max_size=8))
def test_fallback_rendering_fills_every_field(pieces: list[str]) -> None:
    body = "".join(pieces)

    rendered = template_render(body, {"a": "A"}, missing="fallback", fallback="?")

    assert rendered == body.replace("{a}", "A").replace("{b}", "?")
