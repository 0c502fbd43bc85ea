"""`agent.tasks.TaskSet`: background tasks are held until they end, and cancelled together when their owner closes."""

from __future__ import annotations

import asyncio
import gc

import pytest

from agent.tasks import TaskSet

pytestmark = pytest.mark.asyncio


async def test_a_task_nobody_else_holds_runs_to_its_end() -> None:
    tasks = TaskSet()
    done = asyncio.Event()

    async def later() -> None:
        await asyncio.sleep(0.01)
        done.set()

    tasks.spawn(later())  # the returned task is dropped: only the set holds it
    gc.collect()
    async with asyncio.timeout(5):
        await done.wait()
    await tasks.wait()
    assert len(tasks) == 0, "an ended task leaves the set"


async def test_cancel_ends_every_task_and_the_owners_own_and_waits_for_them() -> None:
    tasks = TaskSet()
    cleaned: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append(name)

    first = tasks.spawn(forever("first"), name="first")
    tasks.spawn(forever("second"))
    own = asyncio.create_task(forever("own"))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await tasks.cancel(own, None)
    assert sorted(cleaned) == ["first", "own", "second"]
    assert (first.cancelled(), own.cancelled()) == (True, True)
    assert first.get_name() == "first"
    assert len(tasks) == 0


async def test_wait_does_not_raise_a_tasks_error() -> None:
    tasks = TaskSet()

    async def fails() -> None:
        raise RuntimeError("boom")

    task = tasks.spawn(fails())
    async with asyncio.timeout(5):
        await tasks.wait()
    assert isinstance(task.exception(), RuntimeError)
