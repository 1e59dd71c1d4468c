"""``tmc segments``: the compose page's count, from a terminal or a script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import BytesIO, StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tmc.lib.keys import ensure_secrets
from tmc.lib.segments import count_segments

EMOJI_TEXT = "Running late, sorry 😀"
EXTENSION_TEXT = "Price: 10€ [offer]"


def _run(stdin: bytes, *args: str) -> dict[str, object]:
    out = StringIO()
    call_command("segments", *args, stdin=BytesIO(stdin), stdout=out)
    printed: dict[str, object] = json.loads(out.getvalue())
    return printed


@pytest.mark.parametrize(
    "text",
    [EMOJI_TEXT, EXTENSION_TEXT, "a" * 161, "✓" * 71, "€" * 81, "", "Olá\nhi"],
)
def test_prints_exactly_what_the_compose_page_counts(text: str) -> None:
    assert _run(text.encode()) == count_segments(text).as_dict()


def test_an_emoji_sends_as_ucs2_and_takes_two_units() -> None:
    printed = _run(EMOJI_TEXT.encode())

    assert printed["encoding"] == "UCS-2"
    assert printed["characters"] == 21
    assert printed["units"] == 22
    assert printed["part_lengths"] == [22]


def test_an_extension_character_stays_gsm7_and_takes_two_septets() -> None:
    printed = _run(EXTENSION_TEXT.encode())

    assert printed["encoding"] == "GSM-7"
    assert printed["characters"] == 18
    assert printed["units"] == 21
    assert printed["parts"] == 1


def test_one_final_line_break_is_not_counted_unless_asked() -> None:
    assert _run(b"hello\n")["characters"] == 5
    assert _run(b"hello\r\n")["characters"] == 5
    assert _run(b"hello\n\n")["characters"] == 6
    assert _run(b"hello\n", "--keep-newline")["characters"] == 6


def test_a_byte_order_mark_is_not_part_of_the_text() -> None:
    printed = _run("\ufeffhello".encode())

    assert (printed["encoding"], printed["characters"]) == ("GSM-7", 5)


@override_settings(TMC_MAX_PARTS=2)
def test_max_parts_refuses_a_text_over_the_configured_limit() -> None:
    out = StringIO()

    with pytest.raises(CommandError, match="needs 3 parts; the most allowed is 2") as e:
        call_command("segments", "--max-parts", stdin=BytesIO(b"a" * 307), stdout=out)

    assert e.value.returncode == 1
    # The count is still printed, for a script that wants to say by how much.
    assert json.loads(out.getvalue())["parts"] == 3
    assert _run(b"a" * 306, "--max-parts")["parts"] == 2


def test_max_parts_takes_an_explicit_limit() -> None:
    with pytest.raises(CommandError, match="needs 2 parts; the most allowed is 1"):
        _run(b"a" * 161, "--max-parts", "1")
    assert _run(b"a" * 160, "--max-parts", "1")["parts"] == 1
    with pytest.raises(CommandError, match="not a whole number above 0"):
        _run(b"hi", "--max-parts", "0")


def test_input_that_is_not_utf8_is_refused_with_status_2() -> None:
    with pytest.raises(CommandError, match=r"not UTF-8 text \(byte 3 ") as e:
        _run(b"ab\xe9cd")

    assert e.value.returncode == 2


# --- as an operator runs it: a separate process ---------------------------------


def _tmc(home: Path, *args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TMC_") and key != "DJANGO_SETTINGS_MODULE"
    }
    environment["TMC_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "tmc", "segments", *args],
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("segments") / "home"
    ensure_secrets(path)
    return path


def test_the_tmc_command_reads_stdin_and_prints_json(home: Path) -> None:
    text = "Meet at the café 😀 {room 2}"

    result = _tmc(home, stdin=f"{text}\n".encode())

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == count_segments(text).as_dict()


def test_the_tmc_command_fails_the_check_with_a_clear_message(home: Path) -> None:
    result = _tmc(home, "--max-parts", stdin=("€" * 500).encode())

    assert result.returncode == 1
    assert json.loads(result.stdout)["parts"] == 7
    assert b"The text needs 7 parts; the most allowed is 6." in result.stderr
