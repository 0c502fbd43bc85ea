"""What the sandbox LiveKit server costs: join time, audio latency through it, dispatch latency, CPU per stream.

Run: ``.venv/bin/python -m bench.sandbox_server [--runs 10] [--rooms 1 2 4]``. Prints the median and max of:

- connect: ``rtc.Room.connect()`` to a running server (``/rtc/v1``, one peer connection, ICE/DTLS on loopback);
- audio latency: from the first tone frame handed to ``AudioSource.capture_frame`` (20 ms source queue) at one
  client to the first loud frame out of ``AudioStream`` at the other (SDK capture and receive buffers, Opus encode
  and decode, the server's forwarding);
- dispatch: ``CreateDispatch`` (livekit-api) to the ``AvailabilityRequest`` arriving at a raw ``/agent`` worker;
- server CPU: ``python -m sandbox`` as a child process, N rooms of two participants each publishing a tone
  (2N forwarded streams) for 10 s; CPU seconds of the server process per wall second, from ``/proc``.

Measured 2026-11-22 on the 2-vCPU box (load 0.4), 10 runs, Opus forwarded packet by packet, the join response
offering ``fast_publish``:

    connect                      median 0.069 s  max 0.115 s
    audio latency                median 0.092 s  max 0.103 s
    dispatch                     median 0.001 s  max 0.002 s
    server cpu, 1 room / 2 streams   0.10 cores (0.048 per stream)
    server cpu, 2 rooms / 4 streams  0.13 cores (0.034 per stream)
    server cpu, 4 rooms / 8 streams  0.23 cores (0.029 per stream)

Earlier the same day (load about 2), with aiortc holding four frames back and no ``fast_publish`` (the SDK then
debounces each publisher negotiation by 150 ms): connect 0.098 s, audio latency 0.150 s. With aiortc decoding and
re-encoding every stream (the first version, load 3-8) it was 0.174 s median audio latency and 0.08-0.10 cores per
stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import warnings

import aiohttp
import numpy as np
from livekit import api, rtc
from livekit.protocol import agent as agent_pb

from sandbox.server import running
from sandbox.server.auth import Keys
from sandbox.server.process import start_server_process

RATE = 48000
FRAME = 480


def _report(name: str, values: list[float], unit: str = "s") -> None:
    print(f"{name:<28} median {statistics.median(values):.3f} {unit}  max {max(values):.3f} {unit}  (n={len(values)})")


def _frame(loud: bool, offset: int) -> rtc.AudioFrame:
    t = np.arange(offset, offset + FRAME)
    amplitude = 12000 if loud else 0
    samples = (np.sin(2 * np.pi * 440 * t / RATE) * amplitude).astype(np.int16)
    return rtc.AudioFrame(samples.tobytes(), RATE, 1, FRAME)


async def _connect(url: str, room: str, identity: str) -> rtc.Room:
    client = rtc.Room()
    await client.connect(url, Keys().mint_join_token(room=room, identity=identity))
    return client


async def audio_latency(url: str, room: str) -> float:
    sender = await _connect(url, room, "sender")
    receiver = await _connect(url, room, "receiver")
    first_loud: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    subscribed = asyncio.Event()

    async def read(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            data = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
            if data.size and int(np.abs(data).max()) > 2000 and not first_loud.done():
                first_loud.set_result(time.perf_counter())
                return

    def on_track(track: rtc.Track, *_: object) -> None:
        subscribed.set()
        reader_tasks.append(asyncio.create_task(read(track)))

    reader_tasks: list[asyncio.Task[None]] = []
    receiver.on("track_subscribed", on_track)
    # A 1 s source queue (the SDK default) would add up to 1 s before the tone even leaves the client.
    source = rtc.AudioSource(RATE, 1, queue_size_ms=20)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await sender.local_participant.publish_track(track, rtc.TrackPublishOptions())
    offset = 0
    deadline = time.perf_counter() + 10
    while not subscribed.is_set() and time.perf_counter() < deadline:
        await source.capture_frame(_frame(False, offset))
        offset += FRAME
    for _ in range(50):  # half a second of silence so the path is warm
        await source.capture_frame(_frame(False, offset))
        offset += FRAME
    started = time.perf_counter()
    while not first_loud.done() and time.perf_counter() - started < 5:
        await source.capture_frame(_frame(True, offset))
        offset += FRAME
    latency = (await first_loud) - started
    for task in reader_tasks:
        task.cancel()
    await source.aclose()
    await sender.disconnect()
    await receiver.disconnect()
    return latency


async def _latencies(runs: int) -> None:
    async with running(port=0) as server:
        connects: list[float] = []
        for i in range(runs):
            began = time.perf_counter()
            client = await _connect(server.url, f"c{i}", "me")
            connects.append(time.perf_counter() - began)
            await client.disconnect()
        _report("connect", connects)
        _report("audio latency", [await audio_latency(server.url, f"a{i}") for i in range(runs)])
        await _dispatch_latency(server.url, server.http_url, runs)


async def _dispatch_latency(url: str, http_url: str, runs: int) -> None:
    keys = Keys()
    token = api.AccessToken(keys.api_key, keys.api_secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
    values: list[float] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/agent", headers={"Authorization": f"Bearer {token}"}) as ws,
        api.LiveKitAPI(http_url, keys.api_key, keys.api_secret) as lk,
    ):
        register = agent_pb.WorkerMessage(register=agent_pb.RegisterWorkerRequest(agent_name="bench"))
        await ws.send_bytes(register.SerializeToString())
        await ws.receive()
        for i in range(runs):
            began = time.perf_counter()
            await lk.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="bench", room=f"d{i}"))
            while True:
                message = agent_pb.ServerMessage.FromString((await ws.receive()).data)
                if message.WhichOneof("message") == "availability":
                    break
            values.append(time.perf_counter() - began)
    _report("dispatch", values)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _server_cpu(rooms: int, seconds: float = 10.0) -> float:
    process = await start_server_process(port=0, extra_args=["--log-level", "WARNING"])
    clients: list[rtc.Room] = []
    players: list[asyncio.Task[None]] = []
    try:
        for r in range(rooms):
            for who in ("a", "b"):
                client = await _connect(process.url, f"cpu{r}", who)
                clients.append(client)
                source = rtc.AudioSource(RATE, 1)
                await client.local_participant.publish_track(
                    rtc.LocalAudioTrack.create_audio_track("tone", source), rtc.TrackPublishOptions()
                )

                async def play(source: rtc.AudioSource = source) -> None:
                    offset = 0
                    while True:
                        await source.capture_frame(_frame(True, offset))
                        offset += FRAME

                players.append(asyncio.create_task(play()))
        await asyncio.sleep(2)  # subscriptions settle
        before, began = _cpu_seconds(process.process.pid), time.perf_counter()
        await asyncio.sleep(seconds)
        return (_cpu_seconds(process.process.pid) - before) / (time.perf_counter() - began)
    finally:
        for task in players:
            task.cancel()
        for client in clients:
            await client.disconnect()
        await process.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rooms", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    await _latencies(args.runs)
    for rooms in args.rooms:
        cpu = await _server_cpu(rooms)
        print(
            f"server cpu, {rooms} room(s) / {2 * rooms} streams   {cpu:.2f} cores  ({cpu / (2 * rooms):.3f} per stream)"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    asyncio.run(main())
