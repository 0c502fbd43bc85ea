"""Caller data and secrets in the logs of a real call, at DEBUG: a worker process (with its job processes) runs a
call through the sandbox whose every caller-controlled input carries a marker, with marker secrets in its keys;
everything the worker printed (stdout and stderr, every process) is then searched.

- Secrets (``LIVEKIT_API_SECRET``, ``OPENAI_API_KEY``, ``DEEPGRAM_API_KEY``, ``WEBCALL_EVENTS_SECRET``): never.
- Caller data (participant name, identity, attributes, metadata, the job's prompt variables, typed ``lk.chat``, what
  the caller said as the STT transcribed it): never while ``WEBCALL_REDACT_CALLER_DATA`` is on (the default); with
  it off, the framework's own DEBUG records show the identity, the rendered welcome, the typed text and the
  transcript, which proves the search sees the records redaction acts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from livekit import api

from sandbox.providers import FakeDeepgram, speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import Caller, WorkerProcess, dispatch, providers, room_name, until, worker_env
from tests.events.receiver import running_receiver, secret_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LIVEKIT_SECRET = "lksecret-Q7mZp2xVt9RkLw4sYb8N"
OPENAI_KEY = "sk-openai-Hs3Ud8Jf6Ke1Pm0Qw5Zr"
DEEPGRAM_KEY = "dg-Vn4Bx7Cy2Lt9Qa1Ws6Ep"
EVENTS_SECRET = secret_for("events-Gq5Tn1Mx8Yd")
SECRETS = {
    "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
    "OPENAI_API_KEY": OPENAI_KEY,
    "DEEPGRAM_API_KEY": DEEPGRAM_KEY,
    "WEBCALL_EVENTS_SECRET": EVENTS_SECRET,
    "WEBCALL_EVENTS_SECRET (key bytes)": EVENTS_SECRET.removeprefix("whsec_"),
}

CALLER_NAME = "Ophelia Quaxbourne"
CALLER_IDENTITY = "caller-Zentrovik"
ATTRIBUTE_VALUE = "Attrimarkel"
METADATA_VALUE = "Metamarquis"
JOB_VARIABLE = "Varimarkle"
TYPED = "Chatmarkovy is my typed message"
SPOKEN = "My favourite fruit is pineapple."


@dataclass
class CallLog:
    lines: list[str]
    transcript: str


@dataclass
class MarkedStack:
    worker: WorkerProcess
    lk: api.LiveKitAPI
    server: ServerProcess
    deepgram: FakeDeepgram


@contextlib.asynccontextmanager
async def worker_stack(*, redact: bool) -> AsyncIterator[MarkedStack]:
    await asyncio.to_thread(speech.load_all)
    server = dataclasses.replace(
        await start_server_process(port=0, extra_args=["--api-secret", LIVEKIT_SECRET]), api_secret=LIVEKIT_SECRET
    )
    try:
        async with providers() as (openai, deepgram), running_receiver(EVENTS_SECRET) as receiver:
            env = worker_env(
                server,
                openai,
                deepgram,
                OPENAI_API_KEY=OPENAI_KEY,
                DEEPGRAM_API_KEY=DEEPGRAM_KEY,
                WEBCALL_EVENTS_URL=receiver.url,
                WEBCALL_EVENTS_SECRET=EVENTS_SECRET,
                WEBCALL_LOG_LEVEL="DEBUG",
                WEBCALL_REDACT_CALLER_DATA="true" if redact else "false",
                # the caller's attribute is allowed, so it reaches the prompt (and the records that carry it)
                WEBCALL_CALLER_ALLOWED_FIELDS="language,variables.nickname",
            )
            worker = await WorkerProcess.start(env)
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            try:
                yield MarkedStack(worker=worker, lk=lk, server=server, deepgram=deepgram)
            finally:
                await lk.aclose()
                await worker.aclose()
    finally:
        await server.aclose()


async def run_marked_call(*, redact: bool) -> CallLog:
    """One call with a marker in every caller-controlled input; the worker's whole output once it has exited."""
    async with worker_stack(redact=redact) as stack:
        worker, lk, deepgram = stack.worker, stack.lk, stack.deepgram
        room = room_name("redact")
        await lk.room.create_room(api.CreateRoomRequest(name=room))
        caller = await Caller.join(
            stack.server,
            room=room,
            identity=CALLER_IDENTITY,
            name=CALLER_NAME,
            attributes={"webcall.variables.nickname": ATTRIBUTE_VALUE, "webcall.language": "en"},
            metadata=json.dumps({"promptVariables": {"nickname": METADATA_VALUE}}),
        )
        job = {
            "agentId": "e63355c6-cf51-40f3-b006-b615d9ab762d",
            "metadata": {"promptVariables": {"customer_name": JOB_VARIABLE}},
        }
        try:
            await dispatch(lk, room=room, metadata=json.dumps(job))
            await until(lambda: caller.transcriptions, within_s=40, what="the welcome")
            await caller.type(TYPED)
            await until(
                lambda: any("Chatmarkovy" in t for t in caller.transcriptions), within_s=40, what="the chat reply"
            )
            await caller.speak(speech.espeak_utterance(SPOKEN))
            await until(
                lambda: any(r.text for r in deepgram.requests_to("/v1/listen")),
                within_s=40,
                what="the caller's speech transcribed",
            )
            await until(lambda: len(caller.transcriptions) >= 3, within_s=40, what="the spoken reply")
            heard = deepgram.requests_to("/v1/listen")
            transcript = " ".join(r.text for r in heard if r.text)
        finally:
            await caller.leave()
        await worker.wait_for_log("process exiting", within_s=30)
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    return CallLog(lines=worker.lines, transcript=transcript)


def found(lines: list[str], marker: str) -> list[str]:
    return [line for line in lines if marker.lower() in line.lower()]


def caller_markers(log: CallLog) -> dict[str, str]:
    return {
        "name": CALLER_NAME,
        "identity": CALLER_IDENTITY,
        "attribute": ATTRIBUTE_VALUE,
        "metadata": METADATA_VALUE,
        "job variable": JOB_VARIABLE,
        "typed chat": "Chatmarkovy",
        "spoken (as transcribed)": log.transcript.strip(),
    }


async def test_with_redaction_on_no_secret_and_no_caller_data_is_in_any_output_at_debug() -> None:
    log = await run_marked_call(redact=True)
    # The job process's DEBUG records reached the output, with the framework's transcript key redacted.
    assert found(log.lines, '"lk.pii.user_transcript": "[redacted]"')
    assert found(log.lines, '"message": "call ended"')
    assert log.transcript, "the caller's speech was transcribed"
    leaks = {what: found(log.lines, value)[:3] for what, value in {**SECRETS, **caller_markers(log)}.items()}
    assert {what: lines for what, lines in leaks.items() if lines} == {}


async def test_with_redaction_off_the_caller_data_shows_and_still_no_secret() -> None:
    log = await run_marked_call(redact=False)
    assert log.transcript, "the caller's speech was transcribed"
    secrets = {what: found(log.lines, value)[:3] for what, value in SECRETS.items()}
    assert {what: lines for what, lines in secrets.items() if lines} == {}
    shown = {what for what, value in caller_markers(log).items() if found(log.lines, value)}
    # Under the framework's keys: the participant's identity, the welcome rendered with the job's variable, what
    # the caller typed and said.
    assert {"identity", "job variable", "typed chat", "spoken (as transcribed)"} <= shown, shown
