"""Secrets that live in TMC_HOME: the web signing key, the master key and
the API key pepper.

They are generated once by ``tmc init`` with owner-only permissions and are
never printed, logged or stored in the database. The master key wraps the
per-organisation data keys used for encryption at rest. The API key pepper
keys the HMAC under which API keys are stored: a stolen database alone
cannot be used to test guesses, and a lookup stays one indexed query.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

# File names, not secrets.
SECRET_KEY_FILE = "secret_key"  # noqa: S105  # nosec B105
MASTER_KEY_FILE = "master.key"
MASTER_KEY_BYTES = 32  # AES-256
API_KEY_PEPPER_FILE = "api_key_pepper"


class MissingSecretError(Exception):
    """A secret that ``tmc init`` creates is not in TMC_HOME."""


def _write_private(path: Path, content: str) -> None:
    # O_EXCL so that two processes initialising at once cannot overwrite a key
    # the other has already started using; mode 0600 from the first byte.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(content + "\n")


def ensure_secrets(home: Path) -> list[str]:
    """Create the missing secrets in ``home``; return the names created."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    created = []
    generators: dict[str, Callable[[], str]] = {
        SECRET_KEY_FILE: lambda: secrets.token_urlsafe(50),
        MASTER_KEY_FILE: lambda: base64.b64encode(
            secrets.token_bytes(MASTER_KEY_BYTES)
        ).decode("ascii"),
        API_KEY_PEPPER_FILE: lambda: secrets.token_urlsafe(32),
    }
    for name, generate in generators.items():
        path = home / name
        if path.exists():
            continue
        try:
            _write_private(path, generate())
        except FileExistsError:
            continue
        created.append(name)
    return created


def read_secret(home: Path, name: str) -> str:
    path = home / name
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise MissingSecretError(
            f"{path} does not exist: run `tmc init` to create the secrets"
        ) from exc
    if not value:
        raise MissingSecretError(f"{path} is empty: remove it and run `tmc init`")
    if path.stat().st_mode & 0o077:
        raise MissingSecretError(
            f"{path} is readable by other users: run `chmod 600 {path}`"
        )
    return value


def read_master_key(home: Path) -> bytes:
    key = base64.b64decode(read_secret(home, MASTER_KEY_FILE), validate=True)
    if len(key) != MASTER_KEY_BYTES:
        raise MissingSecretError(f"{home / MASTER_KEY_FILE} is not a 256-bit key")
    return key


RETIRED_MASTER_DIR = "retired-master-keys"


def master_keys(home: Path) -> dict[str, bytes]:
    """The current master key (first) and any retired ones, by fingerprint.

    Retired keys stay readable until every data key is re-wrapped with the
    current one (``tmc keys rotate --master`` does both and then removes them).
    """
    from tmc.lib.crypto import fingerprint

    current = read_master_key(home)
    found = {fingerprint(current): current}
    retired = home / RETIRED_MASTER_DIR
    if retired.is_dir():
        for path in sorted(retired.glob("*.key")):
            key = base64.b64decode(path.read_text(encoding="ascii").strip())
            found.setdefault(fingerprint(key), key)
    return found


def master_key_replace(home: Path) -> tuple[str, str]:
    """Make a new current master key, keeping the old one as retired.

    Returns the fingerprints (old, new). The old key is written to the
    retired folder before the current file is replaced, so a crash at any
    point leaves every wrapped key readable.
    """
    from tmc.lib.crypto import fingerprint

    old = read_master_key(home)
    retired = home / RETIRED_MASTER_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    retired_path = retired / f"{fingerprint(old)}.key"
    if not retired_path.exists():
        _write_private(retired_path, base64.b64encode(old).decode("ascii"))
    new = secrets.token_bytes(MASTER_KEY_BYTES)
    staging = home / (MASTER_KEY_FILE + ".new")
    staging.unlink(missing_ok=True)
    _write_private(staging, base64.b64encode(new).decode("ascii"))
    os.replace(staging, home / MASTER_KEY_FILE)
    return fingerprint(old), fingerprint(new)


def retired_master_keys_remove(home: Path, keep: set[str]) -> int:
    """Delete retired master keys whose fingerprint is not in ``keep``."""
    from tmc.lib.crypto import fingerprint

    removed = 0
    retired = home / RETIRED_MASTER_DIR
    if retired.is_dir():
        for path in retired.glob("*.key"):
            key = base64.b64decode(path.read_text(encoding="ascii").strip())
            if fingerprint(key) not in keep:
                path.unlink()
                removed += 1
    return removed


def master_seal(home: Path, purpose: str, value: str, *, owner: str) -> str:
    """Seal a value that belongs to no organisation under the master key.

    The key is derived for ``purpose`` and the value bound to ``owner`` (the
    row it belongs to), so it opens for no other purpose or row.
    """
    from tmc.lib.crypto import derive_key, seal

    return seal(derive_key(read_master_key(home), purpose), value, associated=owner)


def master_open(
    home: Path, purpose: str, token: str, *, owner: str
) -> tuple[str, bool]:
    """Open a ``master_seal`` value: the value, and whether the current key sealed it.

    A retired master key still opens it, between a master key rotation
    writing the new key and the value's owner re-sealing it (or after a
    crash in between); whoever registered the value re-seals it then.
    """
    from tmc.lib.crypto import DecryptionError, derive_key, unseal

    for position, master in enumerate(master_keys(home).values()):
        try:
            value = unseal(derive_key(master, purpose), token, associated=owner)
        except DecryptionError:
            continue
        return value, position == 0
    raise DecryptionError(f"a {purpose} value opens with no master key")
