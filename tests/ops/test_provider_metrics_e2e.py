"""Provider errors and fallbacks on ``/metrics``: the fake OpenAI TTS fails during a live call, the chain falls back
to Deepgram, and the job process's counts show on the main process's scrape while the call goes on."""

from __future__ import annotations

import json

import pytest
from livekit import api

from sandbox.providers import speech
from tests.e2e.conftest import running_stack
from tests.e2e.stack import HEALTH_LISTENING, Caller, dispatch, room_name, until
from tests.ops.scrape import get, value

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

WELCOME = json.dumps({"welcome": {"text": "Hello, how can I help?", "interruptible": True}})


async def test_a_failing_tts_is_counted_as_errors_and_a_fallback_by_provider_and_kind() -> None:
    async with running_stack() as stack:
        await stack.worker.wait_for_log(HEALTH_LISTENING, within_s=10)
        room = room_name("faults")
        await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
        caller = await Caller.join(stack.server, room=room)
        try:
            await dispatch(stack.lk, room=room, metadata=WELCOME)
            await until(lambda: caller.transcriptions, within_s=30, what="the welcome")
            stack.openai.fail_next(500, times=5, path="/v1/audio/speech")
            # Spoken: a typed message is answered in text.
            await caller.speak(speech.espeak_utterance("Are you open on Saturdays?"))
            await until(
                lambda: any(r.path == "/v1/speak" for r in stack.deepgram.requests),
                within_s=40,
                what="the reply synthesized by the fallback TTS",
            )
            status, scrape = await get(stack.worker.health_url("/metrics"))
        finally:
            await caller.leave()
            await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
    assert status == 200
    assert value(scrape, "webcall_provider_errors_total", role="tts", provider="openai", kind="http_5xx") >= 1
    assert value(scrape, "webcall_provider_fallbacks_total", role="tts", provider="openai", kind="unavailable") == 1
    assert value(scrape, "webcall_provider_errors_total", role="tts", provider="deepgram", kind="http_5xx") == 0
