"""A scribe's STT failing mid-call, through the sandbox: the transcription is restarted, recorded and hears again.

One worker with no STT fallback (``WEBCALL_PROVIDER_FALLBACK=false``: Deepgram alone, one reconnect in place). The
fake Deepgram cuts the scribe's live websocket for Ana's track after a few audio chunks and refuses the next three
connections with HTTP 500: the stream's own reconnect fails, the scribe restarts the transcription (twice, with a
growing delay), and what Ana says afterwards is transcribed and answered when it names the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from livekit import api
from prometheus_client.parser import text_string_to_metric_families

from agent.config.golden import read_case
from sandbox.providers import FaultSpec, speech
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import HEALTH_LISTENING, Caller, dispatch, room_name, spooled_event, until
from tests.ops.scrape import get, value

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
LISTEN = "/v1/listen"
RESTARTED = "scribe transcription failed, restarting"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(spool: Path) -> AsyncIterator[Stack]:
    settings = {
        "WEBCALL_PROVIDER_FALLBACK": "false",
        "WEBCALL_STT_RETRIES": "1",
        "WEBCALL_STT_TIMEOUT_S": "10",
        "WEBCALL_EVENTS_DIR": str(spool),
    }
    async with running_stack(**settings) as running:
        yield running


def ended(spool: Path, room: str) -> dict[str, Any] | None:
    return spooled_event(spool, room=room, kind="call.ended")


def stt_errors(scrape: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "webcall_provider_errors_total" and sample.labels.get("role") == "stt"
    )


async def test_a_scribe_whose_stt_fails_mid_call_restarts_it_records_it_and_transcribes_what_follows(
    stack: Stack, spool: Path
) -> None:
    case = read_case(EXAMPLES / "scaiwave" / "scribe_recording.json")
    room = f"scaiwave-{room_name('sttfault')}"
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    ana = await Caller.join(stack.server, room=room, identity="ana", name="Ana")
    try:
        first_chat = len(stack.openai.requests_to("/v1/chat/completions"))
        await dispatch(stack.lk, room=room, metadata=case.wire("job_metadata"))
        await stack.worker.wait_for_log("call started", within_s=60)
        # The session's own (idle) STT stream is connected first; every connection after it is the scribe's.
        await until(lambda: stack.deepgram.requests_to(LISTEN), within_s=30, what="the session's STT stream")
        connected = len(stack.deepgram.requests_to(LISTEN))
        stack.deepgram.inject(FaultSpec(service="stt", kind="cut", after_chunks=5))
        stack.deepgram.inject(FaultSpec(service="stt", kind="http_500", count=3))
        await ana.publish_microphone()
        await until(
            lambda: sum(RESTARTED in m for m in stack.worker.messages()) >= 2,
            within_s=60,
            what="the scribe restarting Ana's transcription twice",
        )
        # the fifth connection after the cut is not faulted: the scribe listens again
        await until(
            lambda: len(stack.deepgram.requests_to(LISTEN)) >= connected + 5,
            within_s=30,
            what="the restarted transcription connected",
        )
        await ana.speak(speech.espeak_utterance("Hey assistant, what did we decide?"))
        try:
            await until(
                lambda: len(stack.openai.requests_to("/v1/chat/completions")) > first_chat,
                within_s=60,
                what="the scribe answering what was said after the restarts",
            )
        except AssertionError:
            heard = [(r.status, r.fault, len(r.audio), r.text) for r in stack.deepgram.requests_to(LISTEN)]
            raise AssertionError(f"no answer; the STT connections heard {heard}") from None
        asked = stack.openai.requests_to("/v1/chat/completions")[first_chat].json
        assert isinstance(asked, dict)
        users = [m["content"] for m in asked["messages"] if m["role"] == "user"]
        assert users, "the addressed line reached the LLM as a user turn"
        assert users[0].startswith("Ana: ")
        assert "decide" in users[0].lower()
        await stack.worker.wait_for_log(HEALTH_LISTENING, within_s=10)
        status, scrape = await get(stack.worker.health_url("/metrics"))
    finally:
        await ana.leave()
    await until(lambda: ended(spool, room), within_s=60, what="call.ended once the last participant left")
    event = ended(spool, room)
    assert event is not None
    restarts = [i for i in event["incidents"] if i["code"] == "stt_restarted"]
    assert [(i["role"], i["attempt"]) for i in restarts] == [("stt", 1), ("stt", 2)]
    assert restarts[0]["delay_s"] < restarts[1]["delay_s"], "each restart in a row waits longer"
    assert event["incident_counts"]["stt_restarted"] == 2
    assert "stt_stopped" not in event["incident_counts"]
    assert any(i["code"] == "provider_failed" and i["role"] == "stt" for i in event["incidents"])
    assert status == 200
    assert value(scrape, "webcall_scribe_stt_failures_total", outcome="restarted") == 2
    assert stt_errors(scrape) >= 4, "the cut and each refused connection are counted as STT errors"
    assert stack.worker.process.returncode is None
    await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
