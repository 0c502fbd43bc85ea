"""The dev stack for the page tests: ``python -m agent run-local`` (sandbox, fake providers, dev page, worker) on
free loopback ports, as a developer runs it with ``make run``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.e2e.test_run_local import free_port

STACK_READY_WITHIN_S = 180.0


@dataclass
class DevStack:
    """A running ``run-local``: the dev page's URL and every line it printed."""

    process: asyncio.subprocess.Process
    page_url: str = ""
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def read_until(self, marker: str) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(STACK_READY_WITHIN_S):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, "run-local exited early:\n" + "\n".join(self.lines[-40:])
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if marker in line:
                    return line

    def keep_reading(self) -> None:
        async def read() -> None:
            assert self.process.stdout is not None
            while raw := await self.process.stdout.readline():
                self.lines.append(raw.decode(errors="replace").rstrip())

        self._reader = asyncio.create_task(read())

    async def aclose(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=10)


@pytest.fixture
async def dev_stack() -> AsyncIterator[DevStack]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    ports = [str(free_port()) for _ in range(4)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "agent", "run-local", "--livekit-port", ports[0], "--openai-port", ports[1]),
        *("--deepgram-port", ports[2], "--page-port", ports[3]),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stack = DevStack(process=process)
    try:
        stack.page_url = (await stack.read_until("talk to the agent: open ")).split(" open ", 1)[1]
        await stack.read_until("registered worker")
        stack.keep_reading()
        yield stack
    finally:
        await stack.aclose()
