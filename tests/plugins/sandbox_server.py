"""pytest fixtures for the sandbox LiveKit-compatible server.

``sandbox_server`` runs the server in the test's event loop on a free loopback port and yields its
``SandboxServer`` handle: ``.url`` (ws://127.0.0.1:PORT), ``.http_url``, ``.api_key``, ``.api_secret``,
``.token(room=, identity=)`` and the live state for assertions (``.rooms.rooms``, ``.agents.workers``,
``.agents.dispatches``). ``sandbox_api`` is a ``livekit.api.LiveKitAPI`` pointed at it.
``sandbox_server_process`` runs ``python -m sandbox`` as a child process (for worker subprocesses and e2e runs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from livekit import api

from sandbox.server import SandboxServer, running
from sandbox.server.process import ServerProcess, start_server_process


def pytest_configure(config: pytest.Config) -> None:
    # The sandbox uses livekit-server's documented dev secret ("secret"); PyJWT warns that it is short.
    config.addinivalue_line("filterwarnings", "ignore::jwt.warnings.InsecureKeyLengthWarning")


@pytest.fixture
async def sandbox_server() -> AsyncIterator[SandboxServer]:
    async with running(port=0) as server:
        yield server


@pytest.fixture
async def sandbox_api(sandbox_server: SandboxServer) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(sandbox_server.http_url, sandbox_server.api_key, sandbox_server.api_secret)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def sandbox_server_process() -> AsyncIterator[ServerProcess]:
    process = await start_server_process(port=0)
    try:
        yield process
    finally:
        await process.aclose()
