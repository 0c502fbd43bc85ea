"""The dev stack for the page tests: ``python -m agent run-local`` (sandbox, fake providers, dev page, worker) on
free loopback ports, with no keys, as a developer runs it with ``make run``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.dev_stack import DevStack, clean_environment


@pytest.fixture
async def dev_stack() -> AsyncIterator[DevStack]:
    stack = await DevStack.start(env=clean_environment())
    try:
        await stack.until_ready()
        stack.keep_reading()
        yield stack
    finally:
        await stack.aclose()
