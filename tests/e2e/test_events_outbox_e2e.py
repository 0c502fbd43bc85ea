"""The webhook is down during a call: the running worker keeps the call's events and delivers them, in order and
signed, once the receiver is back (the worker's main process redelivers from the outbox)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from livekit import api

from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, dispatch, room_name, until
from tests.events.receiver import Receiver, running_receiver, secret_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SECRET = secret_for("e2e_outbox")
LIVE_TRIES = 3  # the live policy's attempts per event
EVENT_TYPES = ["call.started", "call.config_resolved", "call.ended"]


@dataclass
class OutboxStack:
    stack: Stack
    receiver: Receiver
    outbox: Path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def outbox_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OutboxStack]:
    outbox = tmp_path_factory.mktemp("outbox")
    async with (
        running_receiver(SECRET) as receiver,
        running_stack(
            WEBCALL_EVENTS_URL=receiver.url,
            WEBCALL_EVENTS_SECRET=SECRET,
            WEBCALL_EVENTS_OUTBOX_DIR=str(outbox),
            WEBCALL_EVENTS_REDELIVER_INTERVAL_S="0.5",
        ) as stack,
    ):
        yield OutboxStack(stack=stack, receiver=receiver, outbox=outbox)


def pending(outbox: Path) -> list[Path]:
    return sorted(path for path in outbox.glob("*.json") if path.is_file())


async def test_events_of_a_call_made_while_the_webhook_was_down_are_delivered_later_in_order(
    outbox_stack: OutboxStack,
) -> None:
    stack, receiver, outbox = outbox_stack.stack, outbox_stack.receiver, outbox_stack.outbox
    room = room_name("outbox")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    receiver.statuses.extend([503] * LIVE_TRIES)  # call.started's live tries all fail
    caller = await Caller.join(stack.server, room=room)
    try:
        await dispatch(stack.lk, room=room, metadata=json.dumps({"welcome": {"text": "Hello, outbox."}}))
        await until(lambda: caller.transcriptions, within_s=30, what="the welcome")
        await until(
            lambda: sum(1 for r in receiver.requests if r.status == 503) == LIVE_TRIES,
            within_s=20,
            what="call.started refused by the receiver",
        )
    finally:
        await caller.leave()
    # The receiver answers 200 from now on; the worker's redeliverer sends what the call left in the outbox.
    await until(
        lambda: [e["type"] for e in receiver.delivered() if e.get("room") == room] == EVENT_TYPES,
        within_s=40,
        what="both events delivered after the outage",
    )
    await until(lambda: not pending(outbox), within_s=10, what="the outbox emptied")
    started, _, ended = [e for e in receiver.delivered() if e.get("room") == room]
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests if r.json.get("room") == room]
    assert keys[:LIVE_TRIES] == [f"{started['job_id']}:call.started"] * LIVE_TRIES
    job = started["job_id"]
    assert set(keys) == {f"{job}:call.started", f"{job}:call.config_resolved:0", f"{job}:call.ended"}
    assert ended["end_reason"] == "caller_left"
    dead = outbox / "dead"
    assert not dead.exists() or not any(dead.iterdir()), "nothing was given up on"
    await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
