from __future__ import annotations

import os

import pytest

from tmc.lib.crypto import DecryptionError, derive_key, seal, unseal

MASTER = os.urandom(32)


def test_a_sealed_value_opens_with_the_same_key_and_owner() -> None:
    key = derive_key(MASTER, "totp")

    token = seal(key, "JBSWY3DPEHPK3PXP", associated="user:7")

    assert "JBSWY3DP" not in token
    assert unseal(key, token, associated="user:7") == "JBSWY3DPEHPK3PXP"


def test_a_value_copied_to_another_owner_does_not_open() -> None:
    key = derive_key(MASTER, "totp")
    token = seal(key, "secret", associated="user:7")

    with pytest.raises(DecryptionError):
        unseal(key, token, associated="user:8")


def test_a_key_for_another_purpose_does_not_open_it() -> None:
    token = seal(derive_key(MASTER, "totp"), "secret", associated="user:7")

    with pytest.raises(DecryptionError):
        unseal(derive_key(MASTER, "contacts"), token, associated="user:7")


def test_an_altered_value_does_not_open() -> None:
    key = derive_key(MASTER, "totp")
    token = seal(key, "secret", associated="user:7")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]

    with pytest.raises(DecryptionError):
        unseal(key, tampered, associated="user:7")


def test_sealing_twice_gives_different_ciphertexts() -> None:
    key = derive_key(MASTER, "totp")

    assert seal(key, "same", associated="u") != seal(key, "same", associated="u")
