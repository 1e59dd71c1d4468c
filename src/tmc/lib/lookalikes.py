"""Swap characters that force UCS-2 for the GSM-7 characters they stand for.

Text pasted from a word processor or a phone keyboard often carries curly
quotes, long dashes or a no-break space. None of them is in the GSM 7-bit
alphabet, so one of them turns a whole message into UCS-2: 70 characters a
part instead of 160, which can double or triple what a message costs. Each
has a plain twin that reads the same on a handset.

The table is short on purpose: it holds punctuation and spaces only. Letters
with accents are left alone, because changing them changes the spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

from tmc.lib.segments import Encoding, SegmentCount, count_segments


@dataclass(frozen=True)
class Lookalike:
    """A plain replacement; ``name`` says what an invisible character is."""

    replacement: str
    name: str = ""


# Code points are written as escapes: several of these are hard to tell from
# their replacements in an editor, which is the whole point of the table.
LOOKALIKES: dict[str, Lookalike] = {
    "\u2018": Lookalike("'"),  # left single quotation mark
    "\u2019": Lookalike("'"),  # right single quotation mark, the apostrophe
    "\u201a": Lookalike("'"),  # single low-9 quotation mark
    "\u02bc": Lookalike("'"),  # modifier letter apostrophe
    "\u2032": Lookalike("'"),  # prime
    "\u201c": Lookalike('"'),  # left double quotation mark
    "\u201d": Lookalike('"'),  # right double quotation mark
    "\u201e": Lookalike('"'),  # double low-9 quotation mark
    "\u2033": Lookalike('"'),  # double prime
    "\u2010": Lookalike("-"),  # hyphen
    "\u2011": Lookalike("-"),  # non-breaking hyphen
    "\u2013": Lookalike("-"),  # en dash
    "\u2014": Lookalike("-"),  # em dash
    "\u2212": Lookalike("-"),  # minus sign
    "\u2022": Lookalike("-"),  # bullet
    "\u2026": Lookalike("..."),  # horizontal ellipsis
    "\u00a0": Lookalike(" ", name="no-break space"),
    "\u202f": Lookalike(" ", name="narrow no-break space"),
    "\u2009": Lookalike(" ", name="thin space"),
    "\u200b": Lookalike("", name="zero-width space"),
}


@dataclass(frozen=True)
class Replacement:
    """One character replaced: where it was in the original text, and by what."""

    position: int
    original: str
    replacement: str

    @property
    def shown(self) -> str:
        """The change as the author reads it: the character, an arrow, its twin."""
        name = LOOKALIKES[self.original].name or self.original
        if self.replacement == " ":
            return f"{name} → space"
        if not self.replacement:
            return f"{name} removed"
        return f"{name} → {self.replacement}"


@dataclass(frozen=True)
class Replaced:
    text: str
    replacements: tuple[Replacement, ...]

    @property
    def changes_shown(self) -> tuple[str, ...]:
        """Each kind of change once, in the order it first appears."""
        return tuple(dict.fromkeys(r.shown for r in self.replacements))


def lookalikes_replace(text: str) -> Replaced:
    """Return ``text`` with every look-alike replaced, and the list of changes.

    Characters without an entry in ``LOOKALIKES`` are kept, so the result can
    still need UCS-2 (an emoji, say).
    """
    pieces: list[str] = []
    replacements: list[Replacement] = []
    for position, character in enumerate(text):
        lookalike = LOOKALIKES.get(character)
        if lookalike is None:
            pieces.append(character)
            continue
        pieces.append(lookalike.replacement)
        replacements.append(Replacement(position, character, lookalike.replacement))
    return Replaced(text="".join(pieces), replacements=tuple(replacements))


@dataclass(frozen=True)
class LookalikeOffer:
    """Replacing look-alikes would send the text as GSM-7: before and after."""

    replaced: Replaced
    before: SegmentCount
    after: SegmentCount

    @property
    def text(self) -> str:
        return self.replaced.text

    @property
    def count(self) -> int:
        return len(self.replaced.replacements)


def lookalikes_offer(text: str) -> LookalikeOffer | None:
    """The offer to send ``text`` as GSM-7 by replacing look-alikes, if any.

    None when the text is GSM-7 already, and when something without a plain
    twin would keep it UCS-2 anyway: then replacing would change the text
    for nothing.
    """
    before = count_segments(text)
    if before.encoding != Encoding.UCS2:
        return None
    replaced = lookalikes_replace(text)
    if not replaced.replacements:
        return None
    after = count_segments(replaced.text)
    if after.encoding != Encoding.GSM7:
        return None
    return LookalikeOffer(replaced=replaced, before=before, after=after)
