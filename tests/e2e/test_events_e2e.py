"""Call events end to end: the worker process posts ``call.started`` and ``call.ended`` to a real webhook receiver on
127.0.0.1 (signed, verified the way a platform verifies them) and spools them to ``WEBCALL_EVENTS_DIR``."""

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

SECRET = secret_for("e2e_events")
WELCOME = "Hi there, this is the support line. How can I help?"
CONVOI_CALL = {
    "type": "web",
    "agent_id": "agt_b88d642dd68747f28305c428b209xxxx",
    "agent_overrides": {"first_message": WELCOME},
    "metadata": {"source": "landing-page"},
}


@dataclass
class EventsStack:
    stack: Stack
    receiver: Receiver
    spool: Path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def events_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EventsStack]:
    spool = tmp_path_factory.mktemp("events")
    async with (
        running_receiver(SECRET) as receiver,
        running_stack(
            WEBCALL_EVENTS_URL=receiver.url, WEBCALL_EVENTS_SECRET=SECRET, WEBCALL_EVENTS_DIR=str(spool)
        ) as stack,
    ):
        yield EventsStack(stack=stack, receiver=receiver, spool=spool)


def events_of(receiver: Receiver, room: str) -> list[dict[str, object]]:
    return [body for body in receiver.delivered() if body.get("room") == room]


def spooled(directory: Path, job_id: str) -> list[dict[str, object]]:
    path = directory / f"{job_id}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def convoi_call(stack: Stack, *, prefix: str) -> tuple[str, Caller]:
    """A room with a caller in it, the Convoi call dispatched, its welcome heard."""
    room = room_name(prefix)
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room)
    try:
        await dispatch(stack.lk, room=room, metadata=json.dumps(CONVOI_CALL))
        await until(lambda: any("support line" in t for t in caller.transcriptions), within_s=40, what="welcome")
    except BaseException:
        await caller.leave()
        raise
    return room, caller


async def test_a_convoi_call_posts_started_and_ended_with_metadata_transcript_and_usage(
    events_stack: EventsStack,
) -> None:
    stack, receiver = events_stack.stack, events_stack.receiver
    room, caller = await convoi_call(stack, prefix="events")
    try:
        await until(lambda: events_of(receiver, room), within_s=20, what="call.started at the receiver")
        await caller.type("Do you ship to Oman?")
        await until(
            lambda: any("You said: Do you ship to Oman?" in t for t in caller.transcriptions),
            within_s=40,
            what="the typed message's answer",
        )
    finally:
        await caller.leave()
    await until(lambda: len(events_of(receiver, room)) == 3, within_s=40, what="call.ended at the receiver")
    await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))

    started, resolved, ended = events_of(receiver, room)
    assert [started["type"], resolved["type"], ended["type"]] == [
        "call.started",
        "call.config_resolved",
        "call.ended",
    ]
    for event in (started, resolved, ended):
        assert event["dialect"] == "convoi"
        assert event["agent_id"] == "agt_b88d642dd68747f28305c428b209xxxx"
        call = event["call"]
        assert isinstance(call, dict)
        assert call["metadata"] == {"source": "landing-page"}
    assert {r.headers["Idempotency-Key"] for r in receiver.requests if r.json.get("room") == room} == {
        f"{started['job_id']}:call.started",
        f"{started['job_id']}:call.config_resolved:0",
        f"{started['job_id']}:call.ended",
    }
    transcript = ended["transcript"]
    assert isinstance(transcript, list)
    assert [(i["channel"], i["role"], i["text"]) for i in transcript] == [
        ("voice", "assistant", WELCOME),
        ("chat", "user", "Do you ship to Oman?"),
        ("chat", "assistant", "You said: Do you ship to Oman?"),
    ]
    assert ended["end_reason"] == "caller_left"
    assert ended["incidents"] == [], "nothing was cut, throttled or dropped in the chat"
    usage = ended["usage"]
    assert isinstance(usage, dict)
    totals = usage["totals"]
    assert isinstance(totals, dict)
    assert totals["llm_input_tokens"] > 0
    assert totals["llm_output_tokens"] > 0
    # The welcome was synthesized before the session existed (prefetch); it is billed all the same.
    assert totals["tts_characters"] >= len(WELCOME)
    assert totals["tts_audio_s"] > 0
    cost = ended["cost"]
    assert isinstance(cost, dict)
    assert cost["estimate"] is True
    assert cost["total"] > 0
    assert spooled(events_stack.spool, str(started["job_id"])) == [started, resolved, ended]
    # the worker's logs never carry what was typed
    assert not any("Oman" in line for line in stack.worker.lines)


def of_type(events: list[dict[str, object]], event_type: str) -> list[dict[str, object]]:
    return [e for e in events if e["type"] == event_type]


def warning_pairs(event: dict[str, object]) -> set[tuple[object, object]]:
    warnings = event["warnings"]
    assert isinstance(warnings, list)
    return {(w["code"], w["field"]) for w in warnings}


async def test_a_caller_attribute_refused_mid_call_is_in_call_config_resolved_and_call_ended(
    events_stack: EventsStack,
) -> None:
    stack, receiver = events_stack.stack, events_stack.receiver
    room, caller = await convoi_call(stack, prefix="refused")
    refused = ("caller_not_allowed", "variables.discount")
    try:
        await until(
            lambda: of_type(events_of(receiver, room), "call.config_resolved"),
            within_s=20,
            what="call.config_resolved of the start",
        )
        # Variables are not caller-settable by default (WEBCALL_CALLER_ALLOWED_FIELDS = language,tts.speed).
        await caller.room.local_participant.set_attributes({"webcall.variables.discount": "100 percent"})
        await until(
            lambda: len(of_type(events_of(receiver, room), "call.config_resolved")) == 2,
            within_s=20,
            what="call.config_resolved of the attribute change",
        )
    finally:
        await caller.leave()
    await until(lambda: of_type(events_of(receiver, room), "call.ended"), within_s=40, what="call.ended")
    await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))

    events = events_of(receiver, room)
    at_start, changed = of_type(events, "call.config_resolved")
    (ended,) = of_type(events, "call.ended")
    assert [e["type"] for e in events] == ["call.started", "call.config_resolved", "call.config_resolved", "call.ended"]
    assert (at_start["trigger"], at_start["revision"]) == ("start", 0)
    assert (changed["trigger"], changed["revision"]) == ("caller", 1)
    assert refused not in warning_pairs(at_start)
    assert refused in warning_pairs(changed)
    assert refused in warning_pairs(ended), "call.ended carries the warnings of the mid-call change"
    assert "100 percent" not in json.dumps(events), "a refused caller value reaches no event"
