"""The end-to-end stack: sandbox server (``python -m sandbox``), fake providers, the worker (``python -m agent start``)
and a caller played with ``rtc.Room``, dispatched through ``livekit-api`` exactly as a web-call platform does.

Everything listens on 127.0.0.1. The fake providers run in the test's event loop so a test can read what they were
asked (``.requests``); the server and the worker are child processes, the worker with its default process executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import api, rtc

from agent.events.files import TEMP_PREFIX
from agent.tasks import TaskSet
from sandbox.providers import FakeDeepgram, FakeOpenAI
from sandbox.server.process import ServerProcess

AGENT_NAME = "webcall-agent"
WORKER_READY_WITHIN_S = 60.0
HEALTH_LISTENING = "health server listening"


@dataclass
class WorkerProcess:
    """``python -m agent start`` in a child process; its log lines are kept for diagnosis."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        env: dict[str, str],
        *,
        own_process_group: bool = False,
        command: Sequence[str] | None = None,
        registered: bool = True,
        ready_within_s: float = WORKER_READY_WITHIN_S,
    ) -> WorkerProcess:
        """Start the worker (or another ``command`` that logs ``registered worker``, e.g. the bench's baseline) and
        wait until it registered with the server (with `registered` false: until it serves its health port); with
        `own_process_group` it leads a process group of its own (as PID 1 of a container does), which a test can
        signal as a whole."""
        argv = command or (sys.executable, "-m", "agent", "start", "--health-port", "0")
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=own_process_group,
        )
        worker = cls(process=process)
        worker._reader = asyncio.create_task(worker._read())
        await worker.wait_for_log("registered worker" if registered else HEALTH_LISTENING, within_s=ready_within_s)
        return worker

    def health_url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>`` of the worker's health server (``--health-port 0``: from its log)."""
        port = next(r["port"] for r in self.records() if r.get("message") == HEALTH_LISTENING)
        return f"http://127.0.0.1:{port}{path}"

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    def records(self) -> list[dict[str, Any]]:
        """The worker's JSON log records (its job processes' records included)."""
        found = []
        for line in self.lines:
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append(record)
        return found

    def messages(self) -> list[str]:
        return [str(record.get("message", "")) for record in self.records()]

    def room_records(self, room: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record.get("room") == room]

    async def wait_for_log(self, message: str, *, within_s: float, after: int = 0) -> None:
        async with asyncio.timeout(within_s):
            while not any(message in m for m in self.messages()[after:]):
                if self.process.returncode is not None:
                    raise RuntimeError("worker exited:\n" + "\n".join(self.lines[-40:]))
                await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def worker_env(server: ServerProcess, openai: FakeOpenAI, deepgram: FakeDeepgram, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    return {
        **keep,
        "LIVEKIT_URL": server.url,
        "LIVEKIT_API_KEY": server.api_key,
        "LIVEKIT_API_SECRET": server.api_secret,
        "LIVEKIT_AGENT_NAME": AGENT_NAME,
        "OPENAI_API_KEY": "sandbox",
        "OPENAI_BASE_URL": openai.base_url,
        "DEEPGRAM_API_KEY": "sandbox",
        "DEEPGRAM_BASE_URL": deepgram.base_url,
        "HF_HUB_OFFLINE": "1",
        # The test receivers listen on http://127.0.0.1.
        "WEBCALL_EVENTS_ALLOW_HTTP": "true",
        **extra,
    }


@dataclass
class Caller:
    """A browser in the room: hears the agent's audio, sends speech and ``lk.chat``, reads ``lk.transcription``."""

    room: rtc.Room
    identity: str
    heard: list[tuple[float, float]] = field(default_factory=list)  # (time.monotonic, rms) per received frame
    transcriptions: list[str] = field(default_factory=list)
    ambience: list[tuple[float, float]] = field(default_factory=list)  # the agent's background_audio track
    _tasks: TaskSet = field(default_factory=TaskSet)
    _source: rtc.AudioSource | None = None

    @classmethod
    async def join(
        cls,
        server: ServerProcess,
        *,
        room: str,
        identity: str = "caller",
        attributes: dict[str, str] | None = None,
        metadata: str = "",
        microphone: bool = False,
        name: str = "Caller",
    ) -> Caller:
        token = (
            api.AccessToken(server.api_key, server.api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_metadata(metadata)
            .with_attributes(attributes or {})
            # A web-call platform lets the browser set its own attributes (allowlisted by the resolver).
            .with_grants(api.VideoGrants(room_join=True, room=room, can_update_own_metadata=True))
            .to_jwt()
        )
        caller = cls(room=rtc.Room(), identity=identity)
        caller.room.on("track_subscribed", caller._on_track)
        caller.room.register_text_stream_handler("lk.transcription", caller._on_transcription)
        await caller.room.connect(server.url, token)
        if microphone:
            await caller.publish_microphone()
        return caller

    async def publish_microphone(self, *, sample_rate: int = 16000) -> None:
        """Publish the caller's microphone track (a browser does this on joining)."""
        if self._source is None:
            self._source = rtc.AudioSource(sample_rate, 1)
            track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
            subscribed = asyncio.Event()
            self.room.on("local_track_subscribed", lambda _track: subscribed.set())
            await self.room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            )
            if self.room.remote_participants:
                # Someone (the agent) is there: speak once they receive the track, or the first words are lost.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscribed.wait(), timeout=5)

    async def unpublish_microphone(self) -> str:
        """Unpublish the microphone track (a browser switching devices); the next `speak` publishes a new one.
        Returns the unpublished track's sid."""
        assert self._source is not None, "no microphone published"
        sid = next(
            sid
            for sid, publication in self.room.local_participant.track_publications.items()
            if publication.source == rtc.TrackSource.SOURCE_MICROPHONE
        )
        await self.room.local_participant.unpublish_track(sid)
        await self._source.aclose()
        self._source = None
        return sid

    def _on_track(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        into = self.ambience if publication.name == "background_audio" else self.heard
        self._tasks.spawn(self._listen(rtc.AudioStream(track, sample_rate=24000, num_channels=1), into=into))

    async def _listen(self, stream: rtc.AudioStream, *, into: list[tuple[float, float]]) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float32)
            into.append((time.monotonic(), float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0))

    def _on_transcription(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        async def read() -> None:
            self.transcriptions.append(await reader.read_all())

        self._tasks.spawn(read())

    def loud_since(self, since: float, *, threshold: float = 300.0) -> float:
        """Seconds of non-silent agent audio heard since `since` (20 ms frames... or whatever size arrived)."""
        frames = [rms for t, rms in self.heard if t >= since and rms > threshold]
        return len(frames) * 0.01

    def first_loud_at(self, since: float, *, threshold: float = 300.0) -> float | None:
        return next((t for t, rms in self.heard if t >= since and rms > threshold), None)

    async def speak(self, pcm: bytes, *, sample_rate: int = 16000) -> None:
        """Publish a microphone track (once) and play `pcm` into it in real time, followed by silence."""
        await self.publish_microphone(sample_rate=sample_rate)
        assert self._source is not None
        step = sample_rate // 50
        padded = pcm + b"\0" * (sample_rate * 2 * 2)  # 2 s of trailing silence ends the turn
        for start in range(0, len(padded) // 2, step):
            chunk = padded[start * 2 : (start + step) * 2].ljust(step * 2, b"\0")
            await self._source.capture_frame(rtc.AudioFrame(chunk, sample_rate, 1, step))

    async def type(self, text: str) -> None:
        await self.room.local_participant.send_text(text, topic="lk.chat")

    async def leave(self) -> None:
        await self.room.disconnect()
        await self._tasks.cancel()


async def until(predicate: Callable[[], object], *, within_s: float, what: str) -> None:
    try:
        async with asyncio.timeout(within_s):
            # Polled: SDK callbacks write this state and signal no event a test could await.
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for: {what}") from None


def spool_events(spool: Path) -> list[dict[str, Any]]:
    """Every event written whole to a worker's ``WEBCALL_EVENTS_DIR``, file by file in name order. Skipped: a file
    the spool is still writing (``.tmp-*``, renamed over its target when complete), one gone between listing and
    reading, and a last line without its newline (being appended)."""
    events: list[dict[str, Any]] = []
    for path in sorted(spool.glob("*.jsonl")):
        if path.name.startswith(TEMP_PREFIX):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        events.extend(json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n"))
    return events


def spooled_event(spool: Path, *, room: str, kind: str) -> dict[str, Any] | None:
    """The room's first event of type `kind` (``call.ended``...) in a worker's ``WEBCALL_EVENTS_DIR``, once written."""
    return next((e for e in spool_events(spool) if e.get("room") == room and e.get("type") == kind), None)


def room_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def dispatch(lk: api.LiveKitAPI, *, room: str, metadata: str = "") -> api.AgentDispatch:
    return await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=room, metadata=metadata)
    )


async def agent_identities(lk: api.LiveKitAPI, room: str) -> list[str]:
    try:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return []
    return [p.identity for p in listed.participants if p.identity.startswith(AGENT_NAME)]


@contextlib.asynccontextmanager
async def providers() -> AsyncIterator[tuple[FakeOpenAI, FakeDeepgram]]:
    async with FakeOpenAI() as openai, FakeDeepgram() as deepgram:
        yield openai, deepgram
