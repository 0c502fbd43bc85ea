"""``/ready`` and ``/`` of a real worker as LiveKit (the sandbox server) comes, goes and never comes back."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from sandbox.server.auth import DEV_API_KEY, DEV_API_SECRET
from sandbox.server.process import start_server_process
from tests.e2e.stack import AGENT_NAME, HEALTH_LISTENING, WorkerProcess
from tests.ops.scrape import get

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env_for(port: int, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    return {
        **keep,
        "LIVEKIT_URL": f"ws://127.0.0.1:{port}",
        "LIVEKIT_API_KEY": DEV_API_KEY,
        "LIVEKIT_API_SECRET": DEV_API_SECRET,
        "LIVEKIT_AGENT_NAME": AGENT_NAME,
        # No provider is needed: no call is made.
        "OPENAI_API_KEY": "sandbox",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "HF_HUB_OFFLINE": "1",
        "WEBCALL_IDLE_PROCESSES": "0",
        **extra,
    }


async def answers(url: str, status: int, *, within_s: float) -> str:
    """The body of the first ``GET url`` answered with `status`, polled."""
    async with asyncio.timeout(within_s):
        while True:
            got, body = await get(url)
            if got == status:
                return body
            await asyncio.sleep(0.2)


async def test_ready_fails_until_the_worker_registers_and_again_while_livekit_is_away() -> None:
    port = free_port()
    worker = await WorkerProcess.start(env_for(port, WEBCALL_LIVEKIT_MAX_RETRY="100"), registered=False)
    try:
        assert await get(worker.health_url("/ready")) == (503, "unregistered")
        assert await get(worker.health_url("/")) == (200, "OK")
        server = await start_server_process(port=port)
        try:
            assert await answers(worker.health_url("/ready"), 200, within_s=30) == "ready"
        finally:
            await server.aclose()
        assert await answers(worker.health_url("/ready"), 503, within_s=15) == "unregistered"
        assert await get(worker.health_url("/")) == (200, "OK"), "still trying: alive"
    finally:
        await worker.aclose()


async def test_a_worker_that_gives_up_on_livekit_exits_non_zero() -> None:
    # Nothing listens there. Two failed attempts are 0 + 2 s of backoff.
    worker = await WorkerProcess.start(env_for(free_port(), WEBCALL_LIVEKIT_MAX_RETRY="2"), registered=False)
    try:
        async with asyncio.timeout(60):
            code = await worker.process.wait()
        assert code == 1
        assert any(m == HEALTH_LISTENING for m in worker.messages())
        assert any("failed to connect to livekit" in m for m in worker.messages())
    finally:
        await worker.aclose()
