"""``python -m sandbox call``: the QA caller. Dispatches the agent into a room from the shell and reports what a
caller got.

Owns one scripted call against any LiveKit server (the bundled sandbox by default): optionally create the room with
metadata (``RoomService.CreateRoom``), join it as a browser does (a published, silent microphone; participant
attributes and metadata), dispatch the agent (``AgentDispatchService.CreateDispatch``) with job metadata, wait for the
welcome, then type on ``lk.chat`` and speak espeak-ng audio into the microphone, step by step, and listen a while.
The first step waits until the welcome has been spoken, each next one until the agent has answered the last (each
wait capped by ``--timeout``). ``--example`` replays a golden case of ``config/examples/`` (its metadata, attributes
and room name; the report compares the welcome with the case's expected one).

The report is one JSON object on stdout; times are seconds since the dispatch request was sent; ``transcript`` holds
every ``lk.transcription`` segment and ``lk.chat`` message the caller received, the agent's and the agent's
transcription of the caller; the WAV is the agent's voice track (not its ``background_audio``) as received, from
``first_frame_s``::

    {"ok": true, "room": "qa-1a2b3c4d", "dispatch_id": "AD_...",
     "welcome": {"text": "Hello! How can I help you today?", "first_audio_s": 0.41, "first_text_s": 0.43},
     "agent": {"identity": "agent-AJ_...", "joined_s": 0.08, "attributes": {"lk.agent.state": "listening"},
               "states": [{"state": "speaking", "at_s": 0.4}, ...]},
     "transcript": [{"speaker": "agent", "topic": "lk.transcription", "text": "...", "at_s": 0.43, "final": true}],
     "steps": [{"action": "type", "text": "...", "at_s": 3.1, "reply": "You said: ...", "reply_s": 3.2}],
     "audio": {"tracks": [{"name": "...", "audible_s": 2.1, "first_audio_s": 0.41, "peak_dbfs": -3.2}],
               "record": "out.wav", "record_s": 9.8},
     "room_deleted": true}

Exit codes: 0 when a welcome was heard (an audible agent frame) or read (agent text) within ``--timeout``; 1 when
not; 2 on bad arguments, an unreadable file, an unreachable server or refused credentials (one line on stderr).
The API secret and join token never appear in the output. Imports nothing of ``agent``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import sys
import time
import uuid
import warnings
import wave
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import jwt.warnings
import numpy as np
from livekit import api, rtc

DEFAULT_URL = "ws://127.0.0.1:7880"
DEFAULT_API_KEY = "devkey"
DEFAULT_API_SECRET = "secret"
DEFAULT_AGENT_NAME = "webcall-agent"
TOPIC_CHAT = "lk.chat"
TOPIC_TRANSCRIPTION = "lk.transcription"
AMBIENCE_TRACK = "background_audio"
# What the caller hears, as rtc.AudioStream resamples it; also the WAV's format.
LISTEN_RATE = 24000
MIC_RATE = 16000
MIC_FRAME = MIC_RATE // 50
# A received frame is audible above this RMS (16-bit scale, about -40 dBFS); codec noise and comfort noise stay under.
AUDIBLE_RMS = 300.0
CONNECT_TIMEOUT_S = 15.0
# Trailing microphone silence after an utterance, so the agent's endpointing sees the turn end.
SAY_TAIL_S = 1.0

Action = Literal["type", "say"]
# Who a text is from: the agent, this caller (the agent's transcription of our speech), or another participant.
Speaker = Literal["agent", "caller", "other"]


class CallerError(Exception):
    """The call could not be attempted: a bad argument, an unreadable file, or a server that cannot be used.

    The message is one line meant for stderr; it never holds the API secret or a token.
    """


@dataclass(frozen=True)
class Step:
    """One scripted caller action after the welcome."""

    action: Action
    text: str


@dataclass(frozen=True)
class CallPlan:
    """Everything one QA call does, decided before anything touches the network."""

    room: str
    url: str = DEFAULT_URL
    api_key: str = DEFAULT_API_KEY
    api_secret: str = field(default=DEFAULT_API_SECRET, repr=False)
    agent_name: str = DEFAULT_AGENT_NAME
    room_metadata: str | None = None
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    participant_metadata: str = ""
    identity: str = "qa-caller"
    name: str = "QA caller"
    steps: tuple[Step, ...] = ()
    listen_s: float = 5.0
    timeout_s: float = 30.0
    record: Path | None = None
    keep: bool = False
    expected_welcome: str | None = None
    # A golden case's deployment settings (``env``): the worker must run with them for the case to hold.
    example_env: dict[str, str] = field(default_factory=dict)
    log_level: int = logging.CRITICAL


def http_url(url: str) -> str:
    """The Twirp base URL of a LiveKit websocket URL (ws -> http, wss -> https)."""
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    return url


def shown_url(url: str) -> str:
    """The URL as it may appear in output: no user info, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# ---------------------------------------------------------------------------------------------------------------------
# The live call: what the caller hears and reads, stamped with seconds since the dispatch.


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

    async def aclose(self) -> None:
        await self.room.disconnect()
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


# ---------------------------------------------------------------------------------------------------------------------
# Running a plan.


async def run_call(plan: CallPlan) -> dict[str, Any]:
    """Run one QA call and return its report. Raises ``CallerError`` when the server cannot be used."""
    utterances = {step.text: _utterance(step.text) for step in plan.steps if step.action == "say"}
    async with api.LiveKitAPI(http_url(plan.url), plan.api_key, plan.api_secret) as lk:
        await _preflight(lk, plan)
        room = rtc.Room()
        call = LiveCall(room=room, identity=plan.identity, keep_pcm=plan.record is not None)
        report: dict[str, Any] = {"room": plan.room, "agent_name": plan.agent_name, "url": shown_url(plan.url)}
        if plan.example_env:
            report["example_env"] = plan.example_env
        try:
            await _join(call, plan)
            call.mark_dispatched()
            report["dispatch_id"] = await _dispatch(lk, plan)
            call.adopt_present_agent()
            report["steps"] = await _script(call, plan, utterances)
            report.update(_summary(call, plan))
        finally:
            await call.aclose()
            report["room_deleted"] = await _delete_room(lk, plan)
    # The verdict and the welcome first: what a reader looks for.
    first = ("ok", "welcome", "room", "dispatch_id", "agent")
    return {**{k: report[k] for k in first if k in report}, **report}


def _utterance(text: str) -> bytes:
    from sandbox.providers.speech import SpeechEngineError, espeak_utterance

    try:
        return espeak_utterance(text, sample_rate=MIC_RATE)
    except (SpeechEngineError, OSError) as exc:
        raise CallerError(f"cannot synthesize --say text: {type(exc).__name__}") from None


async def _preflight(lk: api.LiveKitAPI, plan: CallPlan) -> None:
    """Reach the server's RoomService once (and create the room with its metadata): fail fast with one line."""
    where = shown_url(plan.url)
    try:
        if plan.room_metadata is None:
            await lk.room.list_rooms(api.ListRoomsRequest(names=[plan.room]))
            return
        created = await lk.room.create_room(api.CreateRoomRequest(name=plan.room, metadata=plan.room_metadata))
        if created.metadata != plan.room_metadata:
            # CreateRoom returns an existing room unchanged.
            await lk.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room=plan.room, metadata=plan.room_metadata)
            )
    except api.TwirpError as exc:
        raise CallerError(
            f"the LiveKit server at {where} refused the request: {exc.code} (HTTP {exc.status})"
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise CallerError(f"cannot reach the LiveKit server at {where}: {type(exc).__name__}") from None


async def _dispatch(lk: api.LiveKitAPI, plan: CallPlan) -> str:
    try:
        dispatch = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=plan.agent_name, room=plan.room, metadata=plan.metadata)
        )
    except api.TwirpError as exc:
        raise CallerError(f"the dispatch was refused: {exc.code} (HTTP {exc.status})") from None
    return dispatch.id


async def _join(call: LiveCall, plan: CallPlan) -> None:
    token = (
        api.AccessToken(plan.api_key, plan.api_secret)
        .with_identity(plan.identity)
        .with_name(plan.name)
        .with_metadata(plan.participant_metadata)
        .with_attributes(plan.attributes)
        .with_grants(api.VideoGrants(room_join=True, room=plan.room, can_update_own_metadata=True))
        .to_jwt()
    )
    try:
        await asyncio.wait_for(call.room.connect(plan.url, token), CONNECT_TIMEOUT_S)
    except (rtc.ConnectError, TimeoutError) as exc:
        raise CallerError(f"cannot join the room at {shown_url(plan.url)}: {type(exc).__name__}") from None
    await call.publish_microphone()


async def _script(call: LiveCall, plan: CallPlan, utterances: dict[str, bytes]) -> list[dict[str, Any]]:
    if not await call.until(call.welcomed, within_s=plan.timeout_s):
        return []
    # Steps start once the welcome has been spoken, as a polite caller would (a capped wait: it may never end).
    await call.until(lambda: call.answered_since(-math.inf), within_s=plan.timeout_s)
    done: list[dict[str, Any]] = []
    for step in plan.steps:
        at_s = call.now()
        if step.action == "type":
            await call.type(step.text)
        else:
            await call.say(utterances[step.text])
        await call.until(functools.partial(call.answered_since, at_s), within_s=plan.timeout_s)
        replies = call.agent_segments(since_s=at_s)
        done.append(
            {
                "action": step.action,
                "text": step.text,
                "at_s": at_s,
                "reply": " ".join(s.text.strip() for s in replies) or None,
                "reply_s": replies[0].at_s if replies else None,
            }
        )
    await asyncio.sleep(plan.listen_s)
    return done


def _summary(call: LiveCall, plan: CallPlan) -> dict[str, Any]:
    first_audio = call.first_audio_s()
    agent_text = call.agent_segments()
    welcome_text = agent_text[0].text.strip() if agent_text else None
    in_time = [t for t in (first_audio, agent_text[0].at_s if agent_text else None) if t is not None]
    ok = bool(in_time) and min(in_time) <= plan.timeout_s
    welcome: dict[str, Any] = {
        "text": welcome_text,
        "first_audio_s": first_audio,
        "first_text_s": agent_text[0].at_s if agent_text else None,
    }
    if plan.expected_welcome is not None:
        welcome["expected"] = plan.expected_welcome
        welcome["as_expected"] = _words(welcome_text or "") == _words(plan.expected_welcome)
    return {
        "ok": ok,
        "welcome": welcome,
        "agent": {
            "identity": call.agent_identity,
            "joined_s": call.agent_joined_s,
            "attributes": call.agent_attributes(),
            "states": call.agent_states,
        },
        "transcript": [
            {"speaker": s.speaker, "topic": s.topic, "text": s.text, "at_s": s.at_s, "final": s.final}
            for s in sorted(call.segments.values(), key=lambda s: s.at_s)
        ],
        "audio": _audio(call, plan.record),
    }


def _words(text: str) -> str:
    return " ".join(text.split())


def _audio(call: LiveCall, record: Path | None) -> dict[str, Any]:
    tracks = [
        {
            "name": t.name,
            "frames": t.frames,
            "first_frame_s": t.first_frame_s,
            "audible_s": round(t.audible_s, 3),
            "first_audio_s": t.first_audio_s,
            "peak_dbfs": round(20 * math.log10(t.peak / 32768), 1) if t.peak else None,
        }
        for t in call.tracks.values()
    ]
    audio: dict[str, Any] = {"tracks": tracks}
    if record is not None:
        pcm = b"".join(chunk for t in call.voice_tracks() for chunk in t.pcm)
        write_wav(record, pcm)
        audio["record"] = str(record)
        audio["record_s"] = round(len(pcm) / 2 / LISTEN_RATE, 3)
    return audio


def write_wav(path: Path, pcm: bytes) -> None:
    """16-bit mono WAV at the caller's listening rate; frames in the order they were received."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(LISTEN_RATE)
        out.writeframes(pcm)


async def _delete_room(lk: api.LiveKitAPI, plan: CallPlan) -> bool:
    if plan.keep:
        return False
    try:
        await lk.room.delete_room(api.DeleteRoomRequest(room=plan.room))
    except (api.TwirpError, aiohttp.ClientError, OSError):
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Command line.


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: QA scripts read stderr.
        raise CallerError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m sandbox call",
        description="Dispatch the agent into a room as a caller and print a JSON report of what the caller got. "
        "LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET from the environment (default: the sandbox server).",
    )
    p.add_argument("--room", help="room name (default: a fresh qa-<random>)")
    p.add_argument(
        "--example", type=Path, metavar="FILE", help="a golden case from config/examples/: its metadata and attributes"
    )
    p.add_argument("--room-metadata", metavar="JSON", help="create the room with this metadata: JSON or @FILE")
    p.add_argument("--metadata", metavar="JSON", help="the dispatch's job metadata: JSON or @FILE")
    p.add_argument("--participant-metadata", metavar="JSON", help="the caller's participant metadata: JSON or @FILE")
    p.add_argument("--agent-name", default=DEFAULT_AGENT_NAME, help="the agent to dispatch (default webcall-agent)")
    p.add_argument("--attributes", nargs="+", default=[], metavar="K=V", help="the caller's participant attributes")
    p.add_argument("--identity", default="qa-caller")
    p.add_argument("--name", default="QA caller")
    p.add_argument(
        "--type", dest="steps", action="append", type=lambda t: Step("type", t), metavar="TEXT", help="type on lk.chat"
    )
    p.add_argument(
        "--say", dest="steps", action="append", type=lambda t: Step("say", t), metavar="TEXT", help="speak (espeak-ng)"
    )
    p.add_argument("--listen", type=float, default=5.0, metavar="SECONDS", help="stay after the last step")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="wait for the welcome (and a reply)")
    p.add_argument("--record", type=Path, metavar="OUT.WAV", help="write the agent's audio as a WAV file")
    p.add_argument("--keep", action="store_true", help="leave the room in place")
    p.add_argument("--log-level", default="CRITICAL", help="log level of the LiveKit SDK (stderr)")
    return p


def json_argument(value: str, *, option: str) -> str:
    """The text of a JSON option (``@FILE`` reads the file), checked to be JSON and sent as given."""
    text = _read_file(value[1:], option=option) if value.startswith("@") else value
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise CallerError(f"{option}: not JSON (line {exc.lineno}, column {exc.colno})") from None
    return text


def _read_file(path: str, *, option: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CallerError(f"{option}: cannot read {path}: {type(exc).__name__}") from None


def parse_attributes(pairs: Sequence[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CallerError(f"--attributes: expected KEY=VALUE, got {pair!r}")
        attributes[key] = value
    return attributes


def _wire(value: object) -> str:
    """A golden case's document as the platform sends it: objects as JSON text, strings verbatim."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _example(path: Path) -> dict[str, Any]:
    try:
        case = json.loads(_read_file(str(path), option="--example"))
    except json.JSONDecodeError:
        raise CallerError("--example: not JSON") from None
    if not isinstance(case, dict):
        raise CallerError("--example: not a golden case (a JSON object)")
    return case


def plan_from_args(argv: Sequence[str], *, env: dict[str, str]) -> CallPlan:
    """The plan the command line and environment ask for; ``CallerError`` on anything unusable."""
    args = parser().parse_args(list(argv))
    case = _example(args.example) if args.example else {}
    expected = case.get("expected")
    expected_welcome = expected.get("welcome", {}).get("text") if isinstance(expected, dict) else None
    example_attributes = case.get("attributes") or {}
    example_env = case.get("env") or {}
    if not isinstance(example_attributes, dict) or not isinstance(example_env, dict):
        raise CallerError("--example: attributes and env must be objects")
    if args.listen < 0 or args.timeout <= 0:
        raise CallerError("--listen must be >= 0 and --timeout > 0")
    room_metadata = case.get("room_metadata")
    log_level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(log_level, int):
        raise CallerError("--log-level: not a level name")
    return CallPlan(
        room=args.room or case.get("room_name") or f"qa-{uuid.uuid4().hex[:8]}",
        url=env.get("LIVEKIT_URL") or DEFAULT_URL,
        api_key=env.get("LIVEKIT_API_KEY") or DEFAULT_API_KEY,
        api_secret=env.get("LIVEKIT_API_SECRET") or DEFAULT_API_SECRET,
        agent_name=args.agent_name,
        room_metadata=(
            json_argument(args.room_metadata, option="--room-metadata")
            if args.room_metadata is not None
            else (_wire(room_metadata) if room_metadata is not None else None)
        ),
        metadata=(
            json_argument(args.metadata, option="--metadata")
            if args.metadata is not None
            else _wire(case.get("job_metadata"))
        ),
        participant_metadata=(
            json_argument(args.participant_metadata, option="--participant-metadata")
            if args.participant_metadata is not None
            else _wire(case.get("participant_metadata"))
        ),
        attributes={**{str(k): str(v) for k, v in example_attributes.items()}, **parse_attributes(args.attributes)},
        identity=args.identity,
        name=args.name,
        steps=tuple(args.steps or ()),
        listen_s=args.listen,
        timeout_s=args.timeout,
        record=args.record,
        keep=args.keep,
        expected_welcome=expected_welcome if isinstance(expected_welcome, str) else None,
        example_env={str(k): str(v) for k, v in example_env.items()},
        log_level=log_level,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sandbox call ...``: 0 welcomed, 1 not, 2 unusable arguments or server."""
    args = list(sys.argv[1:] if argv is None else argv)
    # PyJWT warns on every token signed with a short secret such as the sandbox's "secret"; stderr is for errors.
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
    try:
        plan = plan_from_args(args, env=dict(os.environ))
        logging.basicConfig(level=plan.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        report = asyncio.run(run_call(plan))
    except CallerError as exc:
        print(f"sandbox call: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report.get("ok") else 1
