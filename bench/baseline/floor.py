"""The floor of a call's cost: a worker that does less than an agent, one level at a time.

    BENCH_FLOOR=connect|audio|vad python -m livekit.agents start bench/baseline/floor.py --simulation

- ``connect``: the job joins the room and subscribes to nothing;
- ``audio``: it also subscribes to the caller's microphone and reads every frame (resampled to 16 kHz mono, as
  RoomIO hands audio to a session);
- ``vad``: it also runs those frames through a Silero VAD stream (prewarmed, as the agents do), the engine named by
  ``WEBCALL_VAD`` (``silero`` or ``native``, as the project's setting).

`bench.compare --floor` runs each with the same talking callers as its capacity step, so the agents' per-call
cost can be read against what no agent can avoid. It imports nothing of ``agent``.
"""

from __future__ import annotations

import asyncio
import os

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, inference, vad
from livekit.plugins import silero

LEVEL = os.environ.get("BENCH_FLOOR", "connect")

server = AgentServer()


def prewarm(proc: JobProcess) -> None:
    if os.environ.get("WEBCALL_VAD") == "native":
        proc.userdata["vad"] = inference.VAD(min_silence_duration=0.55)
    else:
        proc.userdata["vad"] = silero.VAD.load(min_silence_duration=0.55)


server.setup_fnc = prewarm


async def _read(track: rtc.Track, model: vad.VAD | None) -> None:
    stream = rtc.AudioStream(track, sample_rate=16000, num_channels=1)
    detector = model.stream() if model is not None else None
    drain = asyncio.create_task(_drain(detector)) if detector is not None else None
    try:
        async for event in stream:
            if detector is not None:
                detector.push_frame(event.frame)
    finally:
        if detector is not None and drain is not None:
            drain.cancel()
            await detector.aclose()


async def _drain(detector: vad.VADStream) -> None:
    async for _ in detector:
        pass


@server.rtc_session()
async def floor_agent(ctx: JobContext) -> None:
    if LEVEL == "connect":
        await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
        return
    model: vad.VAD | None = ctx.proc.userdata["vad"] if LEVEL == "vad" else None
    tasks: set[asyncio.Task[None]] = set()

    def on_track(track: rtc.Track, *_: object) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            task = asyncio.create_task(_read(track, model))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    ctx.room.on("track_subscribed", on_track)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
