"""Mobile numbers: parsing to E.164 and masking for display."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
MASK = "\u2022"


class InvalidNumber(ValueError):
    """The text is not a mobile number that can receive a text."""


def normalise_mobile(raw: str, default_region: str = "GB") -> str:
    """Parse ``raw`` as a mobile number and return it in E.164 form.

    Numbers written without a country code are read in ``default_region``.
    Raises InvalidNumber with a message fit to show the person who typed it.
    """
    text = raw.strip()
    if not text:
        raise InvalidNumber("Enter a mobile number.")
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(f"{text!r} is not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"{text!r} is not a valid phone number.")
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise InvalidNumber(f"{text!r} is not a mobile number.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


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
