"""The caller's side of the room, as an ``rtc.Room`` participant: the agent's arrival, state, audio and text as the
caller received them (stamped with seconds since the dispatch), and a microphone that plays speech in real time.

What it records: every ``lk.transcription`` segment and ``lk.chat`` message (`Segment`, attributed to the agent, to
this caller when the agent transcribes our own speech, or to someone else), each of the agent's audio tracks
(`HeardTrack`: frames, audible time, peak; its PCM with ``keep_pcm``) and the agent's ``lk.agent.state`` changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from livekit import rtc

from sandbox.caller.speech import MIC_RATE

TOPIC_CHAT = "lk.chat"
TOPIC_TRANSCRIPTION = "lk.transcription"
AMBIENCE_TRACK = "background_audio"
# What the caller hears, as rtc.AudioStream resamples it; also the WAV's format.
LISTEN_RATE = 24000
MIC_FRAME = MIC_RATE // 50
# A received frame is audible above this RMS (16-bit scale, about -40 dBFS); codec noise and comfort noise stay under.
AUDIBLE_RMS = 300.0
# Trailing microphone silence after an utterance, so the agent's endpointing sees the turn end.
SAY_TAIL_S = 1.0

# Who a text is from: the agent, this caller (the agent's transcription of our speech), or another participant.
Speaker = Literal["agent", "caller", "other"]


@dataclass
class Segment:
    """One transcription segment (``lk.segment_id``) or one ``lk.chat`` message as the caller received it."""

    speaker: Speaker
    topic: str
    text: str
    at_s: float
    final: bool


@dataclass
class HeardTrack:
    """One of the agent's audio tracks as the caller received it."""

    name: str
    frames: int = 0
    audible_s: float = 0.0
    first_frame_s: float | None = None
    first_audio_s: float | None = None
    peak: int = 0
    pcm: list[bytes] = field(default_factory=list)


class LiveCall:
    """The caller's side of the room: the agent's arrival, state, audio and text, and the microphone."""

    def __init__(self, *, room: rtc.Room, identity: str, keep_pcm: bool) -> None:
        self.room = room
        self.identity = identity
        self.started = time.monotonic()
        self.agent_identity: str | None = None
        self.agent_joined_s: float | None = None
        self.agent_states: list[dict[str, Any]] = []
        self.segments: dict[str, Segment] = {}
        self.tracks: dict[str, HeardTrack] = {}
        self.mic_track_sid: str | None = None
        self._keep_pcm = keep_pcm
        self._progress = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._mic = rtc.AudioSource(MIC_RATE, 1)
        self._speech: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] = asyncio.Queue()
        self._left = False
        room.on("participant_connected", self._on_participant)
        room.on("participant_attributes_changed", self._on_attributes)
        room.on("track_subscribed", self._on_track)
        room.register_text_stream_handler(TOPIC_TRANSCRIPTION, self._on_text)
        room.register_text_stream_handler(TOPIC_CHAT, self._on_text)

    def now(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def mark_dispatched(self) -> None:
        """Time zero of the report: the moment the dispatch request is sent."""
        self.started = time.monotonic()

    # Events -----------------------------------------------------------------------------------------------------

    def adopt_present_agent(self) -> None:
        """An agent already in the room when we joined (a kept room, or a token-dispatched agent)."""
        for participant in self.room.remote_participants.values():
            self._on_participant(participant)

    def _on_participant(self, participant: rtc.RemoteParticipant) -> None:
        if self.agent_identity is None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            self.agent_identity = participant.identity
            self.agent_joined_s = self.now()
            self._record_state(participant.attributes)
            self._poke()

    def _on_attributes(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == self.agent_identity:
            self._record_state(changed)
            self._poke()

    def _record_state(self, attributes: dict[str, str]) -> None:
        state = attributes.get("lk.agent.state")
        if state and (not self.agent_states or self.agent_states[-1]["state"] != state):
            self.agent_states.append({"state": state, "at_s": self.now()})

    def _on_track(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        self._on_participant(participant)
        if track.kind != rtc.TrackKind.KIND_AUDIO or participant.identity != self.agent_identity:
            return
        heard = self.tracks.setdefault(publication.sid, HeardTrack(name=publication.name))
        stream = rtc.AudioStream(track, sample_rate=LISTEN_RATE, num_channels=1)
        self._spawn(self._listen(stream, heard))

    async def _listen(self, stream: rtc.AudioStream, heard: HeardTrack) -> None:
        keep = self._keep_pcm and heard.name != AMBIENCE_TRACK
        async for event in stream:
            data = bytes(event.frame.data)
            samples = np.frombuffer(data, dtype=np.int16)
            heard.frames += 1
            if heard.first_frame_s is None:
                heard.first_frame_s = self.now()
            if keep:
                heard.pcm.append(data)
            if samples.size == 0:
                continue
            heard.peak = max(heard.peak, int(np.abs(samples.astype(np.int32)).max()))
            if float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) > AUDIBLE_RMS:
                heard.audible_s += samples.size / LISTEN_RATE
                if heard.first_audio_s is None:
                    heard.first_audio_s = self.now()
                    self._poke()

    def _on_text(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        self._spawn(self._read_text(reader, participant_identity))

    async def _read_text(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        sender = self.room.remote_participants.get(participant_identity)
        if sender is not None:
            self._on_participant(sender)
        info = reader.info
        attributes = dict(info.attributes or {})
        track = attributes.get("lk.transcribed_track_id")
        # The agent publishes the caller's transcribed speech too, under the caller's identity and microphone track.
        mine = participant_identity == self.identity or (track is not None and track == self.mic_track_sid)
        # A segment arrives as one growing stream, or as one stream per update each holding the whole text so far.
        key = attributes.get("lk.segment_id") or info.stream_id
        segment = self.segments.get(key)
        if segment is None:
            speaker: Speaker = "caller" if mine else "agent" if participant_identity == self.agent_identity else "other"
            segment = Segment(speaker=speaker, topic=info.topic, text="", at_s=self.now(), final=False)
            self.segments[key] = segment
            self._poke()
        text = ""
        with contextlib.suppress(rtc.StreamError):
            async for chunk in reader:
                text += chunk
        attributes.update(reader.info.attributes or {})
        segment.text = text if text else segment.text
        segment.final = info.topic == TOPIC_CHAT or attributes.get("lk.transcription_final") == "true"
        self._poke()

    # Microphone -------------------------------------------------------------------------------------------------

    async def publish_microphone(self) -> None:
        """Publish the microphone and keep it running (silence unless speaking), as a browser does."""
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._mic)
        publication = await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self.mic_track_sid = publication.sid
        self._spawn(self._pump_microphone())

    async def _pump_microphone(self) -> None:
        silence = b"\0" * (MIC_FRAME * 2)
        frame_s = MIC_FRAME / MIC_RATE
        deadline = time.monotonic()
        pending: tuple[bytes, asyncio.Future[None]] | None = None
        offset = 0
        while True:
            if pending is None and not self._speech.empty():
                pending, offset = self._speech.get_nowait(), 0
            chunk = silence
            if pending is not None:
                pcm, done = pending
                chunk = pcm[offset : offset + MIC_FRAME * 2].ljust(MIC_FRAME * 2, b"\0")
                offset += MIC_FRAME * 2
                if offset >= len(pcm):
                    if not done.done():
                        done.set_result(None)
                    pending = None
            await self._mic.capture_frame(rtc.AudioFrame(chunk, MIC_RATE, 1, MIC_FRAME))
            # Paced by the clock, not by the source's buffer, so speech starts within a frame of being asked for.
            deadline += frame_s
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    async def say(self, pcm: bytes) -> None:
        """Play 16 kHz PCM into the microphone in real time; returns when it has been played."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._speech.put((pcm + b"\0" * int(MIC_RATE * 2 * SAY_TAIL_S), done))
        await done

    async def type(self, text: str) -> None:
        await self.room.local_participant.send_text(text, topic=TOPIC_CHAT)

    # Waiting ----------------------------------------------------------------------------------------------------

    def _poke(self) -> None:
        self._progress.set()

    async def until(self, predicate: Callable[[], bool], *, within_s: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked whenever something arrives), at most ``within_s``."""
        deadline = time.monotonic() + within_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                # Woken by arrivals; the short cap also re-checks conditions that depend on time passing.
                await asyncio.wait_for(self._progress.wait(), min(remaining, 0.25))
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def leave(self) -> None:
        """Disconnect from the room, as a caller closing the tab; what was received stays readable."""
        if not self._left:
            self._left = True
            await self.room.disconnect()

    async def aclose(self) -> None:
        await self.leave()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._mic.aclose()

    # What was received ------------------------------------------------------------------------------------------

    def agent_segments(self, *, since_s: float = -math.inf) -> list[Segment]:
        return [s for s in self.segments.values() if s.speaker == "agent" and s.at_s >= since_s and s.text.strip()]

    def voice_tracks(self) -> list[HeardTrack]:
        return [t for t in self.tracks.values() if t.name != AMBIENCE_TRACK]

    def first_audio_s(self) -> float | None:
        heard = [t.first_audio_s for t in self.voice_tracks() if t.first_audio_s is not None]
        return min(heard) if heard else None

    def agent_state(self) -> str | None:
        return str(self.agent_states[-1]["state"]) if self.agent_states else None

    def agent_attributes(self) -> dict[str, str]:
        for participant in self.room.remote_participants.values():
            if participant.identity == self.agent_identity:
                return dict(participant.attributes)
        return {}

    def welcomed(self) -> bool:
        return self.first_audio_s() is not None or bool(self.agent_segments())

    def answered_since(self, since_s: float) -> bool:
        """The agent said or wrote something final after ``since_s`` and is no longer speaking."""
        final = [s for s in self.agent_segments(since_s=since_s) if s.final]
        return bool(final) and self.agent_state() != "speaking"
