"""Dispatch -> first welcome audio frame at the caller, through the sandbox server with fake providers.

    python -m bench.dispatch_latency [--runs 10] [--tts-first-byte 0.1]

Starts ``python -m sandbox`` and ``python -m agent start`` as child processes and the fake OpenAI/Deepgram servers
in this process (TTS first byte delayed by ``--tts-first-byte``), all on 127.0.0.1. Each run mints a room, joins a
caller (``rtc.Room``, microphone published, as a browser does), dispatches ``webcall-agent`` with ``CreateDispatch``
and measures until the caller receives the first non-silent frame of the welcome. Prints every run with its steps as
the caller sees them (agent joined, agent track published, track subscribed, first frame, first audible frame) and
the worker's own timeline (``call started``), then the median.

Measured 2026-11-22 on the 2-vCPU box with ``--runs 10``: median **0.370 s** and **0.347 s** in two passes at load
0.2-1.2 (agent joined 0.066 s, agent track published 0.16 s, track subscribed at the caller 0.22 s, first audible
0.35-0.37 s); 0.431 s with another process keeping one of the two cores busy. The steps that got it there from
0.57-0.61 s: the sandbox's join response offers ``fast_publish`` as livekit-server does (0.44 s: the SDK had been
debouncing each publisher negotiation by 150 ms), the callers' audio is subscribed after the agent's own track is
published (``agent.subscriptions``: the two offers no longer queue behind each other), OpenAI TTS is asked for raw
pcm, the job process warms what a first call used to load (profiles, the chat message schema, the OpenAI SDK's lazy
imports), and the prefetched welcome is handed over a frame per event-loop turn. It was 0.83 s (at load 0.3) while
the sandbox asked the caller for a section only after the agent's publish offer and held four packets back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

from livekit import api

from sandbox.providers import speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import Caller, WorkerProcess, dispatch, providers, room_name, until, worker_env

WELCOME = {"welcome": {"text": "Hello! Thanks for calling. How can I help you today?", "interruptible": True}}


async def one_run(*, lk: api.LiveKitAPI, server: ServerProcess, worker: WorkerProcess) -> dict[str, float]:
    """Seconds from dispatch to each step the caller sees."""
    room = room_name("bench")
    await lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(server, room=room, microphone=True)
    steps: dict[str, float] = {}

    def mark(step: str) -> None:
        steps.setdefault(step, time.monotonic() - started)

    caller.room.on("participant_connected", lambda *_: mark("agent_joined"))
    caller.room.on("track_published", lambda *_: mark("track_published"))
    caller.room.on("track_subscribed", lambda *_: mark("track_subscribed"))
    try:
        started = time.monotonic()
        await dispatch(lk, room=room, metadata=json.dumps(WELCOME))
        await until(lambda: caller.first_loud_at(started), within_s=30, what="welcome audio")
        steps["first_frame"] = caller.heard[0][0] - started
        steps["first_audible"] = (caller.first_loud_at(started) or 0.0) - started
        timeline = next((r.get("timeline_ms") for r in worker.room_records(room) if r.get("timeline_ms")), None)
        print(f"  worker timeline (ms from entrypoint start): {timeline}")
        return steps
    finally:
        await caller.leave()
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
        # Let the job end and the pool refill its warm process before the next dispatch.
        await asyncio.sleep(2.0)


async def main(runs: int, tts_first_byte: float) -> int:
    await asyncio.to_thread(speech.load_all)
    server = await start_server_process(port=0)
    try:
        async with providers() as (openai, deepgram):
            openai.set_latency(first_byte=tts_first_byte)
            worker = await WorkerProcess.start(worker_env(server, openai, deepgram))
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            try:
                await asyncio.sleep(3.0)  # idle job processes finish their prewarm
                results = []
                for i in range(runs):
                    steps = await one_run(lk=lk, server=server, worker=worker)
                    results.append(steps)
                    print(
                        f"run {i + 1}: "
                        + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(steps.items(), key=lambda kv: kv[1]))
                    )
                for step in ("agent_joined", "track_published", "track_subscribed", "first_frame", "first_audible"):
                    values = [r[step] for r in results if step in r]
                    print(f"median dispatch -> {step}: {statistics.median(values):.3f} s")
                median = statistics.median(r["first_audible"] for r in results)
                print(f"median dispatch -> first welcome audio: {median:.3f} s over {runs} runs")
            finally:
                await lk.aclose()
                await worker.aclose()
    finally:
        await server.aclose()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch_latency", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tts-first-byte", type=float, default=0.1)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.tts_first_byte)))
