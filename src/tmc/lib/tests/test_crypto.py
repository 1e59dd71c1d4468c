from __future__ import annotations

import os

import pytest

from tmc.lib.crypto import (
    BlindIndexer,
    DecryptionError,
    Sealer,
    blind_index,
    derive_key,
    seal,
    unseal,
)

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


def test_a_bulk_sealer_seals_what_unseal_opens_and_binds_it_the_same() -> None:
    key = derive_key(MASTER, "contacts")
    sealer = Sealer(key)

    tokens = [sealer.seal("+447400123456", associated=f"row:{i}") for i in range(3)]

    assert len(set(tokens)) == 3
    assert unseal(key, tokens[1], associated="row:1") == "+447400123456"
    with pytest.raises(DecryptionError):
        unseal(key, tokens[1], associated="row:2")


def test_a_bulk_sealer_puts_its_prefix_before_the_token() -> None:
    key = derive_key(MASTER, "contacts")

    token = Sealer(key, prefix="k1:").seal("secret", associated="row:1")

    assert token.startswith("k1:")
    assert unseal(key, token.removeprefix("k1:"), associated="row:1") == "secret"


def test_a_bulk_indexer_gives_the_blind_index_of_each_value() -> None:
    key = derive_key(MASTER, "index")
    indexer = BlindIndexer(key)

    assert [indexer.index(v) for v in ("+447400123456", "+447400123457")] == [
        blind_index(key, "+447400123456"),
        blind_index(key, "+447400123457"),
    ]
