"""ScaiWave scribe calls with several people, and configuration changed mid-call through room metadata."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from livekit import api, rtc

from agent.config.golden import read_case
from sandbox.providers import speech
from tests.e2e.conftest import Stack
from tests.e2e.stack import Caller, dispatch, room_name, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


async def test_a_scribe_transcribes_everyone_answers_when_named_and_posts_the_transcript(stack: Stack) -> None:
    case = read_case(EXAMPLES / "scaiwave" / "scribe_recording.json")
    assert case.room_name is not None
    room = case.room_name
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    ana = await Caller.join(stack.server, room=room, identity="ana", name="Ana", microphone=True)
    ben = await Caller.join(stack.server, room=room, identity="ben", name="Ben", microphone=True)
    posted: list[str] = []

    def on_transcript(reader: rtc.TextStreamReader, participant_identity: str) -> None:
        async def read() -> None:
            posted.append(await reader.read_all())

        asyncio.get_running_loop().create_task(read())

    ana.room.register_text_stream_handler("webcall.transcript", on_transcript)
    try:
        first_request = len(stack.openai.requests)
        listened_before = len(stack.deepgram.requests_to("/v1/listen"))
        await dispatch(stack.lk, room=room, metadata=case.wire("job_metadata"))
        await until(lambda: len(ana.room.remote_participants) == 2, within_s=30, what="the scribe joining")

        def listening() -> int:
            """The scribe's STT streams that receive audio: one per participant once it hears them."""
            return sum(1 for r in stack.deepgram.requests_to("/v1/listen")[listened_before:] if r.audio)

        # A scribe hears each participant from when it has subscribed to them (seconds after joining when the
        # machine is busy); speech before that is not in the room for it.
        await until(lambda: listening() >= 2, within_s=30, what="the scribe listening to Ana and Ben")
        scribe_streams = [r for r in stack.deepgram.requests_to("/v1/listen")[listened_before:] if r.audio]
        assert all(r.query.get("keyterm") == "scribe" for r in scribe_streams), "biased towards its names"
        await ana.speak(speech.espeak_utterance("We will ship the release on Friday."))
        await ben.speak(speech.espeak_utterance("Hey assistant, what did we decide?"))

        def chats() -> list[object]:
            return [r.json for r in stack.openai.requests[first_request:] if r.path == "/v1/chat/completions"]

        try:
            await until(chats, within_s=40, what="the scribe answering when named")
        except AssertionError:
            listened = [(r.path, len(r.audio), r.text) for r in stack.deepgram.requests]
            logs = [r.get("message") for r in stack.worker.room_records(room)]
            raise AssertionError(f"no LLM request; STT requests {listened}; worker log {logs}") from None
        body = chats()[0]
        assert isinstance(body, dict)
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        assert len(users) == 1, json.dumps(chats(), indent=1)[:3000]
        assert users[0].startswith("Ben: ")
        assert "decide" in users[0].lower()
        assert body["messages"][0]["content"] == case.expected["instructions"]

        await ben.leave()
        await until(lambda: posted, within_s=20, what="the transcript posted to those who remain")
        lines = posted[-1].splitlines()
        assert any("] Ana: " in line and "friday" in line.lower() for line in lines)
        assert any("] Ben: " in line and "decide" in line.lower() for line in lines)
    finally:
        await ana.leave()
        await ben.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_scribe_answers_only_the_typed_messages_that_name_it(stack: Stack) -> None:
    case = read_case(EXAMPLES / "scaiwave" / "scribe_recording.json")
    room = f"scaiwave-{room_name('typed')}"
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    ana = await Caller.join(stack.server, room=room, identity="ana", name="Ana")
    ben = await Caller.join(stack.server, room=room, identity="ben", name="Ben")
    try:
        first_request = len(stack.openai.requests)
        await dispatch(stack.lk, room=room, metadata=case.wire("job_metadata"))
        await until(lambda: len(ana.room.remote_participants) == 2, within_s=30, what="the scribe joining")
        await asyncio.sleep(1.0)  # the scribe's chat handler is registered once its session runs
        await ana.type("We will ship the release on Friday.")
        await ben.type("Scribe, what did we decide?")

        def chats() -> list[object]:
            return [r.json for r in stack.openai.requests[first_request:] if r.path == "/v1/chat/completions"]

        await until(lambda: any("what did we decide" in t for t in ana.transcriptions), within_s=40, what="an answer")
        assert len(chats()) == 1, json.dumps(chats(), indent=1)[:3000]
        body = chats()[0]
        assert isinstance(body, dict)
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        assert users == ["ben: Scribe, what did we decide?"]
        assert not any("Friday" in t for t in ana.transcriptions), "the message not addressed to it got no answer"
    finally:
        await ana.leave()
        await ben.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_room_metadata_update_changes_instructions_and_voice_at_the_next_turn(stack: Stack) -> None:
    room = room_name("change")
    await stack.lk.room.create_room(
        api.CreateRoomRequest(name=room, metadata=json.dumps({"instructions": "You are the front desk."}))
    )
    caller = await Caller.join(stack.server, room=room, microphone=True)
    try:
        first_request = len(stack.openai.requests)
        await dispatch(stack.lk, room=room, metadata=json.dumps({"welcome": {"text": "Front desk, hello."}}))
        await until(lambda: caller.transcriptions, within_s=30, what="the welcome")
        await stack.lk.room.update_room_metadata(
            api.UpdateRoomMetadataRequest(
                room=room,
                metadata=json.dumps(
                    {"instructions": "You are the night concierge.", "tts": {"voice": "nova", "speed": 1.2}}
                ),
            )
        )
        await asyncio.sleep(1.0)
        await caller.speak(speech.espeak_utterance("Is the bar still open?"))

        def replies() -> list[tuple[str | None, float | None]]:
            return [
                (r.voice, r.speed)
                for r in stack.openai.requests[first_request:]
                if r.path == "/v1/audio/speech" and r.text.startswith("You said")
            ]

        await until(replies, within_s=40, what="a spoken reply after the change")
        assert replies()[0] == ("nova", 1.2)
        chats = [r.json for r in stack.openai.requests[first_request:] if r.path == "/v1/chat/completions"]
        assert isinstance(chats[-1], dict)
        assert chats[-1]["messages"][0]["content"] == "You are the night concierge."
        changed = [r for r in stack.worker.room_records(room) if r.get("message") == "call config changed"]
        assert changed, "the change was logged as an event"
        assert {"instructions", "tts.voice", "tts.speed"} <= set(changed[0]["changed"])
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_caller_attribute_change_applies_only_what_callers_may_set(stack: Stack) -> None:
    room = room_name("attrs")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room)
    try:
        first_request = len(stack.openai.requests)
        await dispatch(stack.lk, room=room, metadata=json.dumps({"welcome": {"text": "Hello there."}}))
        await until(lambda: caller.transcriptions, within_s=30, what="the welcome")
        # Speed is caller-settable by default; the LLM model is not (WEBCALL_CALLER_ALLOWED_FIELDS).
        await caller.room.local_participant.set_attributes({"webcall.tts.speed": "1.25", "webcall.llm.model": "gpt-4o"})
        await asyncio.sleep(1.0)
        await caller.speak(speech.espeak_utterance("Can I change my booking?"))

        def replies() -> list[float | None]:
            return [
                r.speed
                for r in stack.openai.requests[first_request:]
                if r.path == "/v1/audio/speech" and r.text.startswith("You said")
            ]

        await until(replies, within_s=40, what="a spoken reply after the attribute change")
        assert replies()[0] == 1.25, [
            (r.get("message"), r.get("changed"), r.get("source")) for r in stack.worker.room_records(room)
        ]
        chats = [r.json for r in stack.openai.requests[first_request:] if r.path == "/v1/chat/completions"]
        assert isinstance(chats[-1], dict)
        assert chats[-1]["model"] == "gpt-4o-mini"
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
