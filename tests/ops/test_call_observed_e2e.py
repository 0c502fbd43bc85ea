"""One call through a real worker (``python -m agent start``, its forkserver job pool) and the sandbox, observed the way
an operator observes it: ``/metrics`` scraped before, during and after, and the worker's JSON log lines.

The call runs in a job process; what it counts there must show on the main process's ``/metrics``, and what it logs
there must carry the call's fields.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from livekit import api

from sandbox.providers import speech
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import HEALTH_LISTENING, Caller, dispatch, room_name, until
from tests.ops.scrape import get, value

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CALLER_NAME = "Zanzibar Quill"
CALLER_IDENTITY = "caller-quill-7731"
CALL_ID = "call-4242"
AGENT_ID = "550e8400-e29b-41d4-a716-446655440000"
METADATA = json.dumps(
    {
        "agent_id": AGENT_ID,
        "call": {"call_id": CALL_ID},
        "variables": {"customer_name": CALLER_NAME},
        "welcome": {"text": "Hello {{customer_name}}, how can I help?", "interruptible": True},
    }
)


@dataclass(frozen=True)
class Observed:
    room: str
    before: str
    during: str
    after: str
    lines: list[str]
    records: list[dict[str, Any]]


async def scrape(stack: Stack) -> str:
    status, text = await get(stack.worker.health_url("/metrics"))
    assert status == 200
    return text


async def scrape_until(stack: Stack, predicate: Callable[[str], bool], *, within_s: float) -> str:
    """The first scrape that satisfies `predicate`, polled."""
    async with asyncio.timeout(within_s):
        while not predicate(text := await scrape(stack)):  # noqa: ASYNC110 - a scrape is the only signal
            await asyncio.sleep(0.2)
    return text


async def spoken_turn(stack: Stack, caller: Caller) -> None:
    await caller.speak(speech.espeak_utterance("Do you have a table for four tonight?"))

    def replied() -> bool:
        return any(r.path == "/v1/audio/speech" and r.text.startswith("You said") for r in stack.openai.requests)

    await until(replied, within_s=40, what="a spoken reply synthesized")
    replied_at = time.monotonic()
    await until(lambda: caller.loud_since(replied_at - 1.0) > 0.5, within_s=20, what="the reply heard")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def observed() -> AsyncIterator[Observed]:
    async with running_stack() as stack:
        await stack.worker.wait_for_log(HEALTH_LISTENING, within_s=10)
        before = await scrape_until(stack, lambda text: value(text, "webcall_worker_ready") == 1, within_s=10)
        room = room_name("observed")
        await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
        caller = await Caller.join(stack.server, room=room, identity=CALLER_IDENTITY, name=CALLER_NAME)
        try:
            await dispatch(stack.lk, room=room, metadata=METADATA)
            await until(lambda: caller.transcriptions, within_s=30, what="the welcome")
            during = await scrape(stack)
            await spoken_turn(stack, caller)
        finally:
            await caller.leave()
        after = await scrape_until(stack, lambda text: value(text, "webcall_active_calls") == 0, within_s=20)
        await until(
            lambda: any(r.get("message") == "process exiting" for r in stack.worker.room_records(room)),
            within_s=20,
            what="the job's process exiting",
        )
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
        yield Observed(
            room=room,
            before=before,
            during=during,
            after=after,
            lines=list(stack.worker.lines),
            records=stack.worker.records(),
        )


async def test_a_live_call_is_one_active_call_and_none_once_it_ended(observed: Observed) -> None:
    assert value(observed.before, "webcall_active_calls") == 0
    assert value(observed.during, "webcall_active_calls") == 1
    assert value(observed.during, "webcall_job_processes", state="call") == 1
    assert value(observed.after, "webcall_active_calls") == 0
    assert value(observed.after, "webcall_job_processes", state="call") == 0


async def test_what_the_job_process_counted_reaches_the_main_process_scrape(observed: Observed) -> None:
    assert value(observed.before, "webcall_calls_total", dialect="native", end_reason="caller_left") == 0
    assert value(observed.after, "webcall_calls_total", dialect="native", end_reason="caller_left") == 1
    # Counted in the entrypoint, while the call was live.
    assert value(observed.during, "webcall_config_warnings_total", code="missing_variable") == 1
    # The framework's own job gauge comes through the same files.
    assert any(line.startswith("lk_agents_active_job_count") for line in observed.after.splitlines())


async def test_the_spoken_turn_is_in_the_three_latency_histograms(observed: Observed) -> None:
    for histogram in ("webcall_turn_latency_seconds", "webcall_llm_ttft_seconds", "webcall_tts_ttfb_seconds"):
        assert value(observed.before, f"{histogram}_count") == 0, histogram
        assert value(observed.after, f"{histogram}_count") >= 1, histogram
        assert 0 < value(observed.after, f"{histogram}_sum") < 30, histogram


async def test_the_job_process_memory_is_measured_while_it_runs_the_call(observed: Observed) -> None:
    assert value(observed.during, "webcall_job_process_memory_bytes", state="call") > 20 * 2**20
    assert value(observed.during, "webcall_job_process_memory_max_bytes", state="call") > 20 * 2**20


async def test_no_label_carries_the_room_the_caller_or_the_call(observed: Observed) -> None:
    for text in (observed.during, observed.after):
        for secret in (observed.room, CALLER_IDENTITY, CALLER_NAME, "Zanzibar", CALL_ID):
            assert secret not in text, f"{secret!r} is call or caller data, never a label"


async def test_every_log_line_of_the_job_is_one_json_object_with_the_call_fields(observed: Observed) -> None:
    started = next(r for r in observed.records if r.get("message") == "call started" and r.get("room") == observed.room)
    # The main process's supervisor logs about the job under the job's pid ("process exiting"): not the job's own.
    job = [
        r
        for r in observed.records
        if r.get("pid") == started["pid"] and not str(r.get("code.file.path")).endswith("ipc/supervised_proc.py")
    ]
    first = next(i for i, r in enumerate(job) if r.get("room") == observed.room)
    of_the_call = job[first:]
    assert len(of_the_call) >= 8
    assert {"call started", "caller left, ending call", "call ended"} <= {str(r.get("message")) for r in of_the_call}
    for record in of_the_call:
        assert record["room"] == observed.room, record
        assert record["job_id"] == started["job_id"], record
    # From the dispatch's reading on (the first record is that reading's own log line).
    for record in of_the_call[1:]:
        fields = (record.get("dialect"), record.get("agent_id"), record.get("call_id"))
        assert fields == ("native", AGENT_ID, CALL_ID), record
    job_lines = [line for line in observed.lines if f'"pid": {started["pid"]}' in line]
    assert len(job_lines) >= len(job)
    assert all(isinstance(json.loads(line), dict) for line in job_lines)


async def test_the_caller_s_name_is_in_no_log_line(observed: Observed) -> None:
    assert not [line for line in observed.lines if "Zanzibar" in line]
