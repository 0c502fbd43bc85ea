"""What `python -m agent resolve` prints is what a real worker runs: same swaps, same warnings, same voice.

A worker on a deployment without Deepgram takes a call that asks for Deepgram on both sides; the command, given the
same environment and inputs, shows the provider the worker swapped in, and the warnings the worker logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from livekit import api

from tests.cli.commands import resolved
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, dispatch, room_name, until, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

NO_DEEPGRAM = {"DEEPGRAM_API_KEY": "", "DEEPGRAM_BASE_URL": ""}
WELCOME = "Hola, bienvenido."
ASKS_DEEPGRAM = json.dumps(
    {
        "language": "es",
        "welcome": {"text": WELCOME},
        "stt": {"provider": "deepgram"},
        "tts": {"provider": "deepgram", "voice": "aura-2-nestor-es"},
    }
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(**NO_DEEPGRAM) as running:
        yield running


async def test_the_command_shows_the_swap_and_the_warnings_the_worker_logged(stack: Stack, tmp_path: Path) -> None:
    room = room_name("resolve")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room)
    try:
        await dispatch(stack.lk, room=room, metadata=ASKS_DEEPGRAM)
        await until(lambda: WELCOME in caller.transcriptions, within_s=40, what="the welcome")
        await stack.worker.wait_for_log("call started", within_s=10)
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))

    job = tmp_path / "job.json"
    job.write_text(ASKS_DEEPGRAM, encoding="utf-8")
    # The command, run with the worker's own environment.
    env = worker_env(stack.server, stack.openai, stack.deepgram, **NO_DEEPGRAM)
    printed = await asyncio.to_thread(resolved, "--job-metadata", str(job), "--room-name", room, env=env)

    logged = [
        (record.get("code"), record.get("field"))
        for record in stack.worker.room_records(room)
        if record.get("message") == "call config warning"
    ]
    shown = [(w["code"], w["field"]) for w in printed["warnings"]]  # type: ignore[attr-defined]
    assert shown == logged
    assert ("provider_unavailable", "stt.provider") in shown
    assert ("provider_unavailable", "tts.provider") in shown
    tts = printed["tts"]
    assert isinstance(tts, dict)
    assert (printed["stt"]["provider"], tts["provider"]) == ("openai", "openai")  # type: ignore[index]
    spoken = [r for r in stack.openai.requests_to("/v1/audio/speech") if r.text == WELCOME]
    assert spoken, "the worker spoke the welcome with the OpenAI TTS it swapped in"
    assert (spoken[0].voice, spoken[0].json["model"]) == (tts["voice"], tts["model"])  # type: ignore[index]
    assert not stack.deepgram.requests, "nothing reached Deepgram, which this deployment lacks"
