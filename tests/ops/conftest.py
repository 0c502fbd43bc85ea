"""One pool (sandbox server, fakes, webhook receiver) per ops test module; each test adds the workers it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.ops.pool import Pool, running_pool


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool() -> AsyncIterator[Pool]:
    async with running_pool() as running:
        yield running
