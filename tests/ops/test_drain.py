"""SIGTERM drains the worker through the sandbox: ``/ready`` fails at once, no new job is taken, live calls go on
until their callers leave, their ``call.ended`` reaches the webhook, and the worker exits 0. Past the drain timeout,
or at a second SIGTERM, each remaining call hears a goodbye and ends with reason ``shutdown``."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from livekit import api

from agent.call import SHUTDOWN_GOODBYE
from tests.e2e.stack import agent_identities, dispatch, room_name, until
from tests.ops.pool import Pool, answered
from tests.ops.scrape import get

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

WELCOME = json.dumps({"welcome": {"text": "Hello, you are through."}})


async def test_sigterm_to_the_process_group_drains_two_live_calls_and_exits_zero(pool: Pool) -> None:
    worker = await pool.add_worker()
    (first, caller_one), (second, caller_two) = [await pool.start_call(p) for p in ("drain-a", "drain-b")]
    try:
        assert len(await pool.jobs_of(worker)) == 2
        # What an init system does: every process of the group, the job processes of both calls included.
        worker.stop(whole_group=True)
        await worker.process.wait_for_log("draining", within_s=10)
        # Readiness fails as the drain starts, while both calls are still live (the pod leaves the Service at once).
        assert await get(worker.process.health_url("/ready")) == (503, "draining")

        late = room_name("drain-late")
        await pool.lk.room.create_room(api.CreateRoomRequest(name=late))
        late_dispatch = await dispatch(pool.lk, room=late, metadata=WELCOME)

        async def late_job_waits() -> bool:
            state = await pool.state()
            jobs = [j["id"] for d in state["dispatches"] if d["id"] == late_dispatch.id for j in d["jobs"]]
            return bool(jobs) and set(jobs) <= set(state["waiting_jobs"])

        async with asyncio.timeout(20):
            while not await late_job_waits():  # noqa: ASYNC110 - the sandbox's state is read over HTTP
                await asyncio.sleep(0.2)

        # Both calls are still served after the signal: a typed message gets its answer.
        for caller in (caller_one, caller_two):
            await caller.type("Still there?")
        await until(
            lambda: answered(caller_one, "Still there?") and answered(caller_two, "Still there?"),
            within_s=40,
            what="both calls answered during the drain",
        )
        assert worker.process.process.returncode is None, "the worker waits for its live calls"
        assert await agent_identities(pool.lk, late) == [], "a draining worker took a new call"
    finally:
        await caller_one.leave()
        await caller_two.leave()

    assert await worker.exit_code() == 0
    for room in (first, second):
        ended = pool.events(room, "call.ended")
        assert [e["end_reason"] for e in ended] == ["caller_left"], room
    assert "ending live calls" not in worker.process.messages(), "no call was cut short"
    await pool.lk.room.delete_room(api.DeleteRoomRequest(room=late))


async def test_past_the_drain_timeout_the_caller_hears_a_goodbye_and_the_call_ends_with_shutdown(pool: Pool) -> None:
    worker = await pool.add_worker(WEBCALL_DRAIN_TIMEOUT_S="3")
    room, caller = await pool.start_call("drain-timeout")
    try:
        await asyncio.sleep(1.0)  # the welcome's audio has played out
        signalled = time.monotonic()
        worker.stop()
        await until(lambda: pool.events(room, "call.ended"), within_s=60, what="call.ended after the drain timeout")
        assert SHUTDOWN_GOODBYE in caller.transcriptions
        goodbye_at = caller.first_loud_at(signalled + 3.0)
        assert goodbye_at is not None, "the goodbye was heard, after the drain timeout"
        assert caller.loud_since(signalled + 3.0) > 1.0
    finally:
        await caller.leave()
    assert [e["end_reason"] for e in pool.events(room, "call.ended")] == ["shutdown"]
    assert await worker.exit_code() == 0


async def test_a_second_sigterm_ends_the_calls_at_once_with_a_goodbye(pool: Pool) -> None:
    worker = await pool.add_worker()
    room, caller = await pool.start_call("drain-twice")
    try:
        worker.stop()
        await worker.process.wait_for_log("draining", within_s=10)
        await asyncio.sleep(1.0)
        assert pool.events(room, "call.ended") == [], "the drain waits for the call"
        worker.stop()
        await until(lambda: pool.events(room, "call.ended"), within_s=60, what="call.ended after the second signal")
        assert SHUTDOWN_GOODBYE in caller.transcriptions
    finally:
        await caller.leave()
    assert [e["end_reason"] for e in pool.events(room, "call.ended")] == ["shutdown"]
    assert await worker.exit_code() == 0
