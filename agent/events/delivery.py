"""`WebhookSink`: a call's events sent live from the job process, through the outbox, under the delivery policy.

It composes the three parts (assembled in `agent.events.sinks`): the `Outbox` (files), the `WebhookSender` (HTTP)
and the `DeliveryPolicy` (what an answer means). A live send:

1. claims the event: written into ``.inflight`` under its job's lock before anything is posted (write-ahead). While
   one of the job's events is pending, or a redeliverer holds the job, the event is queued unsent instead, so
   ``call.ended`` never overtakes ``call.started``;
2. posts it under the policy's live retries;
3. settles the claim by the policy's verdict: deleted, pending for the redeliverer, or under ``dead/``.

A send cancelled at any step leaves the event pending, never lost; a job process killed mid-send leaves its claim
and a lock that the redeliverer takes back after the lease. The one way to lose an event is a disk that refuses
the write (logged as ``call event outbox unavailable``, then ``call event lost`` if the live send fails too).
"""

from __future__ import annotations

import functools
import time
from typing import Literal

from agent.events.files import run_blocking
from agent.events.outbox import Claim, Outbox
from agent.events.payload import Event
from agent.events.policy import Delivery, DeliveryPolicy, Verdict
from agent.events.webhook import WebhookSender
from agent.log import get_logger

logger = get_logger(__name__)


class WebhookSink:
    """Delivers events to the webhook, keeping on disk (in `outbox`, when given) what it could not deliver."""

    def __init__(self, *, sender: WebhookSender, policy: DeliveryPolicy, outbox: Outbox | None = None) -> None:
        self.sender = sender
        self.policy = policy
        self.outbox = outbox

    async def send(self, event: Event, *, job_id: str) -> Delivery:
        """Deliver `event`, durably when there is an outbox. Never raises (cancellation aside)."""
        outbox = self.outbox
        if outbox is None:
            return await self._post(event)
        try:
            claim = await run_blocking(
                functools.partial(outbox.claim_new, event, job_id=job_id, now=time.time()), undo=self._abandon
            )
        except OSError as error:
            logger.error("call event outbox unavailable", extra={"event_id": event.id, "error": type(error).__name__})
            delivery = await self._post(event)
            if not delivery.delivered:
                logger.error("call event lost", extra={"event_type": event.type, "event_id": event.id})
            return delivery
        if claim is None:
            return await self._queue(outbox, event, job_id=job_id)
        try:
            delivery = await self._post(event)
        except BaseException:
            self._abandon(claim)
            raise
        return await self._settle(outbox, claim, delivery)

    async def _post(self, event: Event) -> Delivery:
        delivery = await self.policy.live(lambda timeout_s: self.sender.post(event, timeout_s=timeout_s))
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

    async def _settle(self, outbox: Outbox, claim: Claim, delivery: Delivery) -> Delivery:
        verdict = self.policy.verdict(delivery.status, age_s=claim.record.age_s(time.time()))
        step = functools.partial(self._settle_and_unlock, outbox, claim, delivery=delivery, verdict=verdict)
        try:
            await run_blocking(step)
        except OSError as error:
            # The claim stays in `.inflight`, where a redeliverer takes it back after the lease.
            logger.error(
                "call event outbox unavailable",
                extra={"event_id": claim.record.event.id, "error": type(error).__name__},
            )
            return delivery
        if verdict == "delivered":
            return delivery
        return self._kept(claim.record.to_event(), delivery=delivery, kept="dead" if verdict == "refused" else "outbox")

    @staticmethod
    def _settle_and_unlock(outbox: Outbox, claim: Claim, *, delivery: Delivery, verdict: Verdict) -> None:
        try:
            outbox.settle(
                claim.name,
                claim.record,
                verdict=verdict,
                status=delivery.status,
                attempts=delivery.attempts,
                retry_at=time.time(),
            )
        finally:
            outbox.locks.release(claim.lock)

    async def _queue(self, outbox: Outbox, event: Event, *, job_id: str) -> Delivery:
        """Keep `event` pending unsent, behind its job's earlier events or the process that holds the job."""
        unsent = Delivery(delivered=False, status=None, attempts=0)
        try:
            await run_blocking(functools.partial(outbox.put, event, job_id=job_id, status=None, attempts=0))
        except OSError as error:
            logger.error(
                "call event lost", extra={"event_type": event.type, "event_id": event.id, "error": type(error).__name__}
            )
            return unsent
        return self._kept(event, delivery=unsent, kept="outbox")

    @staticmethod
    def _kept(event: Event, *, delivery: Delivery, kept: Literal["outbox", "dead"]) -> Delivery:
        logger.warning(
            "call event kept",
            extra={"event_type": event.type, "event_id": event.id, "status": delivery.status, "kept": kept},
        )
        return Delivery(delivered=False, status=delivery.status, attempts=delivery.attempts, kept=kept)

    def _abandon(self, claim: Claim | None) -> None:
        """A cancelled send's claim goes back to pending, for the redeliverer, and the job is unlocked."""
        if claim is None or self.outbox is None:
            return
        self.outbox.requeue(claim.name)
        self.outbox.locks.release(claim.lock)
