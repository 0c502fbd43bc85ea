"""Redelivery of the webhook outbox's pending events (`agent.events.outbox` owns the files).

One pass (`Redeliverer.run_once`):
- jobs are taken oldest first; a job's events in order, ``call.started`` before ``call.ended``, and the pass stops at
  the first event of a job that stays pending, so a later event never overtakes an earlier one;
- a job is worked on under its lock (a file created with ``O_EXCL``; a lock untouched for `LEASE_S` belongs to a
  process that died and is broken, and the files it left in ``.inflight`` go back to pending); each event is claimed
  by renaming it into ``.inflight`` before it is sent. Two redeliverers (two pods on one volume, or the worker and
  the CLI) therefore never send the same file at the same time, and never while a job process is sending live;
- an event is re-sent with its body and ``Idempotency-Key`` unchanged and a fresh signature timestamp, one attempt
  per pass. 2xx: deleted. 4xx other than 408, 425 and 429: moved to ``dead/``. Anything else (5xx, those three, no
  answer): kept, due again after a backoff (`backoff_s` doubling per failed pass up to `max_backoff_s`). Older than
  `max_age_s` (from the event's creation; ``WEBCALL_EVENTS_OUTBOX_MAX_AGE_S``, 24 h by default): moved to ``dead/``
  unsent. Unreadable files and a crashed writer's temporary files go to ``corrupt/``.

The worker runs `run_forever` in its main process (`redeliver_with`); ``python -m agent events redeliver`` runs it by
hand. File steps run in a thread, off the worker's event loop. Logs carry counts, codes and event ids, never the URL
or a body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final

from agent.errors import CorruptRecord
from agent.events.outbox import Lock, Outbox, Record, run_blocking, verdict
from agent.events.webhook import Policy, WebhookSink
from agent.log import get_logger
from agent.settings import Settings

if TYPE_CHECKING:
    from livekit.agents import AgentServer

logger = get_logger("events.redelivery")

# One attempt per event per pass: the spacing between attempts is the outbox's backoff, not the live policy's.
REDELIVERY_POLICY: Final = Policy(attempts=1, budget_s=10.0, attempt_timeout_s=10.0, backoff_s=0.0)


@dataclass(kw_only=True)
class PassCounts:
    """What one pass did: events delivered, kept for later (failed now), refused (dead), expired (dead), files
    quarantined, events not yet due, and jobs skipped because another process holds them."""

    delivered: int = 0
    kept: int = 0
    refused: int = 0
    expired: int = 0
    corrupt: int = 0
    waiting: int = 0
    busy: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Redeliverer:
    """Re-sends an outbox's pending events to the webhook; see the module docstring for the rules."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        webhook: WebhookSink,
        max_age_s: float = 86_400.0,
        backoff_s: float = 30.0,
        max_backoff_s: float = 900.0,
    ) -> None:
        self.outbox = outbox
        self._webhook = webhook
        self.max_age_s = max_age_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Redeliverer | None:
        """The redeliverer the settings ask for; None without a webhook URL and secret (nothing to redeliver to)."""
        secret = settings.events_secret.get_secret_value() if settings.events_secret is not None else ""
        if not settings.events_url or not secret:
            return None
        webhook = WebhookSink(url=settings.events_url, secret=secret, policy=REDELIVERY_POLICY)
        return cls(Outbox(settings.outbox_dir()), webhook=webhook, max_age_s=settings.events_outbox_max_age_s)

    async def run_once(self) -> PassCounts:
        """One pass over the outbox. File errors other than a vanished file propagate (`run_forever` logs them)."""
        counts = PassCounts()
        counts.corrupt += await run_blocking(self._quarantine_strays)
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
        lock = await run_blocking(self.outbox.locks.acquire, job, now=time.time())
        if lock is None:
            counts.busy += 1
            return
        try:
            # Listed again under the lock: another process may have finished some of them since the pass began.
            names = await run_blocking(self._take_back_and_list, job)
            for name in names:
                if not await self._one(name, lock=lock, counts=counts):
                    break
        finally:
            self.outbox.locks.release(lock)

    def _take_back_and_list(self, job: str) -> list[str]:
        self.outbox.take_back(job)
        return self.outbox.job_files(job)

    async def _one(self, name: str, *, lock: Lock, counts: PassCounts) -> bool:
        """Deliver one pending file; whether the job's next event may go now."""
        record = await run_blocking(self._prepare, name, lock=lock, counts=counts)
        if not isinstance(record, Record):
            return record
        try:
            delivery = await self._webhook.deliver(record.to_event())
        except BaseException:
            # Cancelled mid-send (shutdown): the event goes back to pending, untouched.
            self.outbox.unclaim(name)
            raise
        return await run_blocking(
            self._settle, name, record, status=delivery.status, attempts=delivery.attempts, counts=counts
        )

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
        if now - record.created_at > self.max_age_s:
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
        pause = min(self.max_backoff_s, self.backoff_s * 2 ** (failed - 1))
        if verdict(status) == "retry":
            record = record.model_copy(update={"redeliveries": failed})
        outcome = self.outbox.settle(name, record, status=status, attempts=attempts, retry_at=time.time() + pause)
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
    if redeliverer is None:
        return None
    error = redeliverer.outbox.probe()
    if error is not None:
        logger.error("call events outbox not writable", extra={"error": error, "setting": "WEBCALL_EVENTS_OUTBOX_DIR"})
    redeliverer.start_with(server, interval_s=settings.events_redeliver_interval_s)
    return redeliverer
