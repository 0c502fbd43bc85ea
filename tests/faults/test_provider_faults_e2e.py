"""Provider faults through real calls: sandbox server, fake providers, two worker processes, a caller `rtc.Room`.

Every fault kind (HTTP 500, 429 with Retry-After, connection refused, time-out, stream cut mid-reply, 5 s to first
byte) hits the LLM, the TTS and the STT at least once, with a fallback configured (the call switches and goes on:
the caller reads and hears the answer) and without one (the caller reads and hears an apology, then the call goes
on, or ends politely with ``call.ended`` saying why). Neither worker process dies. Cases run one after another:
faults are queued on the shared fakes' endpoints.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio

from agent.chat import DEGRADED_NOTICE
from agent.provider_faults import APOLOGY, END_REASON, GOODBYE
from sandbox.providers import FaultSpec
from sandbox.providers.controls import FaultName, RecordedRequest
from tests.e2e.stack import until
from tests.faults.stacks import APOLOGY_WITHIN_S, FaultCall, FaultStacks, fault_stacks

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KINDS: tuple[FaultName, ...] = ("http_500", "http_429", "refuse", "timeout", "cut", "slow")
# Typed turns answered in voice: each answer is synthesized and heard, and its text read on lk.transcription.
VOICE_CALL: dict[str, object] = {"welcome": {"text": "Hello."}, "chat": {"reply_mode": "voice"}}
ANSWER_WITHIN_S = 30.0
# TTS faults the fallback TTS takes over from before any audio (a cut and a reset: the test after it).
TTS_SWITCHED: tuple[FaultName, ...] = ("http_500", "http_429", "timeout", "slow")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stacks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FaultStacks]:
    async with fault_stacks(tmp_path_factory.mktemp("events")) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_fakes(stacks: FaultStacks) -> None:
    for fake in stacks.fakes():
        fake.controls.faults.clear()


def spec(service: str, kind: FaultName, *, count: int = 1) -> FaultSpec:
    # a cut after two SSE events / audio chunks / websocket frames: mid-reply, after the answer has started
    return FaultSpec.model_validate({"service": service, "kind": kind, "count": count, "after_chunks": 2, "delay": 5})


def faulted(requests: Sequence[RecordedRequest]) -> int:
    return sum(1 for r in requests if r.fault is not None)


def failures(ended: dict[str, Any], *, role: str, position: int) -> list[dict[str, Any]]:
    return [
        i
        for i in ended["incidents"]
        if i["code"] == "provider_failed" and (i["role"], i["position"]) == (role, position)
    ]


# How each fault reads in an incident: the status, a time-out, or a refused / reset / cut connection.
INCIDENT_KINDS = {("status", 500), ("status", 429), ("timeout", None), ("connection", None)}


async def test_with_an_llm_fallback_each_llm_fault_switches_to_it_and_the_caller_hears_and_reads_the_answer(
    stacks: FaultStacks,
) -> None:
    async with FaultCall.open(stacks, metadata=VOICE_CALL) as call:
        await call.until_read("Hello.", within_s=ANSWER_WITHIN_S, what="the welcome")
        for index, kind in enumerate(KINDS):
            stacks.openai.inject(spec("llm", kind))
            before = len(stacks.openai_fallback.requests_to("/v1/chat/completions"))
            since = time.monotonic()
            await call.caller.type(f"question {index} about {kind}")
            await call.until_read(
                f"You said: question {index} about {kind}", within_s=ANSWER_WITHIN_S, what=f"the answer after {kind}"
            )
            await call.until_heard(since, within_s=ANSWER_WITHIN_S, what=f"the answer spoken after {kind}")
            assert len(stacks.openai_fallback.requests_to("/v1/chat/completions")) > before, "the fallback answered"
        assert APOLOGY not in call.chat, "nothing to apologize for"
        assert faulted(stacks.openai.requests_to("/v1/chat/completions")) == len(KINDS)
    ended = await _ended(stacks, call.room)
    primary = failures(ended, role="llm", position=0)
    assert {(i["kind"], i.get("status")) for i in primary} == INCIDENT_KINDS
    assert len(primary) == len(KINDS)
    assert not failures(ended, role="llm", position=1)
    assert "llm_turn_failed" not in {i["code"] for i in ended["incidents"]}
    assert any(i["code"] == "provider_switched" and i["role"] == "llm" for i in ended["incidents"])


async def test_when_every_llm_fails_each_fault_gets_an_apology_heard_and_read_and_the_call_goes_on(
    stacks: FaultStacks,
) -> None:
    async with FaultCall.open(stacks, metadata=VOICE_CALL) as call:
        await call.until_read("Hello.", within_s=ANSWER_WITHIN_S, what="the welcome")
        for index, kind in enumerate(KINDS):
            # the primary's recovery probe (sent by the fallback adapter after its failure) is answered
            stacks.openai.inject(spec("llm", kind))
            stacks.openai_fallback.inject(spec("llm", kind))
            since = time.monotonic()
            await call.caller.type(f"failing question {index}")
            await call.until_read(APOLOGY, times=index + 1, within_s=APOLOGY_WITHIN_S, what=f"the apology after {kind}")
            assert call.chat.count(APOLOGY) == index + 1, "the apology is on lk.chat too"
            await call.until_heard(since, within_s=APOLOGY_WITHIN_S, what=f"the apology spoken after {kind}")
            # the call goes on: the next turn is answered
            await call.caller.type(f"next question {index}")
            await call.until_read(f"You said: next question {index}", within_s=ANSWER_WITHIN_S, what="the next answer")
    ended = await _ended(stacks, call.room)
    turns = [i for i in ended["incidents"] if i["code"] == "llm_turn_failed"]
    assert len(turns) == len(KINDS), "every failed turn is an incident"
    for position in (0, 1):
        assert {(i["kind"], i.get("status")) for i in failures(ended, role="llm", position=position)} == INCIDENT_KINDS
    assert ended["end_reason"] == "caller_left"


async def test_three_failed_llm_turns_in_a_row_end_the_call_politely_with_the_reason_in_call_ended(
    stacks: FaultStacks,
) -> None:
    async with FaultCall.open(stacks, metadata=VOICE_CALL) as call:
        await call.until_read("Hello.", within_s=ANSWER_WITHIN_S, what="the welcome")
        for fake in (stacks.openai, stacks.openai_fallback):
            fake.inject(spec("llm", "http_500", count=10))
        for index in range(2):
            await call.caller.type(f"doomed question {index}")
            await call.until_read(APOLOGY, times=index + 1, within_s=APOLOGY_WITHIN_S, what="an apology")
        await call.caller.type("doomed question 2")
        await call.until_read(GOODBYE, within_s=APOLOGY_WITHIN_S, what="the goodbye")
        assert GOODBYE in call.chat
        ended = await _ended(stacks, call.room)
    assert ended["end_reason"] == END_REASON
    assert len([i for i in ended["incidents"] if i["code"] == "llm_turn_failed"]) == 3


async def _ended(stacks: FaultStacks, room: str) -> dict[str, Any]:
    await until(lambda: stacks.ended(room) is not None, within_s=30, what="call.ended in the spool")
    found = stacks.ended(room)
    assert found is not None
    return found


async def test_with_a_tts_fallback_each_tts_fault_switches_to_it_and_the_caller_hears_and_reads_the_answer(
    stacks: FaultStacks,
) -> None:
    async with FaultCall.open(stacks, metadata=VOICE_CALL) as call:
        await call.until_read("Hello.", within_s=ANSWER_WITHIN_S, what="the welcome")
        for index, kind in enumerate(TTS_SWITCHED):
            stacks.openai.inject(spec("tts", kind))
            since = time.monotonic()
            text = f"spoken answer {index}"
            await call.caller.type(text)
            await call.until_read(f"You said: {text}", within_s=ANSWER_WITHIN_S, what=f"the answer after {kind}")
            await call.until_heard(since, within_s=ANSWER_WITHIN_S, what=f"the answer spoken after {kind}")
            assert any(text in r.text for r in stacks.deepgram.requests_to("/v1/speak")), "the fallback TTS spoke it"
        assert DEGRADED_NOTICE not in call.chat, "the call never lost its voice"
    ended = await _ended(stacks, call.room)
    primary = failures(ended, role="tts", position=0)
    assert {(i["kind"], i.get("status")) for i in primary} == {("status", 500), ("status", 429), ("timeout", None)}


@pytest.mark.parametrize("kind", ["cut", "refuse"])
async def test_a_tts_stream_cut_or_reset_is_taken_over_by_the_fallback_and_heard(
    stacks: FaultStacks, kind: FaultName
) -> None:
    async with FaultCall.open(stacks, metadata=VOICE_CALL) as call:
        await call.until_read("Hello.", within_s=ANSWER_WITHIN_S, what="the welcome")
        stacks.openai.inject(spec("tts", kind))
        since = time.monotonic()
        text = f"a reply {kind} while it is spoken"
        await call.caller.type(text)
        await call.until_read(f"You said: {text}", within_s=ANSWER_WITHIN_S, what="the answer read")
        # a cut sentence is spoken again, whole, by the fallback (agent.tts_chain); a reset one by it alone
        await until(
            lambda: any(text in r.text for r in stacks.deepgram.requests_to("/v1/speak")),
            within_s=ANSWER_WITHIN_S,
            what="the fallback TTS asked for the answer",
        )
        await call.until_heard(since, within_s=ANSWER_WITHIN_S, what="the answer heard")
        assert DEGRADED_NOTICE not in call.chat, "the call kept its voice"
    ended = await _ended(stacks, call.room)
    assert failures(ended, role="tts", position=0), "the primary's failure is an incident"


@pytest.mark.parametrize("kind", ["http_429", "timeout"])
async def test_when_every_tts_fails_the_caller_reads_why_and_the_call_goes_on_in_text(
    stacks: FaultStacks, kind: FaultName
) -> None:
    async with FaultCall.open(stacks, metadata=VOICE_CALL) as call:
        await call.until_read("Hello.", within_s=ANSWER_WITHIN_S, what="the welcome")
        stacks.openai.inject(spec("tts", kind, count=5))
        stacks.deepgram.inject(spec("tts", kind, count=5))
        await call.caller.type("can you hear me")
        await call.until_read(DEGRADED_NOTICE, within_s=APOLOGY_WITHIN_S, what="the notice as a caption")
        assert DEGRADED_NOTICE in call.chat
        # nothing is lost: the message is answered in text, and so is the next one
        await call.until_read("You said: can you hear me", within_s=ANSWER_WITHIN_S, what="the answer in text")
        await call.caller.type("still there")
        await call.until_read("You said: still there", within_s=ANSWER_WITHIN_S, what="the next answer in text")
    ended = await _ended(stacks, call.room)
    assert {i["role"] for i in ended["incidents"] if i["code"] == "provider_failed"} == {"tts"}
    assert ended["end_reason"] == "caller_left"


async def test_neither_the_worker_nor_a_job_process_died_through_every_fault(stacks: FaultStacks) -> None:
    assert stacks.worker.process.returncode is None
    crashed = [r for r in stacks.worker.records() if "exited with non-zero exit code" in str(r.get("message"))]
    assert crashed == []
