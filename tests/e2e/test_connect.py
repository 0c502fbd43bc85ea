"""``python -m agent connect --room NAME``: a worker that never registers joins the room at once, without a dispatch,
and runs the call there as a dispatched one would."""

from __future__ import annotations

import asyncio
import sys

import pytest
from livekit import api

from sandbox.providers import speech
from sandbox.server.process import start_server_process
from tests.e2e.stack import Caller, WorkerProcess, agent_identities, providers, room_name, until, worker_env

pytestmark = [pytest.mark.e2e]


@pytest.mark.asyncio
async def test_connect_joins_the_named_room_without_a_dispatch_and_welcomes_the_caller() -> None:
    await asyncio.to_thread(speech.load_all)
    server = await start_server_process(port=0)
    room = room_name("connect")
    try:
        async with providers() as (openai, deepgram):
            env = worker_env(server, openai, deepgram, WEBCALL_LOG_FORMAT="json")
            command = (sys.executable, "-m", "agent", "connect", "--room", room, "--health-port", "0")
            worker = await WorkerProcess.start(env, command=command, registered=False)
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            caller: Caller | None = None
            try:
                async with asyncio.timeout(60):
                    # Polled: the server signals no event for a participant joining a room one is not in.
                    while not await agent_identities(lk, room):  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
                assert [r.name for r in rooms.rooms] == [room], "connect created the room"
                dispatches = await lk.agent_dispatch.list_dispatch(room_name=room)
                assert dispatches == [], "the agent joined with no dispatch"
                assert "registered worker" not in worker.messages()
                caller = await Caller.join(server, room=room)
                await until(lambda: caller is not None and caller.transcriptions, within_s=40, what="the welcome")
                assert "How can I help" in " ".join(caller.transcriptions)
            finally:
                if caller is not None:
                    await caller.leave()
                await lk.aclose()
                await worker.aclose()
    finally:
        await server.aclose()
