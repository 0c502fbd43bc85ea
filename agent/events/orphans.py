"""Calls whose job process died: the worker's main process completes their ``call.started`` / ``call.ended`` pair.

A job process sends its call's events itself, and cannot once it is killed (SIGKILL, the OOM killer, a crash). The
main process is told of every job process that exits (`agent.framework.on_job_process_exit`) and reads the job's
journal (`agent.events.journal`):

- ``call.ended`` ``sent``: the call ended itself; nothing to do;
- an event still ``sending`` (the process died handing it over): that same event (same id and idempotency key) is
  handed to each sink that does not hold it yet (the spool's file, the outbox's pending, claimed or dead files); a
  claim the dead process held keeps its file, and its lock on the job is broken at once instead of after the lease;
- no ``call.ended``: one is built from the journal's ``call.started`` (`payload.orphan_ended_event`): end reason
  ``job_process_died`` (``unknown`` when the process exited 0 without one), ``status: error``, an incident
  ``job_process_died`` with the exit code, the transcript the job process journaled up to its death, and
  ``record_complete: false`` (the usage and the call's own incidents were in the dead process's memory);
- no journal at all from a process that did not exit 0 (it died before ``call.started``): ``call.started`` is built
  first, from the job's dispatch and room metadata resolved here, so the receiver gets the pair.

At start, the journals a worker of this host left when it died with its job processes (SIGKILL of the process group,
the OOM killer, a container restart) are completed the same way (`sweep`, `Journal.abandoned`; exit code unknown).

The events go through the same sinks as a job's (`agent.events.sinks`): spool and webhook, with the outbox and its
redelivery. The journal file is removed at the end; an exit whose journal cannot be read is left as it is.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final

from agent import framework, metrics
from agent.config.resolve import CallSources
from agent.deployment import resolve_for_deployment
from agent.events.delivery import WebhookSink
from agent.events.files import run_blocking
from agent.events.journal import Journal
from agent.events.payload import CallFacts, Event, orphan_ended_event, started_event
from agent.events.sinks import Sink, sinks_from
from agent.events.spool import SpoolSink
from agent.log import get_logger
from agent.settings import Settings

if TYPE_CHECKING:
    from livekit.agents import AgentServer

logger = get_logger("events.orphans")

DIED: Final = "job_process_died"


class Orphans:
    """Completes the events of jobs whose process exited without ending their call."""

    def __init__(self, settings: Settings, *, sinks: Sequence[Sink], journal: Journal) -> None:
        self._settings = settings
        self._sinks = list(sinks)
        self._journal = journal
        self._tasks: set[asyncio.Task[list[Event]]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Orphans | None:
        """None when no sink is configured (then no job sends events either)."""
        sinks = sinks_from(settings)
        if not sinks:
            return None
        return cls(settings, sinks=sinks, journal=Journal(settings.journal_dir()))

    def watch(self, server: AgentServer) -> None:
        """Once `server` runs (its ``worker_started`` event): complete the journals a worker of this host that died
        with its job processes left, then handle each exited job process of `server`."""

        def started() -> None:
            self._spawn(self.sweep())
            framework.on_job_process_exit(server, self._exited)

        server.on("worker_started", started)

    async def sweep(self) -> list[Event]:
        """Complete the abandoned journals of this host (`Journal.abandoned`); the events handed over."""
        handed: list[Event] = []
        for journal in await run_blocking(self._journal.abandoned):
            started = journal.entry("call.started")
            room = started.event.body.get("room") if started is not None else None
            owner = journal.owner
            job = framework.ExitedJob(
                job_id=journal.job_id,
                room=str(room or ""),
                job_metadata="",
                room_metadata="",
                pid=owner.pid if owner is not None else None,
                exit_code=None,
            )
            handed.extend(await self.complete(job))
        return handed

    async def drain(self) -> None:
        """Wait for the completions under way (tests; the framework's shutdown cancels its loop's tasks)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _exited(self, job: framework.ExitedJob) -> None:
        self._spawn(self.complete(job))

    def _spawn(self, work: Coroutine[Any, Any, list[Event]]) -> None:
        task = asyncio.get_running_loop().create_task(work, name="webcall.events.orphan")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def complete(self, job: framework.ExitedJob) -> list[Event]:
        """Complete `job`'s pair if its process left it incomplete; the events handed over. Never raises."""
        try:
            return await self._complete(job)
        except Exception as error:
            logger.error("call events of an exited job not completed", extra={"error": type(error).__name__})
            return []

    async def _complete(self, job: framework.ExitedJob) -> list[Event]:
        journal = await run_blocking(lambda: self._journal.read(job.job_id))
        died = job.exit_code != 0
        if journal is None and not died:
            return []
        ended = journal.entry("call.ended") if journal is not None else None
        if ended is not None and ended.state == "sent":
            await run_blocking(lambda: self._journal.remove(job.job_id))
            return []
        if job.pid is not None:
            self._break_locks(job.job_id, pid=job.pid)
        handed: list[Event] = []
        started = journal.entry("call.started") if journal is not None else None
        if started is None:
            first = self._started_here(job)
            await self._hand_over(first, job_id=job.job_id, resend=False)
        else:
            first = started.to_event()
            if started.state == "sending":
                await self._hand_over(first, job_id=job.job_id, resend=True)
        handed.append(first)
        if ended is not None:
            last = ended.to_event()
            await self._hand_over(last, job_id=job.job_id, resend=True)
        else:
            reason = DIED if died else "unknown"
            transcript = await run_blocking(lambda: self._journal.transcript(job.job_id))
            last = orphan_ended_event(
                first,
                ended_at=time.time(),
                end_reason=reason,
                incident={"code": DIED, "exit_code": job.exit_code} if died else {"code": "call_not_ended"},
                max_bytes=self._settings.events_max_bytes,
                transcript=transcript,
            )
            await self._hand_over(last, job_id=job.job_id, resend=False)
            metrics.call_ended(dialect=str(first.body.get("dialect")), end_reason=reason)
        handed.append(last)
        logger.warning(
            "call ended for an exited job process",
            extra={"job_id": job.job_id, "exit_code": job.exit_code, "event_id": last.id, "job_pid": job.pid},
        )
        await run_blocking(lambda: self._journal.remove(job.job_id))
        return handed

    def _started_here(self, job: framework.ExitedJob) -> Event:
        """``call.started`` for a job that died before sending one: its config resolved from what the job had."""
        sources = CallSources(job_metadata=job.job_metadata, room_metadata=job.room_metadata, room_name=job.room)
        config = resolve_for_deployment(sources, settings=self._settings)
        now = time.time()
        return started_event(
            config,
            facts=CallFacts(job_id=job.job_id, room=job.room, started_at=now),
            include_content=self._settings.events_include_transcript,
            now=now,
            max_bytes=self._settings.events_max_bytes,
        )

    def _break_locks(self, job_id: str, *, pid: int) -> None:
        for sink in self._sinks:
            if isinstance(sink, WebhookSink) and sink.outbox is not None:
                sink.outbox.locks.break_if_held_by(job_id, pid=pid)

    async def _hand_over(self, event: Event, *, job_id: str, resend: bool) -> None:
        """Send `event` to every sink; with `resend`, only to those that do not hold it yet."""
        for sink in self._sinks:
            if resend and await run_blocking(functools.partial(_holds, sink, event, job_id=job_id)):
                continue
            await sink.send(event, job_id=job_id)


def _holds(sink: Sink, event: Event, *, job_id: str) -> bool:
    if isinstance(sink, SpoolSink):
        return sink.holds(event.id, job_id=job_id)
    if isinstance(sink, WebhookSink) and sink.outbox is not None:
        return sink.outbox.holds(event.id, job=job_id)
    return False


def complete_orphans_with(server: AgentServer, settings: Settings) -> Orphans | None:
    """The worker's completion of dead jobs' events, watching `server`; None without any sink."""
    orphans = Orphans.from_settings(settings)
    if orphans is not None:
        orphans.watch(server)
    return orphans
