"""Count the parts and encoding of an SMS text, per 3GPP TS 23.038.

A text that the GSM 7-bit default alphabet (with its extension table) can
carry is sent as GSM-7: 160 septets in one part, 153 per part once a
concatenation header is needed. Extension characters (``€ [ ] { } ~ ^ | \\``
and form feed) take two septets, an escape and the character, and a part
boundary never falls between them. Any other text is sent as UCS-2: 70 code
units in one part, 67 per part, and a character outside the Basic
Multilingual Plane (an emoji, say) takes a surrogate pair of two units that
are never split either.

The GSM alphabet comes from the ``gsm0338`` codec rather than a table of our
own, so the count agrees with what an encoder will actually produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM_CODEC = "gsm03.38"


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class Limits:
    single: int
    multipart: int


LIMITS = {
    Encoding.GSM7: Limits(single=160, multipart=153),
    Encoding.UCS2: Limits(single=70, multipart=67),
}


@dataclass(frozen=True)
class SegmentCount:
    """How a text will travel: its encoding and the size of each part.

    ``units`` are septets for GSM-7 and 16-bit code units for UCS-2;
    ``part_texts`` are the slices of the original text that each part carries.
    """

    encoding: Encoding
    characters: int
    units: int
    part_units: tuple[int, ...]
    part_texts: tuple[str, ...]

    @property
    def parts(self) -> int:
        return len(self.part_units)

    @property
    def per_part_limit(self) -> int:
        limits = LIMITS[self.encoding]
        return limits.single if self.parts <= 1 else limits.multipart

    @property
    def remaining_in_part(self) -> int:
        """Units left before the text needs another part."""
        if not self.part_units:
            return LIMITS[self.encoding].single
        return self.per_part_limit - self.part_units[-1]

    def as_dict(self) -> dict[str, object]:
        return {
            "encoding": str(self.encoding),
            "characters": self.characters,
            "units": self.units,
            "parts": self.parts,
            "part_lengths": list(self.part_units),
            "per_part_limit": self.per_part_limit,
            "remaining_in_part": self.remaining_in_part,
        }


# The codec encodes U+001B as the bare escape septet, which a handset reads
# as the start of an extension pair: "\x1be" would arrive as "€".
ESCAPE = b"\x1b"


def gsm7_septets(character: str) -> int | None:
    """Septets one character takes in GSM-7, or None if it cannot be sent so."""
    try:
        encoded = character.encode(GSM_CODEC)
    except UnicodeEncodeError:
        return None
    if encoded == ESCAPE:
        return None
    return len(encoded)


def _ucs2_units(character: str) -> int:
    return 2 if ord(character) > 0xFFFF else 1


def _split(
    text: str, widths: list[int], limits: Limits
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    total = sum(widths)
    if total == 0:
        return (), ()
    if total <= limits.single:
        return (total,), (text,)

    # Greedy packing character by character: a character's units (an escape
    # pair or a surrogate pair) always travel together in one part.
    part_units: list[int] = []
    part_texts: list[str] = []
    start = 0
    used = 0
    for index, width in enumerate(widths):
        if used + width > limits.multipart:
            part_units.append(used)
            part_texts.append(text[start:index])
            start, used = index, 0
        used += width
    part_units.append(used)
    part_texts.append(text[start:])
    return tuple(part_units), tuple(part_texts)


def count_segments(text: str) -> SegmentCount:
    """Return the encoding and parts that ``text`` needs."""
    gsm_widths = [gsm7_septets(character) for character in text]
    if all(width is not None for width in gsm_widths):
        encoding = Encoding.GSM7
        widths = [width for width in gsm_widths if width is not None]
    else:
        encoding = Encoding.UCS2
        widths = [_ucs2_units(character) for character in text]

    part_units, part_texts = _split(text, widths, LIMITS[encoding])
    return SegmentCount(
        encoding=encoding,
        characters=len(text),
        units=sum(widths),
        part_units=part_units,
        part_texts=part_texts,
    )
