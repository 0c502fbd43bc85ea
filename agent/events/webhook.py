"""The webhook sender: one signed ``POST`` of an event's JSON to ``WEBCALL_EVENTS_URL``. It knows nothing of retries
(`agent.events.policy`) or of files (`agent.events.outbox`).

Request: ``Content-Type: application/json``, the body `Event.to_json`, the Standard Webhooks headers
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: `agent.events.signing`), ``Idempotency-Key: <job id>:
<event type>`` (the same on every attempt and re-send), ``Webcall-Event-Id`` and ``Webcall-Event-Type``.

URLs: ``https://`` only; ``http://`` with ``WEBCALL_EVENTS_ALLOW_HTTP=true`` (a development stack: the events carry
caller data and the signature does not hide it). Logs carry codes and event ids, never the URL (it may hold a
token) or the body (caller data).
"""

from __future__ import annotations

import time
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from agent.events.payload import Event
from agent.events.signing import Signer
from agent.log import get_logger

logger = get_logger(__name__)

USER_AGENT: Final = "webcall-agent"


def url_refusal(url: str, *, allow_http: bool) -> str | None:
    """Why the webhook must not post to `url` (a static reason, no part of the URL), or None."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return None
    if scheme == "http":
        return "WEBCALL_EVENTS_URL is http:// (allowed only with WEBCALL_EVENTS_ALLOW_HTTP=true, for development)"
    return "WEBCALL_EVENTS_URL is not an https:// URL"


class WebhookSender:
    """POSTs events to one URL, signed by `signer`."""

    def __init__(self, *, url: str, signer: Signer) -> None:
        self._url = url
        self._signer = signer

    async def post(self, event: Event, *, timeout_s: float) -> int | None:
        """One attempt: the receiver's status, or None when no answer came within `timeout_s`. Never raises
        (cancellation aside)."""
        body = event.to_json()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": event.idempotency_key,
            "Webcall-Event-Id": event.id,
            "Webcall-Event-Type": event.type,
            **self._signer.headers(event_id=event.id, body=body, timestamp=int(time.time())),
        }
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(self._url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r,
            ):
                await r.read()
                return r.status
        except (aiohttp.ClientError, TimeoutError) as error:
            # The exception text can carry the URL (and a token in it): only its type is logged.
            logger.warning("call event attempt failed", extra={"event_type": event.type, "error": type(error).__name__})
            return None
