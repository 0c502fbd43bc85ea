"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"``, sent as ``Webcall-Signature: t=<ts>,v1=<hex>``.

A receiver verifies a request like this (what `verify` does):

    1. read the raw request body (bytes, before any JSON parsing) and the ``Webcall-Signature`` header;
    2. take ``t`` (unix seconds) and every ``v1`` from the header;
    3. compute ``hex(HMAC-SHA256(secret, f"{t}." + body))`` and compare it in constant time with a ``v1``;
    4. reject a ``t`` further than the tolerance (5 minutes) from its own clock: that stops replays of an old
       request; the ``Idempotency-Key`` header makes a replay inside the window harmless.

The timestamp is taken at each attempt, so a retried request has a fresh signature over the same body.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "Webcall-Signature"
DEFAULT_TOLERANCE_S: Final = 300.0


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under `secret`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, *, timestamp: int, body: bytes) -> str:
    """The ``Webcall-Signature`` header value for one request."""
    return f"t={timestamp},v1={signature(secret, timestamp=timestamp, body=body)}"


def verify(secret: str, *, header: str, body: bytes, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S) -> bool:
    """True when `header` signs `body` under `secret` with a timestamp within `tolerance_s` of `now`."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
