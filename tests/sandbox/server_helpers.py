"""Small helpers the sandbox server tests share: joining rooms, playing a tone, listening, waiting for state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import numpy as np
from livekit import api, rtc
from livekit.protocol import agent as agent_pb

from sandbox.server import SandboxServer

SAMPLE_RATE = 48000
FRAME = 480  # 10 ms


async def join(server: SandboxServer, *, room: str, identity: str, auto_subscribe: bool = True) -> rtc.Room:
    client = rtc.Room()
    await client.connect(
        server.url,
        server.token(room=room, identity=identity),
        rtc.RoomOptions(auto_subscribe=auto_subscribe),
    )
    return client


@contextlib.asynccontextmanager
async def joined(server: SandboxServer, *, room: str, identities: list[str]) -> AsyncIterator[list[rtc.Room]]:
    clients: list[rtc.Room] = []
    try:
        for identity in identities:
            clients.append(await join(server, room=room, identity=identity))
        yield clients
    finally:
        for client in clients:
            await client.disconnect()


@dataclass
class Tone:
    """A 440 Hz tone published as a microphone track."""

    publication: rtc.LocalTrackPublication
    source: rtc.AudioSource
    task: asyncio.Task[None]

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.source.aclose()


async def publish_tone(client: rtc.Room, *, name: str = "tone") -> Tone:
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track(name, source)
    publication = await client.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )

    async def play() -> None:
        offset = 0
        while True:
            t = np.arange(offset, offset + FRAME)
            samples = (np.sin(2 * np.pi * 440 * t / SAMPLE_RATE) * 12000).astype(np.int16)
            offset += FRAME
            await source.capture_frame(rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME))

    return Tone(publication=publication, source=source, task=asyncio.create_task(play()))


@dataclass
class Listener:
    """Records the peak level of every audio frame a client receives, per publishing identity."""

    peaks: dict[str, list[int]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def attach(self, client: rtc.Room) -> None:
        @client.on("track_subscribed")
        def _on_track(track: rtc.Track, _pub: rtc.RemoteTrackPublication, who: rtc.RemoteParticipant) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                self.tasks.append(asyncio.create_task(self._read(track, who.identity)))

    async def _read(self, track: rtc.Track, identity: str) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                data = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
                self.peaks.setdefault(identity, []).append(int(np.abs(data).max()) if data.size else 0)
        finally:
            await stream.aclose()

    def loud_frames(self, identity: str, *, threshold: int = 2000) -> int:
        return sum(1 for peak in self.peaks.get(identity, []) if peak >= threshold)

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def eventually(check: Callable[[], bool], *, within: float = 10.0, step: float = 0.05) -> None:
    """Wait until ``check()`` holds; fail the test with a timeout otherwise."""
    async with asyncio.timeout(within):
        # Polled: neither the SDK's objects nor the server's state expose a change event to await.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(step)


class RawWorker:
    """A worker speaking the /agent protocol by hand, so each message can be asserted."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.worker_id = ""

    async def send(self, message: agent_pb.WorkerMessage) -> None:
        await self.ws.send_bytes(message.SerializeToString())

    async def receive(self, *, within: float = 5.0) -> agent_pb.ServerMessage:
        msg = await self.ws.receive(timeout=within)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        return agent_pb.ServerMessage.FromString(msg.data)

    async def next_of(self, kind: str, *, within: float = 5.0) -> agent_pb.ServerMessage:
        async with asyncio.timeout(within):
            while True:
                message = await self.receive(within=within)
                if message.WhichOneof("message") == kind:
                    return message

    async def accept(self, *, identity: str = "agent-1") -> agent_pb.JobAssignment:
        request = (await self.next_of("availability")).availability
        await self.send(
            agent_pb.WorkerMessage(
                availability=agent_pb.AvailabilityResponse(
                    job_id=request.job.id, available=True, participant_identity=identity
                )
            )
        )
        return (await self.next_of("assignment")).assignment

    async def set_status(self, status: int, *, load: float = 0.0) -> None:
        await self.send(agent_pb.WorkerMessage(update_worker=agent_pb.UpdateWorkerStatus(status=status, load=load)))  # type: ignore[arg-type]


@asynccontextmanager
async def raw_worker(server: SandboxServer, *, agent_name: str = "tester") -> AsyncIterator[RawWorker]:
    token = api.AccessToken(server.api_key, server.api_secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.url}/agent", headers={"Authorization": f"Bearer {token}"}) as ws,
    ):
        worker = RawWorker(ws)
        await worker.send(
            agent_pb.WorkerMessage(
                register=agent_pb.RegisterWorkerRequest(type=agent_pb.JobType.JT_ROOM, agent_name=agent_name)
            )
        )
        worker.worker_id = (await worker.next_of("register")).register.worker_id
        yield worker
