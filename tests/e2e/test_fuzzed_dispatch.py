"""Fuzzed metadata dispatched live: 100 generated calls (mutated golden examples) through the sandbox to one worker.

Each call is a real room: room metadata set at creation, the caller joining with the generated attributes and
participant metadata, and the generated dispatch metadata. Every call must get an agent that speaks (its welcome, or
an answer to a typed message when the config has no spoken welcome), both call events in the spool, and every
warning the resolver gives for those inputs in those events. The worker must outlive all of them, and no record of
it or its job processes may be an error, but for the records of a room or process torn down after its call
ended (TEARDOWN_RECORDS).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, assume, given, seed, settings
from livekit import api

from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources, resolve_call
from agent.scribe import address_names
from agent.settings import Settings
from tests.config.fuzzing import FuzzCase, fuzz_cases
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, dispatch, room_name, spool_events, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LIVE_CALLS = int(os.environ.get("WEBCALL_FUZZ_LIVE_CALLS", "100"))
AT_ONCE = 4
# A browser's token carries its metadata and attributes in a header: a platform keeps them small.
CALLER_BYTES = 3000
REPO = Path(__file__).resolve().parents[2]


def on_the_wire(text: str | None) -> str:
    """What a protobuf string can carry: lone surrogates (never valid UTF-8) become U+FFFD."""
    return "" if text is None else text.encode("utf-8", "replace").decode("utf-8")


def generated(count: int) -> list[FuzzCase]:
    cases: list[FuzzCase] = []

    @seed(20261203)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=fuzz_cases())
    def collect(case: FuzzCase) -> None:
        # Cases that need other deployment settings (WEBCALL_DIALECT) are left to the offline fuzz test.
        assume(not case.env)
        caller = case.sources.caller_metadata or ""
        assume(len(caller) + sum(len(k) + len(v) for k, v in case.sources.caller_attributes.items()) < CALLER_BYTES)
        cases.append(case)

    collect()
    return cases[:count]


@dataclass
class FuzzStack:
    stack: Stack
    spool: Path
    settings: Settings


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fuzz_stack() -> AsyncIterator[FuzzStack]:
    with tempfile.TemporaryDirectory() as directory:
        spool = Path(directory)
        async with running_stack(WEBCALL_EVENTS_DIR=str(spool)) as stack:
            expected = Settings(
                _env_file=None,
                WEBCALL_CONFIG_DIR=str(REPO / "config"),
                WEBCALL_PROMPTS_DIR=str(REPO / "prompts"),
            )
            yield FuzzStack(stack=stack, spool=spool, settings=expected)


def events_in(spool: Path, room: str) -> Iterator[dict[str, object]]:
    return (event for event in spool_events(spool) if event.get("room") == room)


def typed_prompt(config: CallConfig) -> str:
    # A scribe answers only what names it.
    return f"{address_names(config)[0]}, what time is it?" if config.is_scribe else "What time is it?"


async def one_call(fuzz: FuzzStack, case: FuzzCase, index: int) -> None:
    stack = fuzz.stack
    base = case.sources.room_name
    room = f"{base}-{index}" if base and base.startswith("scaiwave-") and len(base) < 60 else room_name(f"fuzz{index}")
    sources = CallSources(
        job_metadata=on_the_wire(case.sources.job_metadata),
        room_metadata=on_the_wire(case.sources.room_metadata),
        caller_metadata=on_the_wire(case.sources.caller_metadata),
        caller_attributes={on_the_wire(k): on_the_wire(v) for k, v in case.sources.caller_attributes.items()},
        room_name=room,
    )
    config = resolve_call(sources, settings=fuzz.settings)
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room, metadata=sources.room_metadata or ""))
    caller = await Caller.join(
        stack.server,
        room=room,
        identity=f"caller-{index}",
        attributes=dict(sources.caller_attributes),
        metadata=sources.caller_metadata or "",
    )
    try:
        await dispatch(stack.lk, room=room, metadata=sources.job_metadata or "")
        what = f"case {index} ({case.example}): the agent speaking"
        if config.welcome.mode == "none" or not config.welcome.text.strip():
            await until(
                lambda: "call.started" in {e["type"] for e in events_in(fuzz.spool, room)}, within_s=60, what=what
            )
            await caller.type(typed_prompt(config))
        await until(lambda: caller.transcriptions or caller.loud_since(0) > 0.2, within_s=90, what=what)
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))

    def both_events() -> list[dict[str, object]]:
        found = list(events_in(fuzz.spool, room))
        return found if {"call.started", "call.ended"} <= {e["type"] for e in found} else []

    await until(both_events, within_s=60, what=f"case {index} ({case.example}): call.started and call.ended")
    expected = {(w.code, w.field) for w in config.warnings}
    for event in both_events():
        warnings = event["warnings"]
        assert isinstance(warnings, list)
        sent = {(w["code"], w["field"]) for w in warnings}
        assert expected <= sent, f"case {index} ({case.example}) {event['type']}: missing {expected - sent}"


@pytest.mark.timeout(1200)
async def test_a_hundred_fuzzed_dispatches_each_get_a_speaking_agent_and_every_warning_in_their_events(
    fuzz_stack: FuzzStack,
) -> None:
    cases = await asyncio.to_thread(generated, LIVE_CALLS)
    assert len(cases) == LIVE_CALLS
    slots = asyncio.Semaphore(AT_ONCE)

    async def bounded(case: FuzzCase, index: int) -> None:
        async with slots:
            await one_call(fuzz_stack, case, index)

    results = await asyncio.gather(*(bounded(case, i) for i, case in enumerate(cases)), return_exceptions=True)
    failures = [f"{i} {cases[i].example}: {r!r}" for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failures == []

    worker = fuzz_stack.stack.worker
    assert worker.process.returncode is None, "the worker outlived every fuzzed call"
    records = worker.records()
    killed = killed_at_teardown(records)
    errors = [
        r
        for r in records
        if r.get("level") in ("ERROR", "CRITICAL") and not closing_race(r) and not exit_of_killed(r, killed)
    ]
    assert errors == [], errors[:3]


# Records that are not the worker failing: the room is deleted the moment a call is judged, so the SDK logs the
# transport it was still using; and on a loaded box a job process that already ended its call (both events are in
# the spool, checked above) may take longer than the framework's 10 s shutdown_process_timeout to exit, and is killed.
TEARDOWN_RECORDS = (
    ("livekit", "wrong state: closed"),
    ("livekit", "_reliable closed unexpectedly"),
    ("livekit.agents", "process did not exit in time, killing process"),
)


# What the framework logs when it kills a job process: SIGUSR1 first (its stack-dump signal, which a job process
# forked by the forkserver does not handle, so it ends with -10), then SIGKILL (-9).
KILLED_EXIT_CODES = ("-10", "-9")


def killed_at_teardown(records: list[dict[str, object]]) -> set[object]:
    """The pids of the job processes the framework killed because they did not exit in time after their call."""
    return {r.get("pid") for r in records if closing_race(r) and "killing process" in str(r.get("message"))}


def exit_of_killed(record: dict[str, object], killed: set[object]) -> bool:
    """The framework's record of the exit of a job process it killed at teardown (see `killed_at_teardown`)."""
    message = str(record.get("message"))
    return (
        record.get("pid") in killed
        and message.startswith("process exited with non-zero exit code")
        and message.rsplit(" ", 1)[-1] in KILLED_EXIT_CODES
    )


def closing_race(record: dict[str, object]) -> bool:
    """A record of a room or job process torn down after its call ended (see TEARDOWN_RECORDS)."""
    message = str(record.get("message"))
    return any(record.get("name") == name and text in message for name, text in TEARDOWN_RECORDS)
