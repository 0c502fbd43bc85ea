"""Limits a pool relies on, through the sandbox: a burst never takes a worker past ``WEBCALL_MAX_CALLS`` (a slot is
reserved at accept), the rest wait or go to another worker; a job whose caller never joins ends with ``no_caller``."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from livekit import api

from tests.e2e.stack import Caller, agent_identities, dispatch, room_name, until
from tests.ops.pool import Pool

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# Three warm processes for a limit of two: the framework's own estimate of a pending request's load
# (threshold / warm processes) then lets a third request through, so only the worker's reservation holds the limit.
LIMITS = {"WEBCALL_MAX_CALLS": "2", "WEBCALL_IDLE_PROCESSES": "3", "WEBCALL_JOIN_TIMEOUT_S": "3"}
WELCOME = json.dumps({"welcome": {"text": "Hello from the pool."}})


async def test_five_dispatches_at_once_take_exactly_two_slots_and_the_rest_wait_for_another_worker(
    pool: Pool,
) -> None:
    first = await pool.add_worker(**LIMITS)
    rooms = [room_name("burst") for _ in range(5)]
    callers: list[Caller] = []
    try:
        for room in rooms:
            await pool.lk.room.create_room(api.CreateRoomRequest(name=room))
            callers.append(await Caller.join(pool.server, room=room))
        await asyncio.gather(*(dispatch(pool.lk, room=room, metadata=WELCOME) for room in rooms))

        async def answered_all() -> bool:
            state = await pool.state()
            return len(await pool.jobs_of(first)) + len(state["waiting_jobs"]) == 5

        async with asyncio.timeout(30):
            while not await answered_all():  # noqa: ASYNC110 - the sandbox's state is read over HTTP
                await asyncio.sleep(0.2)
        await until(
            lambda: sum("Hello from the pool." in c.transcriptions for c in callers) == 2,
            within_s=60,
            what="two calls served",
        )
        assert len(await pool.jobs_of(first)) == 2
        assert len((await pool.state())["waiting_jobs"]) == 3

        second = await pool.add_worker(**LIMITS)
        await until(
            lambda: sum("Hello from the pool." in c.transcriptions for c in callers) == 4,
            within_s=60,
            what="two more calls served by the second worker",
        )
        assert len(await pool.jobs_of(first)) == 2
        assert len(await pool.jobs_of(second)) == 2
        assert len((await pool.state())["waiting_jobs"]) == 1
    finally:
        for caller in callers:
            await caller.leave()
        for room in rooms:
            await pool.lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_job_whose_caller_never_joins_ends_with_no_caller_and_both_events(pool: Pool) -> None:
    if not pool.workers:
        await pool.add_worker(**LIMITS)
    room = room_name("nobody")
    await pool.lk.room.create_room(api.CreateRoomRequest(name=room))
    dispatched = time.monotonic()
    await dispatch(pool.lk, room=room, metadata=WELCOME)
    await until(lambda: pool.events(room, "call.ended"), within_s=30, what="call.ended of a call nobody joined")
    assert time.monotonic() - dispatched >= 3.0, "the job waited the join timeout"
    assert len(pool.events(room, "call.started")) == 1
    ended = pool.events(room, "call.ended")
    assert [e["end_reason"] for e in ended] == ["no_caller"]
    assert ended[0]["transcript"] == []
    async with asyncio.timeout(20):
        while await agent_identities(pool.lk, room):  # noqa: ASYNC110 - the room is listed over HTTP
            await asyncio.sleep(0.2)
    await pool.lk.room.delete_room(api.DeleteRoomRequest(room=room))
