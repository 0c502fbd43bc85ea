"""`CallEvents`: one call's ``call.started``, ``call.config_resolved`` and ``call.ended``, sent to the configured sinks.

Lifecycle (`agent.call.Call` owns its call's events):
    events = CallEvents.open(settings, config=..., job_id=..., room=..., session=..., transcript=...)
    events.started()            # after the session started; delivered in the background, never blocks the call
    events.config_resolved(config, trigger="start")   # and again with each mid-call re-resolution
    ...
    await events.ended(end_reason="caller_left")   # the call is over (from on_session_end); delivery is awaited

Order: each ``call.config_resolved`` is delivered after the event before it (so after ``call.started``), and
``call.ended`` after all of them. ``call.ended`` carries every warning of the call: its start config's and those of
each re-resolution (a caller attribute refused mid-call included), each (code, field) once. A call sends at most
`MAX_CONFIG_EVENTS` ``call.config_resolved`` (a caller can change its attributes as often as it likes); later
re-resolutions still add their warnings to ``call.ended``.

Sinks (`agent.events.sinks`): the spool (``WEBCALL_EVENTS_DIR``) and the webhook (``WEBCALL_EVENTS_URL`` signed
with ``WEBCALL_EVENTS_SECRET``); with neither configured `open` returns None and nothing is built. The webhook keeps
what it could not deliver in the outbox (``Settings.outbox_dir()``, `agent.events.outbox`), re-sent by the worker
process. A refused webhook (no secret, not ``whsec_``, ``http://`` not allowed) is logged at each call.

Content: ``WEBCALL_EVENTS_INCLUDE_CONTENT`` (default true; ``WEBCALL_EVENTS_INCLUDE_TRANSCRIPT`` is the same setting)
puts transcript text, variables, the caller's name and the metadata's values into events (`agent.events.payload`).
The default is on because the receiver is the platform that minted the call: it sent those variables and owns the
caller relationship. Logs never carry them either way.

Journal (`agent.events.journal`, a job the worker's main process watches): ``call.started`` and ``call.ended`` are
noted as they are handed over, and each transcript item is appended as the call records it, already in the form
``call.ended`` gives it, so that the main process can end a killed call with its transcript up to the kill.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.metrics.usage import ModelUsage

from agent.config.call_config import CallConfig, ConfigWarning
from agent.events.files import run_blocking
from agent.events.journal import Journal, State
from agent.events.payload import (
    DEFAULT_MAX_BYTES,
    CallFacts,
    Event,
    Incident,
    ResolveTrigger,
    config_resolved_event,
    ended_event,
    started_event,
    transcript_entry,
    transcript_speakers,
)
from agent.events.prices import PriceTable, load_prices
from agent.events.sinks import Sink, sinks_from
from agent.events.usage import merge_usage
from agent.log import get_logger
from agent.settings import Settings
from agent.transcript import AGENT_SPEAKER, Transcript, TranscriptItem

logger = get_logger(__name__)

MAX_CONFIG_EVENTS = 20


def _prices(settings: Settings) -> PriceTable | None:
    try:
        return load_prices(settings.config_dir)
    except Exception:
        logger.exception("price table not loaded, events carry no cost")
        return None


class CallEvents:
    """The events of one call."""

    def __init__(
        self,
        *,
        config: CallConfig,
        facts: CallFacts,
        transcript: Transcript,
        usage: Callable[[], Sequence[ModelUsage]],
        incidents: Callable[[], Sequence[Incident]] = tuple,
        incident_counts: Callable[[], Mapping[str, int] | None] = lambda: None,
        sinks: Sequence[Sink],
        prices: PriceTable | None,
        include_content: bool,
        max_bytes: int = DEFAULT_MAX_BYTES,
        journal: Journal | None = None,
    ) -> None:
        self._config = config
        self._journal = journal
        self._facts = facts
        self._transcript = transcript
        self._usage = usage
        self._incidents = incidents
        self._incident_counts = incident_counts
        self._sinks = list(sinks)
        self._prices = prices
        self._include_content = include_content
        self._max_bytes = max_bytes
        self._started: asyncio.Task[None] | None = None
        self._resolved: list[asyncio.Task[None]] = []
        self._resolutions = 0
        self._warnings: dict[tuple[str, str], ConfigWarning] = {}
        self._note(config.warnings)
        # the transcript journal: each speaker's first item, in the order recorded (what names the speakers, once),
        # the names, and the entries not yet written
        self._first_items: list[TranscriptItem] = []
        self._speakers: dict[str, str] = {}
        self._unjournaled: list[dict[str, object]] = []
        self._journaling: asyncio.Task[None] | None = None
        if journal is not None:
            transcript.subscribe(self._journal_item)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        config: CallConfig,
        job_id: str,
        room: str,
        session: AgentSession[Any],
        transcript: Transcript,
        outside_usage: Callable[[], Sequence[ModelUsage]] = list,
        incidents: Callable[[], Sequence[Incident]] = tuple,
        incident_counts: Callable[[], Mapping[str, int] | None] = lambda: None,
        journaled: bool = True,
    ) -> CallEvents | None:
        """The call's events; None when no sink is configured. `journaled`: noted in the call journal for the main
        process (`agent.events.journal`); a console or simulated job has no main process watching it."""
        sinks = sinks_from(settings)
        if not sinks:
            return None
        return cls(
            config=config,
            facts=CallFacts(job_id=job_id, room=room, started_at=time.time()),
            transcript=transcript,
            # The session's usage plus what was spent outside it (the welcome synthesized before the session).
            usage=lambda: merge_usage([*session.usage.model_usage, *outside_usage()]),
            incidents=incidents,
            incident_counts=incident_counts,
            sinks=sinks,
            prices=_prices(settings),
            include_content=settings.events_include_transcript,
            max_bytes=settings.events_max_bytes,
            journal=Journal(settings.journal_dir()) if journaled else None,
        )

    @classmethod
    async def unserved(
        cls,
        settings: Settings,
        *,
        config: CallConfig,
        job_id: str,
        room: str,
        notice: str | None,
        end_reason: str = "unavailable",
        journaled: bool = True,
    ) -> None:
        """``call.started``, ``call.config_resolved`` and ``call.ended`` of a call that never ran: no pipeline could
        serve it (end reason ``unavailable``), no caller joined (``no_caller``) or the worker stopped first
        (``shutdown``).

        Its transcript is the notice the caller was given, if any; its usage is empty. Never raises.
        """
        sinks = sinks_from(settings)
        if not sinks:
            return
        transcript = Transcript()
        if notice is not None:
            transcript.add(channel="chat", role="assistant", speaker=AGENT_SPEAKER, text=notice)
        events = cls(
            config=config,
            facts=CallFacts(job_id=job_id, room=room, started_at=time.time()),
            transcript=transcript,
            usage=list,
            sinks=sinks,
            prices=_prices(settings),
            include_content=settings.events_include_transcript,
            max_bytes=settings.events_max_bytes,
            journal=Journal(settings.journal_dir()) if journaled else None,
        )
        events.started()
        events.config_resolved(config, trigger="start")
        await events.ended(end_reason=end_reason)

    def started(self) -> None:
        """Send ``call.started`` in the background."""
        event = started_event(
            self._config,
            facts=self._facts,
            include_content=self._include_content,
            now=time.time(),
            max_bytes=self._max_bytes,
        )
        self._started = asyncio.create_task(self._deliver_journaled(event), name="webcall.events.started")

    def config_resolved(self, config: CallConfig, *, trigger: ResolveTrigger) -> None:
        """Send ``call.config_resolved`` for `config` in the background, after the events before it. Its warnings
        join the call's (for ``call.ended``) even past `MAX_CONFIG_EVENTS`."""
        if self._started is None:
            return
        self._note(config.warnings)
        revision = self._resolutions
        self._resolutions += 1
        if revision >= MAX_CONFIG_EVENTS:
            if revision == MAX_CONFIG_EVENTS:
                logger.warning("call config events capped", extra={"max": MAX_CONFIG_EVENTS})
            return
        event = config_resolved_event(
            config,
            facts=self._facts,
            trigger=trigger,
            revision=revision,
            include_content=self._include_content,
            now=time.time(),
            max_bytes=self._max_bytes,
        )
        before = self._resolved[-1] if self._resolved else self._started
        self._resolved.append(asyncio.create_task(self._deliver_after(before, event), name="webcall.events.config"))

    async def ended(self, *, end_reason: str) -> None:
        """Send ``call.ended`` (after every event before it has been delivered or given up). Never raises."""
        if self._started is None:
            return  # the call never started: there is nothing to end
        await asyncio.gather(self._started, *self._resolved, return_exceptions=True)
        if self._journaling is not None:
            await asyncio.gather(self._journaling, return_exceptions=True)
        try:
            event = ended_event(
                self._config,
                facts=self._facts,
                ended_at=time.time(),
                end_reason=end_reason,
                transcript=self._transcript.items,
                usage=self._usage(),
                prices=self._prices,
                include_content=self._include_content,
                incidents=self._incidents(),
                incident_counts=self._incident_counts(),
                warnings=tuple(self._warnings.values()),
                max_bytes=self._max_bytes,
            )
        except Exception:
            logger.exception("call ended event not built")
            return
        await self._deliver_journaled(event)

    def _journal_item(self, item: TranscriptItem) -> None:
        """Queue `item` for the transcript journal; one writer task at a time appends what is queued, in order."""
        if item.speaker not in self._speakers:
            self._first_items.append(item)
            self._speakers = transcript_speakers(self._first_items, include_content=self._include_content)
        speaker = self._speakers[item.speaker]
        self._unjournaled.append(transcript_entry(item, speaker=speaker, include_content=self._include_content))
        if self._journaling is None or self._journaling.done():
            self._journaling = asyncio.create_task(self._write_journal(), name="webcall.events.transcript")

    async def _write_journal(self) -> None:
        journal = self._journal
        assert journal is not None
        while self._unjournaled:
            entries, self._unjournaled = self._unjournaled, []
            try:
                await run_blocking(functools.partial(journal.append_transcript, entries, job_id=self._facts.job_id))
            except OSError as error:
                logger.error("call transcript journal not written", extra={"error": type(error).__name__})

    def _note(self, warnings: Sequence[ConfigWarning]) -> None:
        for warning in warnings:
            self._warnings.setdefault((warning.code, warning.field), warning)

    async def _deliver_after(self, before: asyncio.Task[None], event: Event) -> None:
        await asyncio.gather(before, return_exceptions=True)
        await self._deliver(event)

    async def _deliver_journaled(self, event: Event) -> None:
        """Deliver `event`, noted in the journal as ``sending`` before and ``sent`` after (when there is one)."""
        await self._note_in_journal(event, "sending")
        await self._deliver(event)
        await self._note_in_journal(event, "sent")

    async def _note_in_journal(self, event: Event, state: State) -> None:
        journal = self._journal
        if journal is None:
            return
        try:
            await run_blocking(lambda: journal.note(event, job_id=self._facts.job_id, state=state))
        except OSError as error:
            # Delivery goes on: only a completion by the main process, should this process die, is at stake.
            logger.error("call journal not written", extra={"event_type": event.type, "error": type(error).__name__})

    async def _deliver(self, event: Event) -> None:
        results = await asyncio.gather(
            *(sink.send(event, job_id=self._facts.job_id) for sink in self._sinks), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Exception):
                logger.error("call event sink failed", extra={"event_type": event.type, "error": type(result).__name__})
