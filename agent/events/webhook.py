"""Webhook delivery: one signed ``POST`` of an event's JSON to ``WEBCALL_EVENTS_URL``, retried within bounds.

Request: ``Content-Type: application/json``, the body `Event.to_json`, and headers
``Webcall-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (see `agent.events.signing`),
``Idempotency-Key: <job id>:<event type>`` (the same on every attempt and re-send), ``Webcall-Event-Id`` and
``Webcall-Event-Type``.

Retry policy: a 5xx answer, a connection error or an attempt timeout is retried after a backoff (0.5 s, then 1 s),
up to `Policy.attempts` tries and never past `Policy.budget_s` in all (3 tries within 10 s by default). Any other
answer is final: 2xx delivered, 4xx (the receiver refused this request; sending it again would not change that) not
delivered. Delivery never raises: the outcome is returned and logged with counts and codes only, never the URL
(it may hold a token) or the body (caller data).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Final

import aiohttp

from agent.events.payload import Event
from agent.events.signing import SIGNATURE_HEADER, sign
from agent.log import get_logger

logger = get_logger("events.webhook")

USER_AGENT: Final = "webcall-agent"


@dataclass(frozen=True, kw_only=True)
class Policy:
    attempts: int = 3
    budget_s: float = 10.0
    attempt_timeout_s: float = 4.0
    backoff_s: float = 0.5


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What became of one event: delivered or not, the last HTTP status (None: no answer), attempts made."""

    delivered: bool
    status: int | None
    attempts: int


class WebhookSink:
    """POSTs events to one URL, signed with one secret."""

    def __init__(self, *, url: str, secret: str, policy: Policy | None = None) -> None:
        self._url = url
        self._secret = secret
        self.policy = policy if policy is not None else Policy()

    async def send(self, event: Event, *, job_id: str) -> Delivery:
        """Deliver `event` under the retry policy. Never raises (cancellation aside)."""
        del job_id  # the idempotency key already names the job
        body = event.to_json()
        status: int | None = None
        attempts = 0
        deadline = time.monotonic() + self.policy.budget_s
        # The deadline is checked between attempts; the outer timeout only guards against a stuck connector.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.policy.budget_s + 1.0), aiohttp.ClientSession() as http:
                while attempts < self.policy.attempts and time.monotonic() < deadline:
                    attempts += 1
                    status = await self._attempt(http, event=event, body=body, deadline=deadline)
                    if status is not None and status < 500:
                        break
                    pause = self.policy.backoff_s * 2 ** (attempts - 1)
                    if attempts >= self.policy.attempts or time.monotonic() + pause >= deadline:
                        break
                    await asyncio.sleep(pause)
        delivered = status is not None and 200 <= status < 300
        extra = {"event_type": event.type, "event_id": event.id, "status": status, "attempts": attempts}
        if delivered:
            logger.info("call event delivered", extra=extra)
        else:
            logger.error("call event not delivered", extra=extra)
        return Delivery(delivered=delivered, status=status, attempts=attempts)

    async def _attempt(self, http: aiohttp.ClientSession, *, event: Event, body: bytes, deadline: float) -> int | None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": event.idempotency_key,
            "Webcall-Event-Id": event.id,
            "Webcall-Event-Type": event.type,
            SIGNATURE_HEADER: sign(self._secret, timestamp=int(time.time()), body=body),
        }
        timeout = aiohttp.ClientTimeout(
            total=max(0.01, min(self.policy.attempt_timeout_s, deadline - time.monotonic()))
        )
        try:
            async with http.post(self._url, data=body, headers=headers, timeout=timeout) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            # The exception text can carry the URL (and a token in it): only its type is logged.
            logger.warning("call event attempt failed", extra={"event_type": event.type, "error": type(error).__name__})
            return None
