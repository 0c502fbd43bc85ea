"""A minimal real ``livekit.agents`` worker for the sandbox canary test (run as a subprocess, not collected).

It connects with audio-only auto-subscribe (so the SDK subscribes explicitly), publishes a tone only after
``wait_for_subscription()`` (the ``track_subscribed`` signal the agents framework relies on), reports on topic
``canary.heard`` once it hears the caller's audio, and echoes every ``lk.chat`` message.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobExecutorType

server = AgentServer(
    job_executor_type=JobExecutorType.THREAD,
    load_fnc=lambda: 0.0,
    load_threshold=1.0,
    num_idle_processes=0,
    port=0,
)

_tasks: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _play_tone(source: rtc.AudioSource) -> None:
    offset = 0
    while True:
        t = np.arange(offset, offset + 480)
        offset += 480
        samples = (np.sin(2 * np.pi * 330 * t / 48000) * 12000).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(samples.tobytes(), 48000, 1, 480))


async def _listen(ctx: JobContext, track: rtc.Track) -> None:
    loud = 0
    async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
        data = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
        if data.size and int(np.abs(data).max()) > 2000:
            loud += 1
        if loud == 20:
            await ctx.room.local_participant.send_text("heard", topic="canary.heard")


@server.rtc_session(agent_name="canary")
async def entrypoint(ctx: JobContext) -> None:
    def on_track(track: rtc.Track, _pub: rtc.RemoteTrackPublication, _who: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            _keep(asyncio.create_task(_listen(ctx, track)))

    ctx.room.on("track_subscribed", on_track)

    def on_chat(reader: rtc.TextStreamReader, _sender: str) -> None:
        async def echo() -> None:
            text = await reader.read_all()
            await ctx.room.local_participant.send_text(f"echo: {text}", topic="lk.chat")

        _keep(asyncio.create_task(echo()))

    ctx.room.register_text_stream_handler("lk.chat", on_chat)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("agent-voice", source)
    publication = await ctx.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    await publication.wait_for_subscription()
    _keep(asyncio.create_task(_play_tone(source)))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(server.run(devmode=False))
