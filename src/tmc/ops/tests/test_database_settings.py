"""How TMC_DATABASE_URL and its companions become Django's DATABASES entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tmc.lib.env import ConfigurationError
from tmc.settings import _database

POSTGRES = "postgres://tmc@db.example:5432/tmc"


def test_postgres_keeps_connections_open_without_a_pool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TMC_DB_POOL_SIZE", raising=False)
    monkeypatch.setenv("TMC_DB_CONN_MAX_AGE", "60")

    config = _database(POSTGRES, tmp_path)

    assert config["CONN_MAX_AGE"] == 60
    assert "pool" not in config.get("OPTIONS", {})


def test_a_pool_replaces_kept_open_connections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Django refuses a pool with CONN_MAX_AGE, so the pool wins."""
    monkeypatch.setenv("TMC_DB_POOL_SIZE", "8")
    monkeypatch.setenv("TMC_DB_CONN_MAX_AGE", "60")

    config = _database(POSTGRES, tmp_path)

    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"]["pool"]["max_size"] == 8
    assert config["CONN_HEALTH_CHECKS"] is True


def test_sqlite_has_no_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMC_DB_POOL_SIZE", "8")

    config = _database("", tmp_path)

    assert "pool" not in config["OPTIONS"]


def test_a_negative_pool_size_stops_the_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMC_DB_POOL_SIZE", "-1")

    with pytest.raises(ConfigurationError):
        _database(POSTGRES, tmp_path)
