"""Canary: fails loudly, naming the step, when an SDK change needs more of the sandbox than it provides.

The sandbox server re-implements LiveKit's signaling, the agent protocol and Twirp for exactly the pinned SDKs. An
upgrade of any of them can need a message or behaviour the sandbox does not have; this test walks one call step by
step so the failure says which part of the protocol to look at, instead of a timeout somewhere in a scenario.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import version

import pytest
from livekit import api

from tests.e2e.conftest import Stack
from tests.e2e.stack import Caller, agent_identities, dispatch, room_name, until

pytestmark = [pytest.mark.e2e]

# The versions the sandbox was built and verified against (pyproject pins them).
VERIFIED = {
    "livekit": "1.1.21",
    "livekit-agents": "1.8.9",
    "livekit-api": "1.2.2",
    "livekit-protocol": "1.1.29",
    "aiortc": "1.16.0",
}


def test_the_sdks_are_the_versions_the_sandbox_was_verified_against() -> None:
    installed = {name: version(name) for name in VERIFIED}
    assert installed == VERIFIED, (
        "an SDK changed: re-run the e2e suite and read the sandbox README section; the sandbox may need more "
        "(signaling messages, agent protocol fields, Twirp methods) before this pin can move"
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_one_call_walks_every_protocol_step_the_worker_needs(stack: Stack) -> None:
    room = room_name("canary")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room, microphone=True)
    try:
        assert "registered worker" in stack.worker.messages(), "/agent register: the worker never registered"
        dispatched_at = time.monotonic()
        await dispatch(stack.lk, room=room, metadata=json.dumps({"welcome": {"text": "Canary call."}}))
        await until(
            lambda: any(r.get("message") == "received job request" for r in stack.worker.room_records(room)),
            within_s=15,
            what="/agent availability request reaching the worker (AgentDispatchService.CreateDispatch -> job)",
        )
        await until(
            lambda: any(r.get("message") == "call started" for r in stack.worker.room_records(room)),
            within_s=30,
            what="the job joining the room and starting the session (assignment token, /rtc join, participant state)",
        )
        assert await agent_identities(stack.lk, room), "RoomService.ListParticipants does not show the agent"
        await until(
            lambda: caller.heard,
            within_s=15,
            what="the agent's audio track at the caller (track publish, MediaSectionsRequirement, track_subscribed)",
        )
        await until(
            lambda: caller.first_loud_at(dispatched_at),
            within_s=15,
            what="non-silent agent audio (Opus forwarding, and track_subscribed sent to the publisher)",
        )
        await until(
            lambda: "Canary call." in caller.transcriptions,
            within_s=15,
            what="lk.transcription text stream from the agent (data packets, stream header/chunk/trailer)",
        )
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
