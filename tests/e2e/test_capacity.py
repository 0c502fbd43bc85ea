"""A full worker takes no more calls: load is active calls over WEBCALL_MAX_CALLS, and LiveKit waits for a slot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from livekit import api

from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, agent_identities, dispatch, room_name, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

WELCOME = json.dumps({"welcome": {"text": "One call at a time."}})


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def one_call_stack() -> AsyncIterator[Stack]:
    async with running_stack(WEBCALL_MAX_CALLS="1") as running:
        yield running


async def test_a_second_call_waits_until_the_first_ends(one_call_stack: Stack) -> None:
    stack = one_call_stack
    first, second = room_name("first"), room_name("second")
    for room in (first, second):
        await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller_one = await Caller.join(stack.server, room=first)
    caller_two = await Caller.join(stack.server, room=second)
    try:
        await dispatch(stack.lk, room=first, metadata=WELCOME)
        await until(lambda: caller_one.transcriptions, within_s=30, what="the first call's welcome")
        await asyncio.sleep(1.0)  # the worker reports its load every 0.5 s

        await dispatch(stack.lk, room=second, metadata=WELCOME)
        await asyncio.sleep(4.0)
        assert await agent_identities(stack.lk, second) == [], "a full worker took a second call"
        assert caller_two.transcriptions == []

        await caller_one.leave()
        await until(lambda: caller_two.transcriptions, within_s=30, what="the second call served once a slot freed")
    finally:
        await caller_one.leave()
        await caller_two.leave()
        for room in (first, second):
            await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
