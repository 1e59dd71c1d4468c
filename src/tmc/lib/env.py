"""Typed readers for configuration held in environment variables.

Each reader fails loudly with the variable's name on a value it cannot use,
so a misconfigured deployment stops at start rather than at the first request.
A ``NAME_FILE`` variable may hold the path of a file with the value instead,
which keeps secrets out of the process environment listing.
"""

from __future__ import annotations

import os
from pathlib import Path

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class ConfigurationError(Exception):
    """An environment variable holds a value the platform cannot use."""


def read_str(name: str, default: str = "") -> str:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"{name}_FILE points to {file_name!r}, which cannot be read: "
                f"{exc.strerror}"
            ) from exc
    return os.environ.get(name, default)


def read_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(
        f"{name}={raw!r} is not a yes/no value; use one of 1, true, yes, on, "
        "0, false, no, off"
    )


def read_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from exc
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}")
    return value


def read_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from exc
    if not minimum <= value <= maximum:
        raise ConfigurationError(
            f"{name}={value} must lie between {minimum} and {maximum}"
        )
    return value


def read_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def read_home() -> Path:
    """The data folder (TMC_HOME): database, queue, keys and mail live here."""
    return Path(read_str("TMC_HOME", "var")).resolve()
