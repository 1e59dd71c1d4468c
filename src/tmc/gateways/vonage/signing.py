"""Vonage's signature on webhooks (signed delivery receipts and inbound SMS).

Vonage adds ``timestamp``, ``nonce`` and ``sig`` to the parameters. The
signature covers every other parameter, sorted by name, each written as
``&name=value`` with ``&`` and ``=`` in values replaced by ``_``: with the
"md5hash" method, the MD5 of that text followed by the signature secret;
with "md5", "sha1", "sha256" or "sha512", its HMAC keyed by the secret.
Hex digits are compared without regard to case.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

MAX_AGE_SECONDS = 300
METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")


def _signed_text(params: Mapping[str, str]) -> bytes:
    text = "".join(
        "&{}={}".format(name, str(params[name]).replace("&", "_").replace("=", "_"))
        for name in sorted(params)
        if name != "sig"
    )
    return text.encode()


def sign(secret: str, params: Mapping[str, str], *, method: str = "sha256") -> str:
    text = _signed_text(params)
    if method == "md5hash":
        return hashlib.md5(text + secret.encode(), usedforsecurity=False).hexdigest()
    if method not in METHODS:
        raise ValueError(f"{method!r} is not a Vonage signature method")
    return hmac.new(secret.encode(), text, method).hexdigest()


def signature_valid(
    secret: str,
    params: Mapping[str, str],
    *,
    method: str = "sha256",
    now: float | None = None,
) -> bool:
    """Whether ``params`` carry a good, fresh signature by ``secret``."""
    given = str(params.get("sig", ""))
    timestamp = str(params.get("timestamp", ""))
    if not secret or not given or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    expected = sign(secret, params, method=method)
    # Constant time, so a forger learns nothing from how long a guess took.
    return hmac.compare_digest(expected.lower(), given.lower())
