"""normalise_mobile as it was before it read numbers itself, kept as the oracle.

This is the straightforward use of phonenumbers: parse, number_type, format.
The tests hold tmc.lib.phone.normalise_mobile to exactly its answers, and
bench/phone.py times the two side by side.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from tmc.lib.phone import InvalidNumber

MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


def reference_normalise_mobile(raw: str, default_region: str = "GB") -> str:
    text = raw.strip()
    if not text:
        raise InvalidNumber("Enter a mobile number.", reason="No number given.")
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(
            f"{text!r} is not a phone number.", reason="Not a phone number."
        ) from exc
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
