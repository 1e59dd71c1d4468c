from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tmc.lib import env, keys


def test_bool_reader_refuses_ambiguous_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMC_SOMETHING", "maybe")

    with pytest.raises(env.ConfigurationError, match="TMC_SOMETHING"):
        env.read_bool("TMC_SOMETHING")


def test_int_reader_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMC_COUNT", "ten")

    with pytest.raises(env.ConfigurationError, match="TMC_COUNT='ten'"):
        env.read_int("TMC_COUNT", 1)


def test_file_variant_supplies_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    monkeypatch.setenv("TMC_TOKEN", "ignored")
    monkeypatch.setenv("TMC_TOKEN_FILE", str(secret))

    assert env.read_str("TMC_TOKEN") == "s3cret-value"


def test_secrets_are_created_once_and_private(tmp_path: Path) -> None:
    home = tmp_path / "home"

    first = keys.ensure_secrets(home)
    key_before = (home / keys.MASTER_KEY_FILE).read_text()
    second = keys.ensure_secrets(home)

    assert sorted(first) == sorted(
        [keys.SECRET_KEY_FILE, keys.MASTER_KEY_FILE, keys.API_KEY_PEPPER_FILE]
    )
    assert second == []
    assert (home / keys.MASTER_KEY_FILE).read_text() == key_before
    for name in first:
        mode = stat.S_IMODE((home / name).stat().st_mode)
        assert mode == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    keys.ensure_secrets(tmp_path)
    (tmp_path / keys.SECRET_KEY_FILE).chmod(0o644)

    with pytest.raises(keys.MissingSecretError, match="chmod 600"):
        keys.read_secret(tmp_path, keys.SECRET_KEY_FILE)


def test_a_missing_secret_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(keys.MissingSecretError, match="tmc init"):
        keys.read_secret(tmp_path, keys.SECRET_KEY_FILE)
