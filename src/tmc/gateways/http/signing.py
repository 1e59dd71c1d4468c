"""The signature on callbacks from an HTTP provider: HMAC-SHA256, timestamped.

The provider sends ``X-TMC-Timestamp`` (Unix seconds) and ``X-TMC-Signature``
(hex HMAC-SHA256 of ``"<timestamp>." + body`` with the shared secret). The
timestamp is inside the signed text, so an old callback cannot be replayed
with a fresh one, and one older than five minutes is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_AGE_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    text = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()


def signature_valid(
    secret: str,
    *,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float | None = None,
) -> bool:
    if not secret or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    # Constant time: the comparison must not tell an attacker how much of a
    # guessed signature was right.
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
