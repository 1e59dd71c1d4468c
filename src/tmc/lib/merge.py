"""Fill a message's merge fields, such as ``{first_name}``, for a recipient.

A merge field is a key in braces: a letter, then letters, digits or
underscores. ``{{`` and ``}}`` stand for a brace itself. Any other brace is
a mistake (``{first name}``, a lone ``{``) and is refused with its position
when the body is parsed, so that it is caught when a template is saved
rather than when a thousand texts go out with a stray brace in them.

For many recipients, parse the body once with ``merge_parse`` and give the
result to ``template_check``, which works out in one pass which fields some
recipients have no value for (so a bulk send can refuse or warn before it
renders a single text), then to ``template_render`` for each recipient.
Nothing here keeps a body after the call: bodies are confidential.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Missing = Literal["refuse", "fallback"]

# One token at a time: an escaped brace, a whole merge field, or a brace that
# is neither (the mistake).
TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z][A-Za-z0-9_]*)\}|[{}]")


class MergeSyntaxError(ValueError):
    """A brace that is neither a merge field nor an escaped brace."""

    def __init__(self, position: int) -> None:
        self.position = position
        super().__init__(
            f"The brace at character {position} does not make a merge field "
            "such as {first_name}. Write {{ or }} for a brace itself."
        )


class MissingMergeValues(ValueError):
    """The recipient has no value for some of the body's merge fields."""

    def __init__(self, fields: Iterable[str], *, advice: str = "") -> None:
        self.fields = tuple(fields)
        named = ", ".join(f"{{{field}}}" for field in self.fields)
        super().__init__(f"No value for {named}. {advice}".strip())


@dataclass(frozen=True)
class MergeField:
    key: str


@dataclass(frozen=True)
class ParsedBody:
    """A body cut into literal text and merge fields, in order."""

    pieces: tuple[str | MergeField, ...]

    @functools.cached_property
    def fields(self) -> tuple[str, ...]:
        """Each merge field's key once, in the order they first appear."""
        keys = (piece.key for piece in self.pieces if isinstance(piece, MergeField))
        return tuple(dict.fromkeys(keys))


def merge_parse(body: str) -> ParsedBody:
    """Cut ``body`` into text and merge fields; raise MergeSyntaxError."""
    pieces: list[str | MergeField] = []
    literal: list[str] = []
    start = 0
    for token in TOKEN.finditer(body):
        literal.append(body[start : token.start()])
        start = token.end()
        text = token.group()
        if token.group(1) is not None:
            pieces.append("".join(literal))
            literal = []
            pieces.append(MergeField(token.group(1)))
        elif len(text) == 2:
            literal.append(text[0])
        else:
            raise MergeSyntaxError(token.start() + 1)
    literal.append(body[start:])
    pieces.append("".join(literal))
    return ParsedBody(tuple(piece for piece in pieces if piece != ""))


def _has_value(values: Mapping[str, str], key: str) -> bool:
    # A blank value would leave "Hi , your shift..." in the text: as missing.
    return bool(values.get(key, "").strip())


def template_render(
    body: str | ParsedBody,
    values: Mapping[str, str],
    *,
    missing: Missing = "refuse",
    fallback: str = "",
) -> str:
    """Return ``body`` with each merge field replaced by its value.

    A field without a value (absent or blank) raises MissingMergeValues
    naming every such field when ``missing`` is "refuse", and becomes
    ``fallback`` when it is "fallback". Values go in as they are: a brace in
    a value is not read as a merge field.
    """
    parsed = merge_parse(body) if isinstance(body, str) else body
    if missing == "refuse":
        absent = [key for key in parsed.fields if not _has_value(values, key)]
        if absent:
            raise MissingMergeValues(absent)
    return "".join(
        piece
        if isinstance(piece, str)
        else values[piece.key]
        if _has_value(values, piece.key)
        else fallback
        for piece in parsed.pieces
    )


@dataclass(frozen=True)
class MergeCheck:
    """Which merge fields how many of a list of recipients have no value for."""

    recipients: int
    missing: Mapping[str, int]

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def problems(self) -> tuple[str, ...]:
        """One sentence per field: a typo (nobody has it) reads differently."""
        return tuple(
            f"Nobody has a value for {{{key}}}."
            if count == self.recipients
            else f"{count} of {self.recipients} recipients have no value for {{{key}}}."
            for key, count in self.missing.items()
        )


def template_check(
    body: str | ParsedBody, recipients: Iterable[Mapping[str, str]]
) -> MergeCheck:
    """Count, for one body and a set of recipients, the values they lack.

    Run once per body and recipient set, before rendering each text.
    """
    parsed = merge_parse(body) if isinstance(body, str) else body
    lacking: Counter[str] = Counter()
    total = 0
    for values in recipients:
        total += 1
        lacking.update(key for key in parsed.fields if not _has_value(values, key))
    ordered = {key: lacking[key] for key in parsed.fields if lacking[key]}
    return MergeCheck(recipients=total, missing=ordered)
