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

With an `Outbox` (what `agent.events.emitter.sinks_from` always gives it), each event is written to disk before it
is posted and settled after: deleted when delivered; pending for redelivery after a 5xx, 408/425/429, a connection
error or a timeout (or when the process died mid-send); under ``dead/`` after any other 4xx. While an event of a job
is pending, the job's later events queue behind it unsent, so ``call.ended`` never reaches the receiver before its
``call.started``. `deliver` is the bare policy, which the outbox's redeliverer uses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import aiohttp

from agent.events.payload import Event
from agent.events.signing import SIGNATURE_HEADER, sign
from agent.log import get_logger

if TYPE_CHECKING:
    from agent.events.outbox import Outbox

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
    """What became of one event: delivered or not, the last HTTP status (None: no answer), attempts made, and where
    an undelivered event was kept (``outbox``: pending redelivery; ``dead``: refused; None: not kept)."""

    delivered: bool
    status: int | None
    attempts: int
    kept: Literal["outbox", "dead"] | None = None


class WebhookSink:
    """POSTs events to one URL, signed with one secret; keeps what it could not deliver in `outbox`, if given."""

    def __init__(self, *, url: str, secret: str, policy: Policy | None = None, outbox: Outbox | None = None) -> None:
        self._url = url
        self._secret = secret
        self.policy = policy if policy is not None else Policy()
        self.outbox = outbox

    async def send(self, event: Event, *, job_id: str) -> Delivery:
        """Deliver `event` under the retry policy, through the outbox when there is one. Never raises (cancellation
        aside)."""
        if self.outbox is not None:
            return await self.outbox.send(event, job_id=job_id, deliver=self._deliver_logged)
        return await self._deliver_logged(event)

    async def _deliver_logged(self, event: Event) -> Delivery:
        delivery = await self.deliver(event)
        extra = {
            "event_type": event.type,
            "event_id": event.id,
            "status": delivery.status,
            "attempts": delivery.attempts,
        }
        if delivery.delivered:
            logger.info("call event delivered", extra=extra)
        else:
            logger.error("call event not delivered", extra=extra)
        return delivery

    async def deliver(self, event: Event) -> Delivery:
        """POST `event` under the retry policy; the outcome, not logged. Never raises (cancellation aside)."""
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
