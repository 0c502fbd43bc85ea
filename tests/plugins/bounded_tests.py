"""Every test ends: an async test that overruns its bound fails with its name, whatever its event loop is doing.

pytest-timeout's default `signal` method raises inside whatever Python frame runs when SIGALRM lands. In an asyncio
test that is often a callback or another task: asyncio catches the exception there (a task dies, or "Exception in
callback" is logged) and the test goes on waiting, unbounded. So each coroutine test runs under `asyncio.timeout`
at its bound (the `timeout` marker or ini value), which cancels the test's own task and fails it by name. Behind it,
pytest-timeout's `thread` method fires a little later: if the loop itself is blocked (a synchronous call that never
returns, or an async fixture that never finishes), it names the test, dumps every thread's stack and ends the
run, so nothing hangs. Synchronous tests keep the `signal` method, which interrupts them in their own frame.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

import pytest
import pytest_timeout  # type: ignore[import-untyped]  # ships no type information

# How long after the async bound the thread method ends the run when the loop did not come back to fail the test.
# It also covers the test's teardown, which the async bound does not: a fixture that stops a process stack takes up
# to about 75 s (SIGINT, a minute's wait, SIGKILL), so a test failed at its bound still reports by name.
BACKSTOP_S: Final = 120.0


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
        # first, so that it is the closest `timeout` marker: a test's own marker would otherwise keep the signal
        # method, whose exception the event loop can swallow
        item.add_marker(pytest.mark.timeout(bound + BACKSTOP_S, method="thread"), append=False)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's thread method, naming the test before its stack dump ends the run (the dump alone shows
    only where each thread was, which for an async test stuck in a fixture is the event loop's select)."""
    if settings.method != "thread":
        return None

    def fire() -> None:
        # captured output is printed by the dump that follows, this line included
        sys.stderr.write(f"Timeout: {item.nodeid} ran over {settings.timeout:g} s and its event loop never came back\n")
        pytest_timeout.timeout_timer(item, settings)

    timer = threading.Timer(settings.timeout, fire)
    timer.name = f"pytest_timeout {item.nodeid}"

    def cancel() -> None:
        timer.cancel()
        timer.join()

    setattr(item, "cancel_timeout", cancel)  # noqa: B010 - the attribute pytest-timeout reads to cancel its timer
    timer.start()
    return True
