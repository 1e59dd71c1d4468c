"""``tmc segments``: how a text read on standard input would travel.

It prints ``count_segments(text).as_dict()`` as one line of JSON, the same
count the compose page shows, so scripts and people agree with the screen.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, BinaryIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.lib.segments import count_segments

# Exit statuses: 1 when the --max-parts check fails, 2 when the input or an
# argument is unusable (the status argparse gives a bad option).
TOO_LONG = 1
BAD_INPUT = 2


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above 0")
    return number


def _drop_final_line_break(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


class Command(BaseCommand):
    help = (
        "Print a text's encoding, characters, units and parts as JSON. The "
        "text is read as UTF-8 from standard input; one final line break (as "
        "echo and most editors add) is not counted unless --keep-newline."
    )
    # call_command(..., stdin=BytesIO(...)) in tests; sys.stdin otherwise.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-parts",
            nargs="?",
            type=_positive,
            const=0,
            metavar="N",
            help=(
                "Exit with status 1 if the text needs more than N parts "
                "(without N: TMC_MAX_PARTS, the limit the compose page enforces)."
            ),
        )
        parser.add_argument(
            "--keep-newline",
            action="store_true",
            help="Count a final line break as part of the text.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stream: BinaryIO | None = options.get("stdin")
        if stream is None:
            stream = sys.stdin.buffer
        if stream.isatty():
            sys.stderr.write("Type the text, then Ctrl-D on a line of its own.\n")
        raw = stream.read()
        try:
            # utf-8-sig: a byte-order mark some editors write is not text.
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"Standard input is not UTF-8 text (byte {exc.start + 1} is "
                "not valid).",
                returncode=BAD_INPUT,
            ) from exc
        if not options["keep_newline"]:
            text = _drop_final_line_break(text)

        count = count_segments(text)
        self.stdout.write(json.dumps(count.as_dict()))

        if options["max_parts"] is not None:
            limit = options["max_parts"] or settings.TMC_MAX_PARTS
            if count.parts > limit:
                raise CommandError(
                    f"The text needs {count.parts} parts; the most allowed is {limit}.",
                    returncode=TOO_LONG,
                )
