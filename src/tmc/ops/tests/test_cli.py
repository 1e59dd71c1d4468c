"""The ``tmc`` command as an operator runs it: a separate process, real files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON = sys.executable


def tmc(
    *args: str, home: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TMC_") and key != "DJANGO_SETTINGS_MODULE"
    }
    environment.update({"TMC_HOME": str(home), **env})
    return subprocess.run(
        [PYTHON, "-m", "tmc", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "home"
    result = tmc("init", home=path)
    assert result.returncode == 0, result.stderr
    return path


def test_init_creates_private_secrets_and_is_safe_to_repeat(home: Path) -> None:
    key_before = (home / "master.key").read_text()

    again = tmc("init", home=home)

    assert again.returncode == 0, again.stderr
    assert (home / "master.key").read_text() == key_before
    assert (home / "tmc.sqlite3").exists()
    for name in ["secret_key", "master.key"]:
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
        assert (home / name).read_text().strip() not in again.stdout
    assert "Created" not in again.stdout


def test_create_account_reads_the_password_from_stdin(home: Path) -> None:
    result = tmc(
        "create-account",
        "--name",
        "Initech",
        "--username",
        "initech-boss",
        "--email",
        "boss@initech.example",
        home=home,
        stdin="Tps-Rep0rts-Daily\n",
    )

    assert result.returncode == 0, result.stderr
    assert "with Controller 'initech-boss'" in result.stdout
    assert "Tps-Rep0rts-Daily" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "error"),
    [
        (
            ["--name", "X", "--username", "x-boss", "--email", "x@x.example"],
            "",
            "No password",
        ),
        (
            ["--name", "X", "--username", "x-boss", "--email", "x@x.example"],
            "short1\n",
            "too short",
        ),
        (
            ["--name", "X", "--username", "x-boss", "--email", "x@x.example"],
            "lettersonlypassword\n",
            "mix letters and numbers",
        ),
        (
            ["--name", "X", "--username", "x", "--email", "x@x.example"],
            "Good-passw0rd\n",
            "username",
        ),
        (
            ["--name", "X", "--username", "x-boss", "--email", "not-an-email"],
            "Good-passw0rd\n",
            "email",
        ),
        (
            [
                "--name",
                "X",
                "--username",
                "x-boss",
                "--email",
                "x@x.example",
                "--package",
                "Nope",
            ],
            "Good-passw0rd\n",
            "No package named 'Nope'",
        ),
        (["--name", "X", "--username", "x-boss"], "Good-passw0rd\n", "--email"),
    ],
)
def test_create_account_refuses_bad_input_and_creates_nothing(
    home: Path, args: list[str], stdin: str, error: str
) -> None:
    result = tmc("create-account", *args, home=home, stdin=stdin)

    assert result.returncode != 0
    assert error in result.stderr
    listing = tmc(
        "manage",
        "shell",
        "--verbosity=0",
        "-c",
        "from tmc.accounts.models import Organisation as O; "
        "print(O.objects.filter(name='X').count())",
        home=home,
    )
    assert listing.stdout.strip() == "0"


def test_a_password_is_never_accepted_as_an_argument(home: Path) -> None:
    result = tmc(
        "create-account",
        "--name",
        "Y",
        "--username",
        "y-boss",
        "--email",
        "y@y.example",
        "--password",
        "Visible-in-ps-1",
        home=home,
        stdin="Good-passw0rd\n",
    )

    assert result.returncode != 0
    assert "unrecognized arguments: --password" in result.stderr


def test_an_unknown_command_is_an_error(home: Path) -> None:
    result = tmc("launch", home=home)

    assert result.returncode == 2
    assert "unknown command 'launch'" in result.stderr


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"TMC_DEBUG": "perhaps"}, "TMC_DEBUG='perhaps' is not a yes/no value"),
        ({"TMC_DATABASE_URL": "mysql://db/tmc"}, "scheme 'mysql' is not supported"),
        ({"TMC_REDIS_URL": "http://cache"}, "TMC_REDIS_URL must start with"),
        ({"TMC_EMAIL_URL": "carrier-pigeon://x"}, "TMC_EMAIL_URL scheme"),
        ({"TMC_MAX_PARTS": "0"}, "TMC_MAX_PARTS=0 must be at least 1"),
        ({"TMC_ALLOWED_HOSTS": " , "}, "TMC_ALLOWED_HOSTS names no host"),
        ({"TMC_SIMULATOR_FAILURE_RATE": "2"}, "must lie between 0.0 and 1.0"),
    ],
)
def test_misconfiguration_stops_at_start_with_a_clear_message(
    home: Path, env: dict[str, str], error: str
) -> None:
    result = tmc("manage", "check", home=home, **env)

    assert result.returncode == 2
    assert "tmc: configuration error:" in result.stderr
    assert error in result.stderr
    assert "Traceback" not in result.stderr


def test_serving_without_init_says_to_run_init(tmp_path: Path) -> None:
    result = tmc("serve", home=tmp_path / "empty")

    assert result.returncode == 2
    assert "run `tmc init`" in result.stderr


def test_demo_seeds_once_and_prints_a_working_login(home: Path) -> None:
    first = tmc("demo", "--seed-only", home=home)
    second = tmc("demo", "--seed-only", home=home)

    assert first.returncode == 0, first.stderr
    password = (home / "demo-password").read_text().strip()
    assert f"Password  {password}" in first.stdout
    assert f"Password  {password}" in second.stdout
    assert stat.S_IMODE((home / "demo-password").stat().st_mode) == 0o600
    check = tmc(
        "manage",
        "shell",
        "--verbosity=0",
        "-c",
        "from django.contrib.auth import authenticate; "
        "from tmc.accounts.models import Organisation as O; "
        f"print(authenticate(username='demo', password='{password}') is not None, "
        "O.objects.filter(name='Demo Ltd').count())",
        home=home,
    )
    assert check.stdout.split() == ["True", "1"]


def test_a_new_demo_password_file_still_prints_a_working_login(home: Path) -> None:
    """The database outlived the password file: the printed login must work."""
    tmc("demo", "--seed-only", home=home)
    (home / "demo-password").unlink()

    again = tmc("demo", "--seed-only", home=home)

    assert again.returncode == 0, again.stderr
    password = (home / "demo-password").read_text().strip()
    assert f"Password  {password}" in again.stdout
    check = tmc(
        "manage",
        "shell",
        "--verbosity=0",
        "-c",
        "from django.contrib.auth import authenticate; "
        f"print(authenticate(username='demo', password='{password}') is not None)",
        home=home,
    )
    assert check.stdout.split() == ["True"]
