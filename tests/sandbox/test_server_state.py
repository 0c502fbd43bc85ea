"""``GET /sandbox/state`` and ``python -m sandbox state``: the QA view of rooms, tracks, workers and jobs."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from livekit import api

from sandbox.server import SandboxServer

from .server_helpers import eventually, joined, publish_tone, raw_worker


async def test_the_state_endpoint_needs_an_api_token(sandbox_server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{sandbox_server.http_url}/sandbox/state") as resp:
        assert resp.status == 401


async def test_state_shows_rooms_tracks_workers_and_jobs_without_metadata_contents(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as worker:
        await sandbox_api.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="tester", room="qa", metadata='{"secret": "caller data"}')
        )
        await worker.accept(identity="agent-qa")
        async with joined(sandbox_server, room="qa", identities=["caller"]) as (caller,):
            tone = await publish_tone(caller)
            try:
                track = sandbox_server.rooms.rooms["qa"].participants["caller"].tracks[tone.publication.sid]
                await eventually(lambda: track.frames_received > 10)
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-W",
                    "ignore",
                    "-m",
                    "sandbox",
                    "state",
                    "--url",
                    sandbox_server.http_url,
                    stdout=asyncio.subprocess.PIPE,
                )
                stdout, _ = await asyncio.wait_for(process.communicate(), 30)
            finally:
                await tone.aclose()
    assert process.returncode == 0
    assert b"caller data" not in stdout
    state = json.loads(stdout)
    (room,) = state["rooms"]
    (caller_state,) = room["participants"]
    (track_state,) = caller_state["tracks"]
    assert (room["name"], caller_state["identity"], caller_state["state"]) == ("qa", "caller", "ACTIVE")
    assert track_state["frames_received"] > 10
    assert track_state["peak_level"] > 0.2
    (worker_state,) = state["workers"]
    assert (worker_state["agent_name"], worker_state["status"]) == ("tester", "WS_AVAILABLE")
    (dispatch,) = state["dispatches"]
    assert dispatch["jobs"][0]["participant_identity"] == "agent-qa"
