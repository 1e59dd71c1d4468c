"""Mobile numbers: parsing to E.164 and masking for display."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
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
    """
    text = raw.strip()
    if not text:
        raise InvalidNumber("Enter a mobile number.", reason="No number given.")
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(
            f"{text!r} is not a phone number.", reason="Not a phone number."
        ) from exc
    # The type of a number that is not valid is UNKNOWN, so one look at the
    # type answers both questions (and costs half of asking both).
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        raise InvalidNumber(
            f"{text!r} is not a valid phone number.",
            reason="Not a valid phone number.",
        )
    if kind not in MOBILE_TYPES:
        raise InvalidNumber(
            f"{text!r} is not a mobile number.", reason="Not a mobile number."
        )
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
