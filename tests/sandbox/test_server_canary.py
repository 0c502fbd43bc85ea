"""The canary: an unmodified ``livekit.agents`` worker (subprocess) against the sandbox, end to end.

If an upgrade of ``livekit``, ``livekit-agents`` or ``livekit-protocol`` needs more from the sandbox, this test
fails first: registration, dispatch, explicit subscription, ``track_subscribed``, audio both ways, ``lk.chat``, and
the job ending when its room is deleted.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit import api, rtc
from livekit.rtc.data_stream import TextStreamHandler

from sandbox.server import SandboxServer

from .server_helpers import Listener, eventually, publish_tone

AGENT_SCRIPT = Path(__file__).with_name("canary_agent.py")


@pytest.fixture
async def canary_worker(sandbox_server: SandboxServer) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {
        **os.environ,
        "LIVEKIT_URL": sandbox_server.url,
        "LIVEKIT_API_KEY": sandbox_server.api_key,
        "LIVEKIT_API_SECRET": sandbox_server.api_secret,
        "HF_HUB_OFFLINE": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(AGENT_SCRIPT), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await eventually(lambda: bool(sandbox_server.agents.workers), within=30)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_a_real_agents_worker_is_dispatched_talks_listens_chats_and_ends_with_the_room(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI, canary_worker: asyncio.subprocess.Process
) -> None:
    caller = rtc.Room()
    listener = Listener()
    listener.attach(caller)
    heard: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    echoed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    readers: list[asyncio.Task[None]] = []

    def on_text(target: asyncio.Future[str]) -> TextStreamHandler:
        def handle(reader: rtc.TextStreamReader, _sender: str) -> None:
            async def read() -> None:
                text = await reader.read_all()
                if not target.done():
                    target.set_result(text)

            readers.append(asyncio.ensure_future(read()))

        return handle

    caller.register_text_stream_handler("canary.heard", on_text(heard))
    caller.register_text_stream_handler("lk.chat", on_text(echoed))
    await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="canary", room="canary"))
    # Every step is bounded, so a stuck one fails here, named, instead of at the suite's 300 s timeout.
    async with asyncio.timeout(30):
        await caller.connect(sandbox_server.url, sandbox_server.token(room="canary", identity="caller"))
    async with asyncio.timeout(30):
        tone = await publish_tone(caller)
    try:
        await eventually(
            lambda: any(
                p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT for p in caller.remote_participants.values()
            ),
            within=20,
        )
        (agent_identity,) = caller.remote_participants
        await eventually(lambda: listener.loud_frames(agent_identity) >= 20, within=15)
        assert await asyncio.wait_for(heard, 15) == "heard"
        await caller.local_participant.send_text("ping", topic="lk.chat")
        assert await asyncio.wait_for(echoed, 10) == "echo: ping"

        (worker,) = sandbox_server.agents.workers.values()
        assert len(worker.jobs) == 1
        await sandbox_api.room.delete_room(api.DeleteRoomRequest(room="canary"))
        await eventually(lambda: not worker.jobs, within=20)
    finally:
        async with asyncio.timeout(30):
            await tone.aclose()
            await listener.aclose()
            await caller.disconnect()
