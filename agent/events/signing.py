"""Webhook signatures: Standard Webhooks 1.0, made with the `standardwebhooks` library.

Each request carries (`Signer.headers`):

    webhook-id: <event id>                   the same on every attempt and re-send of the event
    webhook-timestamp: <unix s>              taken at each attempt
    webhook-signature: v1,<base64>[ v1,...]  HMAC-SHA256 of "<id>.<timestamp>.<body>", one per secret

Secrets are ``whsec_<base64 of 24 to 64 bytes>`` (`new_secret` makes one). ``WEBCALL_EVENTS_SECRET`` holds one, or
several separated by spaces or commas while a secret is rotated: every request is then signed with each, so a
receiver that holds either the old or the new one verifies it. A receiver verifies with the same library::

    from standardwebhooks import Webhook, WebhookVerificationError
    Webhook(secret).verify(raw_body, request.headers)   # raises on a bad signature or a timestamp 5 min away

The 5-minute window stops replays of an old request; ``Idempotency-Key`` makes a replay inside it harmless.

The older header, ``Webcall-Signature: t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`` keyed by the first secret's
text, is added with ``WEBCALL_EVENTS_LEGACY_SIGNATURE=true`` for receivers not yet moved (`sign`, `verify`); it goes
away in the next release.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from standardwebhooks import Webhook

from agent.errors import SettingsError

SECRET_PREFIX: Final = "whsec_"
SECRET_SETTING: Final = "WEBCALL_EVENTS_SECRET"
SIGNATURE_HEADER: Final = "Webcall-Signature"
DEFAULT_TOLERANCE_S: Final = 300.0
SECRET_BYTES: Final = (24, 64)


def new_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def parse_secrets(text: str) -> tuple[str, ...]:
    """The secrets in a ``WEBCALL_EVENTS_SECRET`` value; `SettingsError` (no value in it) unless each is a
    ``whsec_`` secret of 24 to 64 bytes."""
    secrets = tuple(part for part in re.split(r"[\s,]+", text) if part)
    if not secrets:
        raise SettingsError("WEBCALL_EVENTS_SECRET is empty", fields=(SECRET_SETTING,))
    for secret in secrets:
        if not secret.startswith(SECRET_PREFIX):
            raise SettingsError("WEBCALL_EVENTS_SECRET is not a whsec_ secret", fields=(SECRET_SETTING,))
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError("WEBCALL_EVENTS_SECRET is not base64 after whsec_", fields=(SECRET_SETTING,)) from None
        if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
            raise SettingsError("WEBCALL_EVENTS_SECRET is not 24 to 64 bytes", fields=(SECRET_SETTING,))
    return secrets


class Signer:
    """Signs request bodies with every one of `secrets` (already checked by `parse_secrets`)."""

    def __init__(self, secrets: Sequence[str], *, legacy: bool = False) -> None:
        self._hooks = [Webhook(secret) for secret in secrets]
        self._legacy_key = secrets[0] if legacy else None

    def headers(self, *, event_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        """The signature headers of one request."""
        moment = datetime.fromtimestamp(timestamp, UTC)
        data = body.decode("utf-8")
        signatures = " ".join(hook.sign(msg_id=event_id, timestamp=moment, data=data) for hook in self._hooks)
        headers = {"webhook-id": event_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}
        if self._legacy_key is not None:
            headers[SIGNATURE_HEADER] = sign(self._legacy_key, timestamp=timestamp, body=body)
        return headers


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """Legacy: the hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under `secret`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, *, timestamp: int, body: bytes) -> str:
    """Legacy: the ``Webcall-Signature`` header value for one request."""
    return f"t={timestamp},v1={signature(secret, timestamp=timestamp, body=body)}"


def verify(secret: str, *, header: str, body: bytes, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S) -> bool:
    """Legacy: True when `header` signs `body` under `secret` with a timestamp within `tolerance_s` of `now`."""
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
