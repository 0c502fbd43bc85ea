"""``python -m sandbox`` as a child process: it serves clients and ``livekit-api`` like the in-process server."""

from __future__ import annotations

import subprocess
import sys

from livekit import api, rtc

from sandbox.server.auth import Keys
from sandbox.server.process import ServerProcess


async def test_the_server_process_serves_twirp_and_clients(sandbox_server_process: ServerProcess) -> None:
    assert sandbox_server_process.url.startswith("ws://127.0.0.1:")
    client = api.LiveKitAPI(
        sandbox_server_process.http_url, sandbox_server_process.api_key, sandbox_server_process.api_secret
    )
    caller = rtc.Room()
    try:
        await client.room.create_room(api.CreateRoomRequest(name="shell"))
        await caller.connect(sandbox_server_process.url, Keys().mint_join_token(room="shell", identity="caller"))
        listed = await client.room.list_participants(api.ListParticipantsRequest(room="shell"))
        assert [p.identity for p in listed.participants] == ["caller"]
    finally:
        await caller.disconnect()
        await client.aclose()


def test_the_token_command_prints_a_join_token_for_the_dev_keys() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "sandbox", "token", "--room", "demo", "--identity", "me"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    claims = Keys().verify(result.stdout.strip())
    assert claims.identity == "me"
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join) == ("demo", True)


def test_the_providers_command_is_delegated_to_the_providers_package() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "sandbox", "providers", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.startswith("usage: python -m sandbox providers")
