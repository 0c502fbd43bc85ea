"""A rolling deploy over two workers through the sandbox: calls spread over both, the stopped worker's calls end
normally while new calls go to the other, and every call gets exactly one ``call.started`` and one ``call.ended``."""

from __future__ import annotations

import pytest
from livekit import api

from tests.e2e.stack import until
from tests.ops.pool import Pool, answered

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def test_a_rolling_deploy_over_two_workers_drops_no_call(pool: Pool) -> None:
    old = await pool.add_worker()
    calls = [await pool.start_call(prefix) for prefix in ("roll-a", "roll-b")]
    new = await pool.add_worker()
    try:
        calls.append(await pool.start_call("roll-c"))
        placed = [await pool.worker_of(room) for room, _ in calls]
        assert placed == [old.id, old.id, new.id], "the third call went to the less loaded worker"

        # The old pod is replaced: SIGTERM to its whole process group, its two calls still live.
        old.stop(whole_group=True)
        await old.process.wait_for_log("draining", within_s=10)
        calls.append(await pool.start_call("roll-d"))
        assert await pool.worker_of(calls[-1][0]) == new.id, "a new call went to the worker that is not draining"

        for _, caller in calls[:2]:
            await caller.type("Are you still there?")
        await until(
            lambda: all(answered(caller, "Are you still there?") for _, caller in calls[:2]),
            within_s=40,
            what="the draining worker's calls answered",
        )
        assert old.process.process.returncode is None
    finally:
        for _, caller in calls:
            await caller.leave()

    assert await old.exit_code() == 0
    rooms = [room for room, _ in calls]
    await until(lambda: all(pool.events(room, "call.ended") for room in rooms), within_s=30, what="every call.ended")
    for room in rooms:
        assert len(pool.events(room, "call.started")) == 1, room
        assert [e["end_reason"] for e in pool.events(room, "call.ended")] == ["caller_left"], room
    for room in rooms:
        await pool.lk.room.delete_room(api.DeleteRoomRequest(room=room))
