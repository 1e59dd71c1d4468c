"""Mobile numbers: parsing to E.164 and masking for display.

``normalise_mobile`` gives exactly the answers of ``phonenumbers.parse``
followed by ``phonenumbers.number_type``, at a fraction of their cost: a
contact import checks every row, and those two calls were half of its time.
``number_type`` compiles and tries up to eleven patterns per number (through
the library's regex cache) and ``parse`` handles every way a number can be
written, while most numbers we see are digits with a little punctuation.
So this module reads that common shape itself and hands anything else to
``parse``, and decides "mobile or not" with the library's metadata, its
patterns compiled once and grouped by number length. The tests compare it
with the plain library calls over generated numbers for many regions.
"""

from __future__ import annotations

import enum
import re

import phonenumbers
from phonenumbers import (
    REGION_CODE_FOR_NON_GEO_ENTITY,
    NumberParseException,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberFormat,
)

MASK = "\u2022"


class InvalidNumber(ValueError):
    """The text is not a mobile number that can receive a text.

    ``reason`` says why without repeating the number, for reports that must
    not disclose it (an import's row-by-row problems, say).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def normalise_mobile(raw: str, default_region: str = "GB") -> str:
    """Parse ``raw`` as a mobile number and return it in E.164 form.

    Numbers written without a country code are read in ``default_region``.
    Raises InvalidNumber with a message fit to show the person who typed it.
    A number whose type is FIXED_LINE_OR_MOBILE (most of North America) is
    accepted.
    """
    text = raw.strip()
    if not text:
        raise InvalidNumber("Enter a mobile number.", reason="No number given.")
    read = _read_plain(text, default_region)
    if read is None:
        try:
            number = phonenumbers.parse(text, default_region)
        except NumberParseException as exc:
            raise InvalidNumber(
                f"{text!r} is not a phone number.", reason="Not a phone number."
            ) from exc
        read = (
            number.country_code or 0,
            phonenumbers.national_significant_number(number),
        )
    country_code, national = read

    kind = _kind(country_code, national)
    if kind is _Kind.INVALID:
        raise InvalidNumber(
            f"{text!r} is not a valid phone number.",
            reason="Not a valid phone number.",
        )
    if kind is _Kind.OTHER:
        raise InvalidNumber(
            f"{text!r} is not a mobile number.", reason="Not a mobile number."
        )
    return f"+{country_code}{national}"


def format_international(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def mask_number(e164: str) -> str:
    """Hide the middle digits of a number, keeping its shape readable.

    ``+447700900123`` becomes ``+44 7700 9•• •23``: the country code, the
    first digits of the national number and the last two stay visible, which
    is enough to tell numbers apart on a list without disclosing them.
    """
    try:
        shown = format_international(e164)
    except NumberParseException:
        shown = e164
    country, _, national = shown.partition(" ")
    digit_positions = [i for i, char in enumerate(national) if char.isdigit()]
    keep_head, keep_tail = 5, 2
    hidden = set(digit_positions[keep_head:-keep_tail])
    masked = "".join(
        MASK if index in hidden else char for index, char in enumerate(national)
    )
    return f"{country} {masked}" if national else masked


# Reading plain input without phonenumbers.parse.
#
# For text made only of ASCII digits, spaces, dashes, dots and brackets, with
# at most a "+" in front, the parts of parse that look for RFC 3966 contexts,
# extensions, vanity letters, non-ASCII digits and second numbers find nothing
# to do, and the punctuation only separates digits. What is left is: an
# international prefix ("+", or the default region's "00"/"011"...) followed
# by a country code; or else the default region's own country code written
# without "+"; then a national prefix ("0") taken off when what remains is
# still a possible length. _read_plain does those steps and returns None
# whenever parse would refuse the text or takes a branch not reproduced here,
# so that every refusal comes from parse itself, with its reason. The length
# limit keeps us well inside parse's own limit on the input's length.
_PLAIN = re.compile(r"\+?[0-9 ().\-]{1,40}")
_PUNCTUATION = str.maketrans("", "", "+ ().-")
# Not a limit on valid numbers (none is this long), but parse refuses longer
# national numbers, so they go to parse to be refused there.
_LONGEST_NATIONAL = 17
_CALLING_CODES = frozenset(phonenumbers.supported_calling_codes())


def _read_plain(text: str, default_region: str) -> tuple[int, str] | None:
    """The country code and national number parse would find, or None."""
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    if _PLAIN.fullmatch(text) is None:
        return None
    home = _region(default_region)
    digits = text.translate(_PUNCTUATION)
    # parse reads two digits alone, but not two with punctuation or a "+".
    if home is None or not home.readable or len(digits) < 3:
        return None

    dialled = digits if text[0] == "+" else home.after_international_prefix(digits)
    national: str | None
    if dialled is not None:
        split = _split_country_code(dialled)
        if split is None:
            return None
        country_code, national = split
        region = _region_for_calling_code(country_code)
    else:
        country_code = home.country_code
        national = home.after_own_country_code(digits)
        if national is None:
            # Written nationally: the default region's own rules apply, even
            # where it shares its country code (Jersey's, not the UK's).
            national, region = digits, home
        else:
            region = _region_for_calling_code(country_code)

    if region is None or not region.readable or len(national) < 2:
        return None
    stripped = region.without_national_prefix(national)
    if region.length_is_kept(stripped):
        national = stripped
    if not 2 <= len(national) <= _LONGEST_NATIONAL:
        return None
    return country_code, national


def _split_country_code(dialled: str) -> tuple[int, str] | None:
    """Split the digits after an international prefix into code and rest.

    Like parse, the shortest known code wins, and no code starts with 0.
    """
    if len(dialled) <= 2 or dialled[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(dialled[:size])
        if code in _CALLING_CODES:
            return code, dialled[size:]
    return None


# Classifying a national number.


class _Kind(enum.Enum):
    INVALID = "invalid"  # number_type's UNKNOWN: matches no pattern
    OTHER = "other"  # valid but not able to receive texts: landline, premium...
    MOBILE = "mobile"  # MOBILE or FIXED_LINE_OR_MOBILE


def _kind(country_code: int, national: str) -> _Kind:
    """What number_type says of this number, reduced to the three answers."""
    for leading_digits, region in _candidates(country_code):
        if leading_digits is not None:
            if leading_digits.match(national):
                return region.kind(national)
        else:
            kind = region.kind(national)
            if kind is not _Kind.INVALID:
                return kind
    return _Kind.INVALID


_Candidate = tuple[re.Pattern[str] | None, "_Region"]
_CANDIDATES: dict[int, tuple[_Candidate, ...]] = {}


def _candidates(country_code: int) -> tuple[_Candidate, ...]:
    """The regions a number with this country code may belong to, in order.

    When regions share the code, the number belongs to the first (in the
    library's order) whose leading digits start it or, for one without
    leading digits, whose patterns accept it. A code of one region is that
    region's, whatever its leading digits.
    """
    candidates = _CANDIDATES.get(country_code)
    if candidates is None:
        codes = phonenumbers.region_codes_for_country_code(country_code)
        if not codes:
            return ()
        if len(codes) == 1:
            only = _region_or_entity(country_code, codes[0])
            candidates = () if only is None else ((None, only),)
        else:
            regions = [_region(code.upper()) for code in codes]
            candidates = tuple(
                (region.leading_digits, region)
                for region in regions
                if region is not None
            )
        _CANDIDATES[country_code] = candidates
    return candidates


class _Patterns:
    """The patterns that can apply to a national number of one length.

    phonenumbers skips a pattern when the type lists possible lengths and the
    number's is not among them; doing that once per length leaves two or
    three regular expressions to try for a typical number.
    """

    __slots__ = ("fixed_line", "general", "mobile", "not_mobile", "same_patterns")

    def __init__(self, metadata: PhoneMetadata, length: int) -> None:
        def compiled(desc: PhoneNumberDesc | None) -> re.Pattern[str] | None:
            if desc is None or not desc.national_number_pattern:
                return None
            if desc.possible_length and length not in desc.possible_length:
                return None
            return re.compile(desc.national_number_pattern)

        self.general = compiled(metadata.general_desc)
        self.fixed_line = compiled(metadata.fixed_line)
        self.mobile = compiled(metadata.mobile)
        self.same_patterns = metadata.same_mobile_and_fixed_line_pattern
        # phonenumbers tries these types before fixed line and mobile, so a
        # number that matches any of them is not a mobile even if it also
        # matches the mobile pattern.
        others = [
            pattern
            for pattern in map(
                compiled,
                (
                    metadata.premium_rate,
                    metadata.toll_free,
                    metadata.shared_cost,
                    metadata.voip,
                    metadata.personal_number,
                    metadata.pager,
                    metadata.uan,
                    metadata.voicemail,
                ),
            )
            if pattern is not None
        ]
        # One alternation matches the whole number when one of its parts
        # does, and costs one call instead of up to eight. Joining renumbers
        # groups, which would break a pattern referring back to its own; the
        # metadata's patterns have no groups at all, and if one ever has,
        # they are tried one by one.
        if len(others) > 1 and not any(pattern.groups for pattern in others):
            joined = "|".join(f"(?:{pattern.pattern})" for pattern in others)
            others = [re.compile(joined)]
        self.not_mobile = tuple(others)

    def kind(self, national: str) -> _Kind:
        if self.general is None or self.general.fullmatch(national) is None:
            return _Kind.INVALID
        if any(pattern.fullmatch(national) for pattern in self.not_mobile):
            return _Kind.OTHER
        if self.same_patterns:
            # The metadata says the mobile pattern is the fixed-line one, so
            # phonenumbers does not look at it: a match is FIXED_LINE_OR_MOBILE.
            if _fullmatch(self.fixed_line, national):
                return _Kind.MOBILE
            return _Kind.INVALID
        if _fullmatch(self.mobile, national):
            return _Kind.MOBILE  # MOBILE, or FIXED_LINE_OR_MOBILE
        return _Kind.OTHER if _fullmatch(self.fixed_line, national) else _Kind.INVALID


def _fullmatch(pattern: re.Pattern[str] | None, text: str) -> bool:
    return pattern is not None and pattern.fullmatch(text) is not None


class _Region:
    """A region's (or non-geographic entity's) metadata, compiled once."""

    def __init__(self, metadata: PhoneMetadata) -> None:
        general = metadata.general_desc
        self.metadata = metadata
        self.country_code = metadata.country_code or 0
        self.general = (
            re.compile(general.national_number_pattern)
            if general is not None and general.national_number_pattern
            else None
        )
        self.lengths = general.possible_length if general is not None else ()
        self.local_lengths = (
            general.possible_length_local_only if general is not None else ()
        )
        # An empty pattern here would match at the start of anything, which
        # is what phonenumbers does with it too; only a missing one never does.
        self.international_prefix = _compiled_or_none(metadata.international_prefix)
        self.leading_digits = _compiled_or_none(metadata.leading_digits)
        self.national_prefix = _compiled_or_none(
            metadata.national_prefix_for_parsing or None
        )
        self.transform_rule = metadata.national_prefix_transform_rule or None
        # parse cannot handle a region without possible lengths, or with a
        # transform rule for a prefix that captures nothing; the metadata has
        # neither, but if it ever does, such numbers go through parse.
        self.readable = bool(self.lengths) and not (
            self.transform_rule is not None
            and self.national_prefix is not None
            and self.national_prefix.groups == 0
        )
        self._by_length: dict[int, _Patterns] = {}

    def kind(self, national: str) -> _Kind:
        patterns = self._by_length.get(len(national))
        if patterns is None:
            # National numbers are at most 17 digits, so this stays small.
            patterns = _Patterns(self.metadata, len(national))
            self._by_length[len(national)] = patterns
        return patterns.kind(national)

    def is_well_formed(self, national: str) -> bool:
        return _fullmatch(self.general, national)

    def after_international_prefix(self, digits: str) -> str | None:
        """The digits after this region's international prefix, if dialled."""
        if self.international_prefix is None:
            return None
        found = self.international_prefix.match(digits)
        if found is None:
            return None
        rest = digits[found.end() :]
        # No country code starts with 0, so parse reads "00 0..." as national.
        return None if rest.startswith("0") else rest

    def after_own_country_code(self, digits: str) -> str | None:
        """The national number, if ``digits`` start with our country code.

        As parse does, the code is taken off only when that turns a malformed
        number into a well-formed one, or when the digits are too long to be
        a national number here.
        """
        code = str(self.country_code)
        if not digits.startswith(code):
            return None
        rest = self.without_national_prefix(digits[len(code) :])
        if not self.is_well_formed(digits) and self.is_well_formed(rest):
            return rest
        return rest if self.is_too_long(digits) else None

    def without_national_prefix(self, national: str) -> str:
        """Take off a national prefix (and carrier code), as parse does.

        Some regions rewrite rather than strip (a short local number gains
        its area code); the prefix stays when taking it off would turn a
        well-formed number into a malformed one.
        """
        if not national or self.national_prefix is None:
            return national
        found = self.national_prefix.match(national)
        if found is None:
            return national
        if self.transform_rule is None or found.groups()[-1] is None:
            stripped = national[found.end() :]
        else:
            stripped = self.national_prefix.sub(self.transform_rule, national, count=1)
        if self.is_well_formed(national) and not self.is_well_formed(stripped):
            return national
        return stripped

    def length_is_kept(self, national: str) -> bool:
        """Whether parse keeps a national number of this length once stripped.

        It keeps a possible length or one too long, not one too short, one
        only dialled locally, or one between the possible lengths.
        """
        length = len(national)
        if length in self.local_lengths or length < self.lengths[0]:
            return False
        return length in self.lengths or length > self.lengths[-1]

    def is_too_long(self, national: str) -> bool:
        length = len(national)
        return (
            length not in self.local_lengths
            and length > self.lengths[0]
            and length > self.lengths[-1]
        )


def _compiled_or_none(pattern: str | None) -> re.Pattern[str] | None:
    return None if pattern is None else re.compile(pattern)


# Compiled regions, filled as numbers arrive. Keys are only codes the library
# has metadata for, so these stay small. Two threads may both build an entry;
# they build the same thing and one of them wins.
_REGIONS: dict[str, _Region] = {}
_ENTITIES: dict[int, _Region] = {}


def _region(region_code: str) -> _Region | None:
    region = _REGIONS.get(region_code)
    if region is None:
        metadata = PhoneMetadata.metadata_for_region(region_code)
        if metadata is None:
            return None
        region = _REGIONS[region_code] = _Region(metadata)
    return region


def _region_or_entity(country_code: int, region_code: str) -> _Region | None:
    """The region, or for "001" the non-geographic entity with this code."""
    if region_code != REGION_CODE_FOR_NON_GEO_ENTITY:
        return _region(region_code)
    entity = _ENTITIES.get(country_code)
    if entity is None:
        metadata = PhoneMetadata.metadata_for_nongeo_region(country_code)
        if metadata is None:
            return None
        entity = _ENTITIES[country_code] = _Region(metadata)
    return entity


def _region_for_calling_code(country_code: int) -> _Region | None:
    """The metadata parse uses for a number with this country code: its main
    region's (the UK's for +44, even when the default region is Jersey)."""
    main = phonenumbers.region_code_for_country_code(country_code)
    return _region_or_entity(country_code, main)
