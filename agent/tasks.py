"""Background tasks an object starts and must not lose: one `TaskSet` per owner.

asyncio keeps only a weak reference to a running task, so a task nobody holds can be collected before it ends. A
`TaskSet` holds each of its tasks until it is done; `cancel` (at the owner's close) cancels those left and waits for
them. The framework's ``livekit.agents.utils.aio.TaskSet`` binds an event loop when it is made (some owners are made
before their loop runs, in tests) and cannot cancel its tasks, hence this small one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class TaskSet:
    """The running background tasks of one owner."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str | None = None) -> asyncio.Task[None]:
        """Run `coro` as a task of this set, held until it is done."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self) -> None:
        """Until every task running now has ended (their errors are not raised)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self, *others: asyncio.Task[None] | None) -> None:
        """Cancel every task of the set (and `others`, tasks the owner holds itself) and wait until they ended."""
        tasks = [*self._tasks, *(task for task in others if task is not None)]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
