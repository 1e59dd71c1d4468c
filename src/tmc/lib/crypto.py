"""Authenticated encryption for small secrets, with purpose-bound keys.

Keys for each purpose are derived from the master key with HKDF-SHA256, so
a key for one purpose can never open another purpose's data. Each value is
sealed with AES-256-GCM, a fresh 96-bit nonce, and associated data that
names what the value belongs to (a user id, say): a ciphertext copied to
another row fails to open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The value was not sealed with this key for this owner, or was altered."""


def derive_key(master_key: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"tmc:{purpose}".encode(),
    ).derive(master_key)


class Sealer:
    """Seals many values under one key, setting up the cipher only once.

    For bulk work (an import, a campaign) where building an ``AESGCM`` for
    each value would cost as much as the encryption itself. ``prefix`` is put
    before each token as it is (a key id and its separator, say). Every value
    still gets a fresh random nonce.
    """

    def __init__(self, key: bytes, *, prefix: str = "") -> None:
        self._encrypt = AESGCM(key).encrypt
        self._prefix = f"{prefix}{VERSION}:"

    def seal(self, plaintext: str, *, associated: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._encrypt(nonce, plaintext.encode(), associated.encode())
        token = binascii.b2a_base64(nonce + sealed, newline=False)
        return self._prefix + token.translate(_URLSAFE).decode("ascii")


# What base64.urlsafe_b64encode does, without its per-call overhead.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def seal(key: bytes, plaintext: str, *, associated: str) -> str:
    return Sealer(key).seal(plaintext, associated=associated)


def unseal(key: bytes, token: str, *, associated: str) -> str:
    version, _, body = token.partition(":")
    if version != VERSION:
        raise DecryptionError(f"unknown format {version!r}")
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        plain = AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated.encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("the value cannot be opened") from exc
    return plain.decode()


def seal_bytes(key: bytes, plaintext: bytes, *, associated: str) -> str:
    """Seal raw bytes (a data key being wrapped) as text."""
    return seal(key, base64.b64encode(plaintext).decode("ascii"), associated=associated)


def unseal_bytes(key: bytes, token: str, *, associated: str) -> bytes:
    return base64.b64decode(unseal(key, token, associated=associated))


def fingerprint(key: bytes) -> str:
    """A short, public name for a key: enough to find it, useless to use it."""
    return hashlib.sha256(b"tmc-key-id:" + key).hexdigest()[:12]


def blind_index(index_key: bytes, value: str) -> str:
    """A keyed, deterministic token for equality lookups on a secret value.

    HMAC-SHA256 truncated to 128 bits: equal inputs give equal tokens within
    one organisation, while the token reveals nothing without the key.
    """
    return hmac.new(index_key, value.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class SealingKeys:
    """What sealing and indexing one owner's values in bulk takes.

    ``token_prefix`` goes before each token (the key's id), and
    ``associated_prefix`` before each value's associated data (its owner).
    Secrets: for this machine's own processes only, never logged or stored.
    """

    token_prefix: str
    associated_prefix: str
    data_key: bytes = field(repr=False)
    index_key: bytes = field(repr=False)


class BlindIndexer:
    """``blind_index`` for many values under one key.

    The HMAC is keyed once and copied for each value, which saves most of
    its cost on short values.
    """

    def __init__(self, index_key: bytes) -> None:
        self._keyed = hmac.new(index_key, digestmod=hashlib.sha256)

    def index(self, value: str) -> str:
        mac = self._keyed.copy()
        mac.update(value.encode())
        return mac.hexdigest()[:32]
