"""A call that cannot be served still ends politely: a worker with no LLM at all, and a provider swapped for one
the deployment has."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from livekit import api, rtc

from agent.unavailable import NOTICE
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, dispatch, room_name, spool_events, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(spool: Path) -> AsyncIterator[Stack]:
    # No OpenAI key and no OpenAI base URL: no LLM can be built. Deepgram (the fake) is there for speech.
    async with running_stack(OPENAI_API_KEY="", OPENAI_BASE_URL="", WEBCALL_EVENTS_DIR=str(spool)) as running:
        yield running


def spooled(spool: Path, room: str) -> list[dict[str, Any]]:
    return [event for event in spool_events(spool) if event.get("room") == room]


async def test_a_call_without_any_llm_tells_the_caller_in_text_and_voice_then_ends(stack: Stack, spool: Path) -> None:
    room = room_name("unavailable")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room)
    chat: list[str] = []

    def on_chat(reader: rtc.TextStreamReader, _identity: str) -> None:
        async def read() -> None:
            chat.append(await reader.read_all())

        caller._tasks.spawn(read())

    caller.room.register_text_stream_handler("lk.chat", on_chat)
    try:
        since = time.monotonic()
        await dispatch(stack.lk, room=room, metadata=json.dumps({"welcome": {"text": "Hello there."}}))
        await until(lambda: NOTICE in chat, within_s=30, what="the notice on lk.chat")
        await until(lambda: NOTICE in caller.transcriptions, within_s=10, what="the notice as a transcription")
        await until(lambda: caller.loud_since(since) > 1.0, within_s=20, what="the notice spoken")
        spoken = [r.text for r in stack.deepgram.requests if r.path == "/v1/speak"]
        assert NOTICE in spoken, "the OpenAI TTS the config named was swapped for the Deepgram one the worker has"
        assert not stack.openai.requests, "nothing was sent to an OpenAI endpoint"
        assert "Hello there." not in caller.transcriptions, "no welcome from a call that cannot go on"

        def exiting() -> list[dict[str, object]]:
            return [r for r in stack.worker.room_records(room) if r.get("message") == "process exiting"]

        await until(exiting, within_s=15, what="the job ending")
        assert exiting()[0].get("reason") == "pipeline_error"
        records = stack.worker.room_records(room)
        errors = [r for r in records if r.get("message") == "pipeline not built"]
        assert errors
        assert (errors[0]["code"], errors[0]["role"]) == ("missing_key", "llm")
        swapped = {(r.get("code"), r.get("field")) for r in records if r.get("message") == "call config warning"}
        assert ("provider_unavailable", "tts.provider") in swapped
        assert ("provider_unavailable", "stt.provider") not in swapped, "Deepgram STT is the default and is there"
        mine = spooled(spool, room)
        assert [e["type"] for e in mine] == ["call.started", "call.config_resolved", "call.ended"], (
            "an unserved call is still accounted for"
        )
        ended = mine[2]
        assert ended["end_reason"] == "unavailable"
        assert [(i["role"], i["text"]) for i in ended["transcript"]] == [("assistant", NOTICE)]
        assert ("provider_unavailable", "tts.provider") in {(w["code"], w["field"]) for w in ended["warnings"]}
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
