"""How call events are delivered: the one status table, the live retries and the redelivery schedule.

Status table (`answer` classifies, `DeliveryPolicy.verdict` decides):

    answer         statuses                  live send (in the job)           kept event (outbox)
    delivered      2xx                       done                             deleted
    transient      5xx, no answer, timeout   retried now (0.5 s, 1 s)         pending, redelivered after a backoff
    later          408, 425, 429, 1xx, 3xx   not retried now                  pending, redelivered after a backoff
    auth           401, 403                  not retried now                  pending while younger than auth_retry_s
                                                                              (a skewed clock, a secret mid-rotation),
                                                                              then dead (refused)
    refused        any other 4xx             final                            dead (refused)

Live: at most `attempts` tries (3) within `budget_s` (10 s), each bounded by `attempt_timeout_s`. Redelivery: one
attempt per pass, bounded by `redelivery_timeout_s`; after a failed pass the event waits `backoff_s` doubling per
failed pass up to `max_backoff_s`. An event pending longer than `max_age_s` goes to ``dead/`` unsent (expired).
Ages count from the event's creation, or from an operator's replay of it (`agent.events.record.Record.age_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from agent import metrics
from agent.settings import Settings

Answer = Literal["delivered", "transient", "later", "auth", "refused"]
Verdict = Literal["delivered", "retry", "refused"]

_LATER = frozenset({408, 425, 429})
_AUTH = frozenset({401, 403})


def answer(status: int | None) -> Answer:
    """What a receiver's answer (None: none came) says, by the table in the module docstring."""
    if status is None or status >= 500:
        return "transient"
    if 200 <= status < 300:
        return "delivered"
    if status in _AUTH:
        return "auth"
    if 400 <= status < 500 and status not in _LATER:
        return "refused"
    return "later"


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What became of one event: delivered or not, the last HTTP status (None: no answer), attempts made, and where
    an undelivered event was kept (``outbox``: pending redelivery; ``dead``: refused; None: not kept)."""

    delivered: bool
    status: int | None
    attempts: int
    kept: Literal["outbox", "dead"] | None = None


Post = Callable[[float], Awaitable[int | None]]


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    """The numbers of the module docstring; `from_settings` takes the deployment's."""

    attempts: int = 3
    budget_s: float = 10.0
    attempt_timeout_s: float = 4.0
    retry_pause_s: float = 0.5
    redelivery_timeout_s: float = 10.0
    backoff_s: float = 30.0
    max_backoff_s: float = 900.0
    max_age_s: float = 86_400.0
    auth_retry_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(max_age_s=settings.events_outbox_max_age_s, auth_retry_s=settings.events_auth_retry_s)

    def verdict(self, status: int | None, *, age_s: float) -> Verdict:
        """Delivered, refused for good, or to be tried again later, for an event `age_s` old."""
        match answer(status):
            case "delivered":
                return "delivered"
            case "refused":
                return "refused"
            case "auth":
                return "retry" if age_s < self.auth_retry_s else "refused"
            case "transient" | "later":
                return "retry"

    def expired(self, *, age_s: float) -> bool:
        return age_s > self.max_age_s

    def pause_after(self, failed_passes: int) -> float:
        """How long a kept event waits after its `failed_passes`-th failed redelivery."""
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** (max(1, failed_passes) - 1))

    async def live(self, post: Post) -> Delivery:
        """Up to `attempts` calls of `post(timeout_s)` within the budget, again only after a transient answer.
        Never raises (cancellation aside)."""
        status: int | None = None
        attempts = 0
        deadline = time.monotonic() + self.budget_s
        # The deadline is checked between attempts; the outer timeout only guards against a stuck connector.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.budget_s + 1.0):
                while attempts < self.attempts and time.monotonic() < deadline:
                    attempts += 1
                    status = await post(max(0.01, min(self.attempt_timeout_s, deadline - time.monotonic())))
                    pause = self.retry_pause_s * 2 ** (attempts - 1)
                    if answer(status) != "transient" or time.monotonic() + pause >= deadline:
                        break
                    if attempts < self.attempts:
                        await asyncio.sleep(pause)
        metrics.event_delivery(path="live", answer=answer(status))
        return Delivery(delivered=answer(status) == "delivered", status=status, attempts=attempts)

    async def once(self, post: Post) -> Delivery:
        """One redelivery attempt. Never raises (cancellation aside)."""
        status: int | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.redelivery_timeout_s + 1.0):
                status = await post(self.redelivery_timeout_s)
        metrics.event_delivery(path="redelivery", answer=answer(status))
        return Delivery(delivered=answer(status) == "delivered", status=status, attempts=1)
