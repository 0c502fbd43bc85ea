"""One stack for the QA tests: sandbox server, fake providers, a worker spooling its call events to a directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.conftest import Stack, running_stack


@dataclass
class QAStack:
    stack: Stack
    events_dir: Path

    def env(self) -> dict[str, str]:
        """What ``python -m agent qa`` needs to reach this stack: the server, its keys, the fakes, the spool."""
        server = self.stack.server
        return {
            "LIVEKIT_URL": server.url,
            "LIVEKIT_API_KEY": server.api_key,
            "LIVEKIT_API_SECRET": server.api_secret,
            "OPENAI_BASE_URL": self.stack.openai.base_url,
            "DEEPGRAM_BASE_URL": self.stack.deepgram.base_url,
            "WEBCALL_EVENTS_DIR": str(self.events_dir),
        }


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def qa_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[QAStack]:
    events_dir = tmp_path_factory.mktemp("events")
    async with running_stack(WEBCALL_EVENTS_DIR=str(events_dir)) as stack:
        yield QAStack(stack=stack, events_dir=events_dir)
