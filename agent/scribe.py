"""Scribe mode for ScaiWave calls with ``transcript: true``: everyone is transcribed, the agent speaks only when named.

Contract:
- Every remote participant's audio track gets its own STT stream (the call's STT; a non-streaming one behind the
  Silero VAD), and each final transcript becomes a `Line` labelled with the speaker's name (identity if unnamed).
- A participant's STT stream that fails for good (its own reconnects spent) is restarted after a growing delay
  (`RESTART_DELAYS_S`), at most that many times in a row; a stream that transcribed something starts the count
  over. Each restart is an incident ``stt_restarted`` and the last failure ``stt_stopped`` (role, kind, attempt,
  given to `on_incident`), and is counted in ``webcall_scribe_stt_failures_total``. The scribe has an STT engine of
  its own (the worker builds one), so its failures neither close the session nor degrade the call to text.
- The scribe's STT is biased towards the agent's names where it can be (`bias_towards`: Deepgram nova-3 keyterms).
- A line that addresses the agent by name (`ADDRESS_NAMES`, or the call's ``agent_name`` variable) is handed to the
  session as a user turn, attributed (``"<speaker>: <text>"``); nothing else reaches the LLM.
- `post` sends the transcript so far into the room as one text stream on `TOPIC_TRANSCRIPT` (attribute
  ``webcall.transcript=final``). The worker posts it when the call ends while people are still there to receive it
  (a participant leaves and others remain, or a limit ends the call).
- Transcript text is caller data: it goes into the room and the session, never into a log message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Literal

from livekit import rtc
from livekit.agents import APIConnectOptions, stt, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.plugins import deepgram

from agent import metrics
from agent.config.call_config import CallConfig
from agent.log import get_logger
from agent.pipeline import SttEngine
from agent.provider_faults import error_kind, providers_of

logger = get_logger(__name__)

TOPIC_TRANSCRIPT: Final = "webcall.transcript"
ADDRESS_NAMES: Final = ("scribe", "assistant")
SAMPLE_RATE: Final = 16000
# Seconds before each restart of a failed transcription, in a row; after the last failure it is given up.
RESTART_DELAYS_S: Final = (0.5, 1.0, 2.0, 4.0, 8.0)

ScribeIncident = Literal["stt_restarted", "stt_stopped"]
OnIncident = Callable[[ScribeIncident, dict[str, object]], None]


OpenFrames = Callable[[], contextlib.AbstractAsyncContextManager[AsyncIterable[rtc.AudioFrame]]]


@contextlib.asynccontextmanager
async def track_frames(track: rtc.Track) -> AsyncIterator[AsyncIterable[rtc.AudioFrame]]:
    """A track's audio as 16 kHz mono frames, from now until the track ends (or the block is left)."""
    audio = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
    try:
        yield (event.frame async for event in audio)
    finally:
        await audio.aclose()


@dataclass(frozen=True, kw_only=True)
class Line:
    speaker: str
    text: str
    at: float


def address_names(config: CallConfig) -> tuple[str, ...]:
    named = config.variables.get("agent_name", "").strip()
    return (*ADDRESS_NAMES, named.lower()) if named else ADDRESS_NAMES


def bias_towards(engine: SttEngine, names: tuple[str, ...]) -> None:
    """Ask `engine` to favour the names the agent answers to: Deepgram nova-3's keyterm prompting (a name misheard,
    "hey assistant" as "hey, that's it", is a turn the scribe never answers). Other STTs are left as they are."""
    for member in providers_of(engine):
        if isinstance(member, deepgram.STT) and member.model.startswith("nova-3"):
            member.update_options(keyterm=[name for name in names if name])


def is_addressed(text: str, names: tuple[str, ...]) -> bool:
    """Whether the utterance names the agent as a word (``"Scribe, what did we decide?"``)."""
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(name)}\b", lowered) for name in names if name)


class Scribe:
    """Transcribes every participant of one room; hands utterances that name the agent to `on_addressed`."""

    def __init__(
        self,
        *,
        engine: SttEngine,
        vad_model: vad.VAD,
        names: tuple[str, ...],
        on_addressed: Callable[[str, str], None],
        on_incident: OnIncident = lambda _code, _data: None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        restart_delays_s: tuple[float, ...] = RESTART_DELAYS_S,
    ) -> None:
        self._engine: SttEngine = (
            engine if engine.capabilities.streaming else stt.StreamAdapter(stt=engine, vad=vad_model)
        )
        self._names = names
        self._on_addressed = on_addressed
        self._on_incident = on_incident
        self._conn_options = conn_options
        self._restart_delays_s = restart_delays_s
        self._room: rtc.Room | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.lines: list[Line] = []

    def attach(self, room: rtc.Room) -> None:
        """Transcribe the audio of everyone in `room`, now and as they publish."""
        self._room = room
        room.on("track_subscribed", self._on_track_subscribed)
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                if publication.track is not None:
                    self._on_track_subscribed(publication.track, publication, participant)

    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or publication.sid in self._tasks:
            return
        frames = functools.partial(track_frames, track)
        self._spawn(publication.sid, self.follow(frames, speaker=participant.name or participant.identity))

    def _spawn(self, key: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"webcall.scribe.{key}")
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    async def follow(self, open_frames: OpenFrames, *, speaker: str) -> None:
        """Transcribe one speaker's audio (each attempt reads `open_frames()`) until it ends, restarting a failed
        transcription (see the module doc)."""
        failures = 0
        while True:
            lines_before = len(self.lines)
            try:
                async with open_frames() as frames:
                    await self.transcribe(frames, speaker=speaker)
                return
            except Exception as error:  # any STT failure ends this attempt, never the call
                heard = any(line.speaker == speaker for line in self.lines[lines_before:])
                failures = 1 if heard else failures + 1
                if not self._restart_after(error, failures=failures):
                    return
            await asyncio.sleep(self._restart_delays_s[failures - 1])

    def _restart_after(self, error: Exception, *, failures: int) -> bool:
        """Records a failed transcription; whether to restart it."""
        kind, status = error_kind(error)
        restarting = failures <= len(self._restart_delays_s)
        data: dict[str, object] = {"role": "stt", "kind": kind, "attempt": failures}
        if status is not None:
            data["status"] = status
        code: ScribeIncident = "stt_restarted" if restarting else "stt_stopped"
        if restarting:
            data["delay_s"] = self._restart_delays_s[failures - 1]
            logger.warning("scribe transcription failed, restarting", extra=data)
        else:
            logger.error("scribe transcription failed, giving up", extra=data)
        metrics.scribe_stt_failure("restarted" if restarting else "stopped")
        self._on_incident(code, data)
        return restarting

    async def transcribe(self, frames: AsyncIterable[rtc.AudioFrame], *, speaker: str) -> None:
        """Transcribe one speaker's audio until it ends; each final transcript becomes a `Line`. Raises what the
        STT stream raised when it failed for good."""
        stream = self._engine.stream(conn_options=self._conn_options)

        async def pump() -> None:
            async for frame in frames:
                try:
                    stream.push_frame(frame)
                except RuntimeError:  # the stream failed and closed: its error ends `transcribe`
                    return
            stream.end_input()

        pumping = asyncio.create_task(pump())
        try:
            async for event in stream:
                if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
                    self._record(speaker, event.alternatives[0].text.strip())
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            await stream.aclose()

    def _record(self, speaker: str, text: str) -> None:
        if not text:
            return
        self.lines.append(Line(speaker=speaker, text=text, at=time.time()))
        if is_addressed(text, self._names):
            logger.info("scribe addressed")
            self._on_addressed(speaker, text)

    def text(self) -> str:
        return "\n".join(
            f"[{time.strftime('%H:%M:%S', time.gmtime(line.at))}] {line.speaker}: {line.text}" for line in self.lines
        )

    async def post(self) -> None:
        """Send the transcript into the room as one text stream (nothing when nothing was said)."""
        if self._room is None or not self.lines or not self._room.isconnected():
            return
        await self._room.local_participant.send_text(
            self.text(), topic=TOPIC_TRANSCRIPT, attributes={"webcall.transcript": "final"}
        )
        logger.info("scribe transcript posted", extra={"lines": len(self.lines)})

    async def aclose(self) -> None:
        if self._room is not None:
            self._room.off("track_subscribed", self._on_track_subscribed)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
