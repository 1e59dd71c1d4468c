from __future__ import annotations

from collections.abc import Callable, Iterable

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from tmc.lib.phone import InvalidNumber, mask_number, normalise_mobile
from tmc.lib.tests.phone_reference import reference_normalise_mobile


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


# normalise_mobile reads the common ways of writing a number itself and
# classifies with phonenumbers' metadata rather than number_type. These tests
# hold it to exactly the answers of the plain library calls (kept in
# phone_reference): the same E.164 number, or the same refusal with the same
# reason and message.

# Large markets, regions sharing a country code (+44, +1, +7, +39, +47, +61,
# +212, +358), and regions whose national prefix rewrites the number rather
# than just dropping a "0" (AR, AG, BR, GA, JP, MG, NF, SM).
REGIONS = [
    *("GB", "GG", "IM", "JE", "US", "CA", "JM", "AG", "PR", "DO"),
    *("FR", "DE", "IN", "AU", "CC", "CX", "BR", "CN", "NG", "JP"),
    *("AR", "GA", "MG", "NF", "SM", "RU", "KZ", "IT", "VA", "NO"),
    *("SJ", "FI", "AX", "MA", "EH", "IE", "NL", "ES", "ZA", "MX"),
]
TYPES = [
    *(PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE),
    *(PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE),
    *(PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP),
    *(PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER),
    *(PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL),
]
OTHER_CODES = ["1", "7", "33", "39", "44", "49", "55", "61", "81", "86", "91"]
OTHER_CODES += ["234", "358", "800", "881", "882", "979", "999", "0"]
DIGITS = "0123456789"
SEPARATORS = ["", "", "", "", "", " ", "-", ".", "(", ")"]

Outcome = tuple[str, str, str]


def outcome(normalise: Callable[[str, str], str], raw: str, region: str) -> Outcome:
    try:
        return ("accepted", normalise(raw, region), "")
    except InvalidNumber as refused:
        return ("refused", refused.reason, str(refused))


def assert_agrees(raw: str, region: str) -> None:
    expected = outcome(reference_normalise_mobile, raw, region)

    assert outcome(normalise_mobile, raw, region) == expected, (raw, region)


def _examples(
    regions: Iterable[str], types: Iterable[int] = TYPES
) -> list[tuple[str, str]]:
    """(region, national number) for the library's example of each type."""
    found = []
    for region in regions:
        for kind in types:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                national = phonenumbers.national_significant_number(example)
                found.append((region, national))
    return found


EXAMPLES = _examples(REGIONS)
MOBILES = _examples(REGIONS, [PhoneNumberType.MOBILE])


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A number as someone might type it, and the default region to read it in.

    Most start from a region's example number (a mobile, or of any type),
    with up to its last three digits changed and sometimes one added or
    dropped, often read in its own region and with its own country code, so
    that a good share are valid, of every type; the rest are random digits.
    Then a prefix (the country code, a wrong one, "0", "00", "+" alone...)
    and punctuation between any of the characters.
    """
    if draw(st.integers(0, 3)):
        home, example = draw(st.sampled_from(MOBILES) | st.sampled_from(EXAMPLES))
        size = len(example) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        kept = min(size, len(example)) - draw(st.integers(0, 3))
        changed = draw(st.text(DIGITS, min_size=size - kept, max_size=size - kept))
        digits = example[:kept] + changed
        region = home if draw(st.booleans()) else draw(st.sampled_from(REGIONS))
    else:
        digits = draw(st.text(DIGITS, min_size=6, max_size=15))
        home = region = draw(st.sampled_from(REGIONS))
    own = str(phonenumbers.country_code_for_region(home))
    code = own if draw(st.booleans()) else draw(st.sampled_from(OTHER_CODES))
    prefixes = ["", "", "0", f"+{code}", f"+{code}", f"00{code}", code, "+"]
    prefixes += ["00", "011", f"0{code}", f"011{code}", f"+{code}0", f"00{code}0"]
    written = draw(st.sampled_from([*prefixes, f"+{code} (0)"])) + digits
    gaps = draw(
        st.lists(
            st.sampled_from(SEPARATORS), min_size=len(written), max_size=len(written)
        )
    )
    return "".join(char + gap for char, gap in zip(written, gaps, strict=True)), region


@settings(max_examples=2000, deadline=None)
@given(written_numbers())
def test_written_numbers_get_the_libraries_answer(case: tuple[str, str]) -> None:
    raw, region = case

    assert_agrees(raw, region)


ODDITIES = ["tel:", " x12", ";ext=3", " ext. 4", "#", "\u00a0", "\uff0b", "\u0663"]
ODDITIES += ["\uff17", "a", "ABC", "+", "\t", "/", "~", ","]
ODD = "0123456789 +()-./x#,;~:\t\u00a0\uff0b\u0663\uff17abcTELext"


@st.composite
def oddly_written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A written number with odd characters put in, or just odd text.

    Letters, extensions ("x12", ";ext=3"), "tel:", no-break spaces,
    full-width or Arabic-Indic digits, a second "+", a bad default region:
    all of these go through phonenumbers.parse, and must still agree.
    """
    if draw(st.booleans()):
        written, region = draw(written_numbers())
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(written)))
            odd = draw(st.sampled_from(ODDITIES))
            written = written[:at] + odd + written[at:]
    else:
        written = draw(st.text(alphabet=ODD, max_size=30))
        region = draw(st.sampled_from(REGIONS))
    return written, draw(st.sampled_from([region, region, "ZZ", "gb", "001", ""]))


@settings(max_examples=500, deadline=None)
@given(oddly_written_numbers())
def test_oddly_written_numbers_get_the_libraries_answer(
    case: tuple[str, str],
) -> None:
    raw, region = case

    assert_agrees(raw, region)


def test_every_regions_examples_get_the_libraries_answer() -> None:
    """Every region and non-geographic code, every type, written three ways."""
    for region, national in _examples(sorted(phonenumbers.SUPPORTED_REGIONS)):
        code = phonenumbers.country_code_for_region(region)
        for written in (national, f"+{code} {national}", f"00{code}{national}"):
            assert_agrees(written, region)
    for code in sorted(phonenumbers.supported_calling_codes()):
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            national = phonenumbers.national_significant_number(example)
            assert_agrees(f"+{code} {national}", "GB")
            assert_agrees(f"00{code}{national}", "GB")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("07400 123456", "GB", "+447400123456"),
        ("+44 (0) 7400 123456", "GB", "+447400123456"),
        ("447400123456", "GB", "+447400123456"),
        ("07781 123456", "GG", "+447781123456"),  # Guernsey mobile
        ("07624 123456", "GB", "+447624123456"),  # Isle of Man, read in GB
        ("(201) 555-0123", "US", "+12015550123"),  # FIXED_LINE_OR_MOBILE
        ("+1 876 210 1234", "US", "+18762101234"),  # Jamaica, +1 shared
        ("(11) 96123-4567", "BR", "+5511961234567"),
        ("090-1234-5678", "JP", "+819012345678"),
        ("+881 6 1234 5678", "GB", "+881612345678"),  # satellite mobile
        ("07400 ABCDEF", "GB", "+447400222333"),  # letters as on a keypad
        ("07400\u00a0123456", "GB", "+447400123456"),
    ],
)
def test_real_looking_numbers_are_accepted(
    raw: str, region: str, expected: str
) -> None:
    assert normalise_mobile(raw, region) == expected
    assert reference_normalise_mobile(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("020 7946 0000", "GB", "Not a mobile number."),  # London landline
        ("0800 123 4567", "GB", "Not a mobile number."),  # toll-free
        ("0901 234 5678", "GB", "Not a mobile number."),  # premium rate
        ("070 1234 5678", "GB", "Not a mobile number."),  # personal number
        ("(800) 234-5678", "US", "Not a mobile number."),
        ("07400 12345", "GB", "Not a valid phone number."),  # a digit short
        ("+882 1234 5678", "GB", "Not a valid phone number."),
        ("hello", "GB", "Not a phone number."),
        ("+999 1234 5678", "GB", "Not a phone number."),  # no such code
        ("07400 123456", "ZZ", "Not a phone number."),  # no region to read in
    ],
)
def test_real_looking_non_mobiles_are_refused(
    raw: str, region: str, reason: str
) -> None:
    for normalise in (normalise_mobile, reference_normalise_mobile):
        with pytest.raises(InvalidNumber) as refused:
            normalise(raw, region)

        assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("07400 123456", "GB"),
        ("+44 7400 123456", "GB"),
        ("0044 (0)7400-123-456", "GB"),
        ("(201) 555.0123", "US"),
        ("+1 201 555 0123", "GB"),
        ("06 12 34 56 78", "FR"),
        ("(11) 96123-4567", "BR"),
    ],
)
def test_common_shapes_are_read_without_phonenumbers_parse(
    raw: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The speed comes from not calling parse; these must keep not calling it."""

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("phonenumbers.parse was called")

    monkeypatch.setattr(phonenumbers, "parse", no_parse)

    assert normalise_mobile(raw, region).startswith("+")
