"""Redelivery of the webhook outbox's pending events, in the worker's main process (or by hand from the CLI).

One pass (`Redeliverer.run_once`):
- jobs are taken oldest first; a job's events in order, ``call.started`` before ``call.ended``, and the pass stops at
  the first event of a job that stays pending, so a later event never overtakes an earlier one;
- a job is worked on under its lock (`agent.events.locks`; the files a holder that died left in ``.inflight`` go
  back to pending); each event is claimed (renamed into ``.inflight``) before it is sent. Two redeliverers (two pods
  on one volume, or the worker and the CLI) therefore never send the same file at the same time, and never while a
  job process is sending live;
- an event is re-sent with its body and ``Idempotency-Key`` unchanged and a fresh signature timestamp, one attempt
  per pass, and settled by the `DeliveryPolicy`'s verdict (its status table: `agent.events.policy`); a kept event
  waits the policy's backoff. Older than the policy's maximum age (``WEBCALL_EVENTS_OUTBOX_MAX_AGE_S``): moved to
  ``dead/`` unsent. Unreadable files and a crashed writer's temporary files go to ``corrupt/``;
- files of ``dead/`` and ``corrupt/`` older than the retention (``WEBCALL_EVENTS_OUTBOX_RETENTION_S``) are deleted.

The worker runs `run_forever` (`redeliver_with`); ``python -m agent events redeliver`` runs it by hand. File steps
run in a thread, off the event loop. Logs carry counts, codes and event ids, never the URL or a body.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final

from agent.errors import CorruptRecord
from agent.events.files import run_blocking
from agent.events.locks import Lock
from agent.events.outbox import Outbox
from agent.events.policy import DeliveryPolicy
from agent.events.record import Record
from agent.events.sinks import Refused, webhook_from
from agent.events.webhook import WebhookSender
from agent.log import get_logger
from agent.settings import Settings

if TYPE_CHECKING:
    from livekit.agents import AgentServer

logger = get_logger(__name__)

RETENTION_S: Final = 7 * 86_400.0


@dataclass(kw_only=True)
class PassCounts:
    """What one pass did: events delivered, kept for later (failed now), refused (dead), expired (dead), files
    quarantined, events not yet due, jobs skipped because another process holds them, and dead or corrupt files
    pruned."""

    delivered: int = 0
    kept: int = 0
    refused: int = 0
    expired: int = 0
    corrupt: int = 0
    waiting: int = 0
    busy: int = 0
    pruned: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Redeliverer:
    """Re-sends an outbox's pending events to the webhook; see the module docstring for the rules."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        sender: WebhookSender,
        policy: DeliveryPolicy | None = None,
        retention_s: float = RETENTION_S,
    ) -> None:
        self.outbox = outbox
        self._sender = sender
        self.policy = policy if policy is not None else DeliveryPolicy()
        self.retention_s = retention_s
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Redeliverer | Refused | None:
        """The redeliverer the settings ask for; None without a webhook URL, `Refused` with a webhook that is."""
        webhook = webhook_from(settings)
        if webhook is None or isinstance(webhook, Refused):
            return webhook
        return cls(
            webhook.outbox,
            sender=webhook.sender,
            policy=webhook.policy,
            retention_s=settings.events_outbox_retention_s,
        )

    async def run_once(self) -> PassCounts:
        """One pass over the outbox. File errors other than a vanished file propagate (`run_forever` logs them)."""
        counts = PassCounts()
        counts.corrupt += await run_blocking(self._quarantine_strays)
        counts.pruned += await run_blocking(
            functools.partial(self.outbox.prune, now=time.time(), older_than_s=self.retention_s)
        )
        for job in await run_blocking(self.outbox.pending_jobs):
            await self._run_job(job, counts)
        if any(counts.as_dict().values()):
            logger.info("outbox pass", extra=counts.as_dict())
        return counts

    async def run_forever(self, *, interval_s: float = 30.0) -> None:
        """Passes every `interval_s` until cancelled. Never raises: a failed pass is logged and the next one runs."""
        while True:
            try:
                await self.run_once()
            except Exception as error:
                # The type only: an exception's text can carry the webhook URL or the directory's contents.
                logger.error("outbox pass failed", extra={"error": type(error).__name__})
            await asyncio.sleep(interval_s)

    def start_with(self, server: AgentServer, *, interval_s: float) -> None:
        """Run `run_forever` on the worker's loop once `server` has started (its ``worker_started`` event).

        The task is kept here. `aclose` stops it; the framework's shutdown also cancels every task of its loop, and a
        pass cancelled mid-send returns its claimed file to pending.
        """

        def started() -> None:
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(
                    self.run_forever(interval_s=interval_s), name="webcall.events.redeliver"
                )

        server.on("worker_started", started)

    async def aclose(self) -> None:
        """Stop the background task started by `start_with`, if any."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _quarantine_strays(self) -> int:
        strays = self.outbox.strays(now=time.time(), older_than_s=self.outbox.locks.lease_s)
        for path in strays:
            self.outbox.quarantine(path)
            logger.error("outbox file quarantined", extra={"file": path.name})
        return len(strays)

    async def _run_job(self, job: str, counts: PassCounts) -> None:
        lock = await run_blocking(functools.partial(self.outbox.locks.acquire, job, now=time.time()))
        if lock is None:
            counts.busy += 1
            return
        try:
            # Listed again under the lock: another process may have finished some of them since the pass began.
            names = await run_blocking(functools.partial(self._take_back_and_list, job))
            for name in names:
                if not await self._one(name, lock=lock, counts=counts):
                    break
        finally:
            self.outbox.locks.release(lock)

    def _take_back_and_list(self, job: str) -> list[str]:
        # Under the job's lock, a claimed file belongs to a holder that died: it goes back to pending first.
        for name in self.outbox.claimed(job):
            self.outbox.requeue(name)
        return self.outbox.job_files(job)

    async def _one(self, name: str, *, lock: Lock, counts: PassCounts) -> bool:
        """Deliver one pending file; whether the job's next event may go now."""
        record = await run_blocking(functools.partial(self._prepare, name, lock=lock, counts=counts))
        if not isinstance(record, Record):
            return record
        event = record.to_event()
        try:
            delivery = await self.policy.once(lambda timeout_s: self._sender.post(event, timeout_s=timeout_s))
        except BaseException:
            # Cancelled mid-send (shutdown): the event goes back to pending, untouched.
            self.outbox.requeue(name)
            raise
        step = functools.partial(
            self._settle, name, record, status=delivery.status, attempts=delivery.attempts, counts=counts
        )
        return await run_blocking(step)

    def _prepare(self, name: str, *, lock: Lock, counts: PassCounts) -> Record | bool:
        """Blocking: the record to send, claimed; else whether the job's next event may go: yes after a corrupt or
        expired file (set aside, counted), no when this one is not due or is gone."""
        self.outbox.locks.refresh(lock)
        path = self.outbox.directory / name
        try:
            record = self.outbox.read_record(path)
        except FileNotFoundError:
            return False
        except (CorruptRecord, UnicodeDecodeError):
            self.outbox.quarantine(path)
            counts.corrupt += 1
            logger.error("outbox file quarantined", extra={"file": name})
            return True
        now = time.time()
        if self.policy.expired(age_s=record.age_s(now)):
            self.outbox.bury(name, record.model_copy(update={"dead_reason": "expired"}), source=path)
            counts.expired += 1
            logger.error("call event expired", extra=_extra(record))
            return True
        if record.next_attempt_at > now:
            counts.waiting += 1
            return False
        return record if self.outbox.claim(name) else False

    def _settle(self, name: str, record: Record, *, status: int | None, attempts: int, counts: PassCounts) -> bool:
        # The backoff grows with failed passes, not HTTP attempts (a live delivery's retries are in those too).
        failed = record.redeliveries + 1
        now = time.time()
        outcome = self.policy.verdict(status, age_s=record.age_s(now))
        if outcome == "retry":
            record = record.model_copy(update={"redeliveries": failed})
        retry_at = now + self.policy.pause_after(failed)
        self.outbox.settle(name, record, verdict=outcome, status=status, attempts=attempts, retry_at=retry_at)
        extra = {**_extra(record), "status": status, "attempts": record.attempts + attempts}
        match outcome:
            case "delivered":
                counts.delivered += 1
                logger.info("call event redelivered", extra=extra)
            case "refused":
                counts.refused += 1
                logger.error("call event refused", extra=extra)
            case "retry":
                counts.kept += 1
                logger.warning("call event redelivery failed", extra=extra)
        return outcome != "retry"


def _extra(record: Record) -> dict[str, object]:
    return {
        "event_type": record.event.type,
        "event_id": record.event.id,
        "status": record.last_status,
        "attempts": record.attempts,
    }


def redeliver_with(server: AgentServer, settings: Settings) -> Redeliverer | None:
    """The worker's redelivery: built from `settings` and started with `server`; None when no webhook is set.

    The outbox directory is tried once here: one that cannot be written is logged now, at start, rather than only
    when the first call's events go out unprotected.
    """
    redeliverer = Redeliverer.from_settings(settings)
    if isinstance(redeliverer, Refused):
        logger.error("call events redelivery disabled", extra={"reason": redeliverer.reason})
        return None
    if redeliverer is None:
        return None
    error = redeliverer.outbox.probe()
    if error is not None:
        logger.error("call events outbox not writable", extra={"error": error, "setting": "WEBCALL_EVENTS_OUTBOX_DIR"})
    redeliverer.start_with(server, interval_s=settings.events_redeliver_interval_s)
    return redeliverer
