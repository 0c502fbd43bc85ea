"""Every test ends: an async test that overruns its bound fails with its name, whatever its event loop is doing.

pytest-timeout's default `signal` method raises inside whatever Python frame runs when SIGALRM lands. In an asyncio
test that is often a callback or another task: asyncio catches the exception there (a task dies, or "Exception in
callback" is logged) and the test goes on waiting, unbounded. So each coroutine test runs under `asyncio.timeout`
at its bound (the `timeout` marker or ini value), which cancels the test's own task and fails it by name. Behind it,
pytest-timeout's `thread` method fires a little later: if the loop itself is blocked (a synchronous call that never
returns), it dumps every thread's stack with the test's name and ends the run, so nothing hangs. Synchronous tests
keep the `signal` method, which interrupts them in their own frame.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Final

import pytest

# How long after the async bound the thread method ends the run when the loop did not come back to fail the test.
BACKSTOP_S: Final = 30.0


def _bound_of(item: pytest.Function) -> float | None:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    if marker is not None and "timeout" in marker.kwargs:
        return float(marker.kwargs["timeout"])
    value = item.config.getini("timeout")
    return float(value) if value else None


def bounded(test: Callable[..., Awaitable[object]], *, bound_s: float) -> Callable[..., Awaitable[object]]:
    """`test`, failing with `pytest.fail` once it has run `bound_s` seconds."""

    @functools.wraps(test)
    async def run(*args: object, **kwargs: object) -> object:
        limit = asyncio.timeout(bound_s)
        try:
            async with limit:
                return await test(*args, **kwargs)
        except TimeoutError:
            # Only the bound's own expiry is the test's time-out; a TimeoutError the test raised itself stays its own.
            if not limit.expired():
                raise
            pytest.fail(f"test timed out after {bound_s:g} s (every wait in a test is bounded)")

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(item.obj):
            continue
        bound = _bound_of(item)
        if bound is None or bound <= 0:
            continue
        item.obj = bounded(item.obj, bound_s=bound)
        item.add_marker(pytest.mark.timeout(bound + BACKSTOP_S, method="thread"))
