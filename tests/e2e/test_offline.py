"""The offline extra end to end: whisper STT and piper TTS in the worker, only the LLM is a (fake) server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from livekit import api

from sandbox.providers import speech
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, dispatch, room_name, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def offline_stack() -> AsyncIterator[Stack]:
    async with running_stack(WEBCALL_STT_PROVIDER="whisper", WEBCALL_TTS_PROVIDER="piper") as running:
        yield running


async def test_a_call_with_offline_speech_hears_and_answers_in_voice(offline_stack: Stack) -> None:
    stack = offline_stack
    room = room_name("offline")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room, microphone=True)
    try:
        first_request = len(stack.openai.requests)
        await dispatch(stack.lk, room=room, metadata=json.dumps({"welcome": {"text": "Offline hello."}}))
        try:
            await until(lambda: caller.transcriptions, within_s=60, what="the welcome (piper, first use)")
        except AssertionError:
            raise AssertionError(
                str([(r.get("level"), r.get("message"), r.get("room")) for r in stack.worker.records()][-25:])
            ) from None
        assert caller.loud_since(0.0) > 0.3, "piper's welcome was heard"
        await caller.speak(speech.espeak_utterance("Do you have parking for guests?"))

        def chats() -> list[object]:
            return [r.json for r in stack.openai.requests[first_request:] if r.path == "/v1/chat/completions"]

        await until(chats, within_s=40, what="the spoken turn transcribed by whisper reaching the LLM")
        body = chats()[-1]
        assert isinstance(body, dict)
        # tiny.en on a busy box may hear "part king": the word is there, its spacing is whisper's
        assert "parking" in str(body["messages"][-1]["content"]).lower().replace(" ", "")
        await until(lambda: any(t.startswith("You said") for t in caller.transcriptions), within_s=30, what="the reply")
        speech_requests = [r for r in stack.openai.requests[first_request:] if r.path == "/v1/audio/speech"]
        assert speech_requests == [], "no cloud TTS was used"
        assert [r for r in stack.deepgram.requests if r.path.startswith("/v1/listen")] == [], "no cloud STT"
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
