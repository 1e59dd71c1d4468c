"""Read a reply as an answer to a question, leniently but never by guessing.

People answer "y", "Yes!", "yeah", "YES please", "1" or "b)"; each of those
reads as an answer. A reply that could mean two things ("yes but not
Saturday", "A or B") or nothing the question offers is left for a person to
read: ``needs_attention`` is set and no value is given.

Pure functions, no Django: the rules are tested table by table.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class Kind(StrEnum):
    YES_NO = "yes_no"
    CHOICE = "choice"
    NUMBER = "number"
    TEXT = "text"


YES = "yes"
NO = "no"

# Per language: the words that start a yes, and those that start a no.
# Words that turn a yes round ("not", "cant") count as a no-word, so that
# "yes but not Saturday" holds both and goes to a person.
YES_NO_WORDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "en": (
        frozenset(
            {"y", "yes", "yeah", "yea", "yep", "yup", "ya", "aye", "sure", "ok"}
            | {"okay", "yess", "yesss", "definitely", "certainly", "absolutely"}
        ),
        frozenset(
            {"n", "no", "nope", "nah", "not", "cant", "cannot", "sorry", "unable"}
            | {"nay", "negative", "never", "wont"}
        ),
    ),
    "fr": (
        frozenset({"o", "oui", "ouais", "daccord", "ok", "bien"}),
        frozenset({"n", "non", "pas", "jamais", "desole"}),
    ),
    "es": (
        frozenset({"s", "si", "claro", "vale", "ok"}),
        frozenset({"n", "no", "nunca", "imposible"}),
    ),
    "de": (
        frozenset({"j", "ja", "jawohl", "klar", "ok", "gerne"}),
        frozenset({"n", "nein", "nicht", "kein", "leider"}),
    ),
}
LANGUAGES = tuple(YES_NO_WORDS)

LETTERS = string.ascii_uppercase
# "b)", "(b)", "b.", "B:", "option b", "b please": a letter standing alone.
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class Answer:
    """What a reply says: a value, or nothing and a flag for a person."""

    value: str
    needs_attention: bool

    @classmethod
    def unclear(cls) -> Answer:
        return cls("", needs_attention=True)


def _plain(text: str) -> str:
    """Lower case, accents and apostrophes gone: "Can't" reads as "cant"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.replace("'", "").replace("\u2019", "")


def _words(text: str) -> list[str]:
    return _WORD.findall(_plain(text))


def option_keys(options: list[str]) -> list[str]:
    """The letter each option is answered by: A, B, C, ..."""
    if len(options) > len(LETTERS):
        raise ValueError(f"At most {len(LETTERS)} options.")
    return list(LETTERS[: len(options)])


def parse_yes_no(text: str, language: str = "en") -> Answer:
    yes_words, no_words = YES_NO_WORDS.get(language, YES_NO_WORDS["en"])
    words = _words(text)
    if not words:
        return Answer.unclear()
    says_yes = any(word in yes_words for word in words)
    says_no = any(word in no_words for word in words)
    if says_yes and not says_no and words[0] in yes_words:
        return Answer(YES, needs_attention=False)
    if says_no and not says_yes and words[0] in no_words:
        return Answer(NO, needs_attention=False)
    return Answer.unclear()


def parse_choice(text: str, options: list[str]) -> Answer:
    """An option by its letter, its number or its words; one, or unclear."""
    keys = option_keys(options)
    words = _words(text)
    chosen: set[str] = set()
    for word in words:
        if len(word) == 1 and word.upper() in keys:
            chosen.add(word.upper())
        elif word.isdecimal() and 1 <= int(word) <= len(keys):
            chosen.add(keys[int(word) - 1])
    plain = " ".join(words)
    for key, option in zip(keys, options, strict=True):
        option_words = " ".join(_words(option))
        if option_words and re.search(rf"\b{re.escape(option_words)}\b", plain):
            chosen.add(key)
    if len(chosen) == 1:
        return Answer(chosen.pop(), needs_attention=False)
    return Answer.unclear()


def parse_number(text: str) -> Answer:
    found = _NUMBER.findall(text)
    if len(found) != 1:
        return Answer.unclear()
    try:
        value = Decimal(found[0].replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return Answer.unclear()
    return Answer(format(value.normalize(), "f"), needs_attention=False)


def parse_answer(
    text: str, *, kind: Kind, options: list[str] | None = None, language: str = "en"
) -> Answer:
    """Read ``text`` as an answer to a question of ``kind``."""
    if kind is Kind.YES_NO:
        return parse_yes_no(text, language)
    if kind is Kind.CHOICE:
        return parse_choice(text, options or [])
    if kind is Kind.NUMBER:
        return parse_number(text)
    # Free text is an answer as it stands; its words stay sealed with the
    # inbound message, so the value itself is empty.
    return Answer("", needs_attention=not text.strip())
