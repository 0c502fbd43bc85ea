"""What `bench.compare` measures on one running worker: start, voice turns, text turns, capacity.

Every time here is ``time.monotonic()`` of the bench process, which runs the callers and the fake OpenAI, so a
caller's speech end, the fakes' request times and the first audible frame at the caller share one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from livekit import api

from bench.callers import BenchCaller, Utterance, join
from bench.fakes import LLM_PATH, STT_PATH, TTS_PATH, FixedOpenAI
from bench.workers import AGENT_NAMES, FLOORS, TreeSample, Worker, cores_between
from sandbox.server.process import ServerProcess

WELCOME_TEXT = "Hello! Thanks for calling. How can I help you today?"
# The project reads its welcome from the dispatch; the baseline has the same text as a constant.
DISPATCH_METADATA = json.dumps({"welcome": {"text": WELCOME_TEXT, "interruptible": True}})
TYPED = "What are your opening hours?"
TURN_WITHIN_S = 15.0
WELCOME_WITHIN_S = 30.0
STAGES = (
    "speech end -> STT request",
    "STT",
    "STT -> LLM request",
    "LLM first token",
    "LLM -> TTS request",
    "TTS first byte",
    "TTS -> audible at caller",
)


def loadavg() -> float:
    return os.getloadavg()[0]


@dataclass(frozen=True)
class Stack:
    server: ServerProcess
    lk: api.LiveKitAPI
    openai: FixedOpenAI


@dataclass(frozen=True)
class VoiceTurn:
    total: float
    stages: dict[str, float]


@dataclass
class Call:
    room: str
    caller: BenchCaller
    dispatched_at: float = 0.0
    welcome_at: float | None = None


async def open_call(stack: Stack, worker: Worker, *, prefix: str = "bench") -> Call:
    """A room with a caller in it (microphone running); not yet dispatched."""
    room = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    return Call(room=room, caller=await join(stack.server, room=room))


async def dispatch(stack: Stack, worker: Worker, call: Call) -> None:
    call.dispatched_at = time.monotonic()
    await stack.lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=AGENT_NAMES[worker.name], room=call.room, metadata=DISPATCH_METADATA)
    )


async def await_welcome(call: Call) -> float:
    """Seconds from dispatch to the welcome's first audible frame at the caller."""
    deadline = time.monotonic() + WELCOME_WITHIN_S
    while (heard := call.caller.first_audible_after(call.dispatched_at)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no welcome audio")
        await asyncio.sleep(0.01)
    call.welcome_at = heard
    return heard - call.dispatched_at


async def close_call(stack: Stack, call: Call) -> None:
    await call.caller.aclose()
    with contextlib.suppress(api.TwirpError):
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=call.room))


async def start_once(stack: Stack, worker: Worker) -> float:
    call = await open_call(stack, worker)
    try:
        await dispatch(stack, worker, call)
        return await await_welcome(call)
    finally:
        await close_call(stack, call)


async def burst_once(stack: Stack, worker: Worker) -> float:
    """Two dispatches back to back; the second one's start."""
    calls = [await open_call(stack, worker), await open_call(stack, worker)]
    try:
        for call in calls:
            await dispatch(stack, worker, call)
        starts = await asyncio.gather(*(await_welcome(call) for call in calls))
        return starts[1]
    finally:
        await asyncio.gather(*(close_call(stack, call) for call in calls))


async def starts(stack: Stack, worker: Worker, *, runs: int) -> dict[str, list[float]]:
    """Warm and burst starts; between runs the job ends and the pool refills its idle processes."""
    found: dict[str, list[float]] = {"warm": [], "burst": []}
    for _ in range(runs):
        found["warm"].append(await start_once(stack, worker))
        await asyncio.sleep(2.5)
        found["burst"].append(await burst_once(stack, worker))
        await asyncio.sleep(3.0)
    return found


# --- voice and text turns ------------------------------------------------------------------------------------------
def stage_times(openai: FixedOpenAI, *, speech_end: float, heard: float) -> dict[str, float] | None:
    """The turn's provider requests between the caller's speech end and the first audible reply frame, as stages."""
    stt = [r for r in openai.requests_to(STT_PATH) if speech_end - 1.0 <= r.started <= heard]
    llm = [r for r in openai.requests_to(LLM_PATH) if speech_end <= r.started <= heard]
    if not stt or not llm:
        return None
    stt_req, llm_req = stt[-1], llm[-1]
    tts = [r for r in openai.requests_to(TTS_PATH) if llm_req.started <= r.started <= heard]
    stt_done, llm_first = openai.answer_time(stt_req), openai.answer_time(llm_req)
    tts_first = openai.answer_time(tts[0]) if tts else None
    if stt_done is None or llm_first is None or tts_first is None:
        return None
    marks = [speech_end, stt_req.started, stt_done, llm_req.started, llm_first, tts[0].started, tts_first, heard]
    return {name: marks[i + 1] - marks[i] for i, name in enumerate(STAGES)}


async def voice_turn(stack: Stack, call: Call, utterance: Utterance) -> VoiceTurn | None:
    """The caller says `utterance`; the time to the reply's first audible frame, and its stages."""
    await call.caller.quiet(for_s=0.8, within_s=TURN_WITHIN_S)
    stack.openai.expect = utterance.text
    speech_end = await call.caller.speak(utterance)
    deadline = speech_end + TURN_WITHIN_S
    while (heard := call.caller.first_audible_after(speech_end)) is None:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.01)
    stages = stage_times(stack.openai, speech_end=speech_end, heard=heard)
    return VoiceTurn(total=heard - speech_end, stages=stages or {})


async def text_turn(stack: Stack, call: Call) -> float | None:
    """A typed message on ``lk.chat``: its first reply text at the caller, less the LLM's first token."""
    await call.caller.quiet(for_s=0.8, within_s=TURN_WITHIN_S)
    sent = time.monotonic()
    await call.caller.type(TYPED)
    deadline = sent + TURN_WITHIN_S
    while True:
        replies = [s for s in call.caller.agent_segments() if call.caller.started + s.at_s >= sent]
        asked = [r for r in stack.openai.requests_to(LLM_PATH) if r.started >= sent]
        first_token = stack.openai.answer_time(asked[0]) if asked else None
        if replies and first_token is not None:
            return call.caller.started + replies[0].at_s - first_token
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.01)


@dataclass
class Conversation:
    voice: list[VoiceTurn] = field(default_factory=list)
    missed: int = 0
    text: list[float] = field(default_factory=list)


async def converse(
    stack: Stack, worker: Worker, *, utterances: Sequence[Utterance], turns: int, typed: int
) -> Conversation:
    """One call: the welcome, then `turns` spoken turns and `typed` typed ones."""
    found = Conversation()
    call = await open_call(stack, worker, prefix="turns")
    try:
        await dispatch(stack, worker, call)
        await await_welcome(call)
        for i in range(turns):
            turn = await voice_turn(stack, call, utterances[i % len(utterances)])
            if turn is None:
                found.missed += 1
            else:
                found.voice.append(turn)
        for _ in range(typed):
            delay = await text_turn(stack, call)
            if delay is not None:
                found.text.append(delay)
    finally:
        await close_call(stack, call)
    return found


# --- capacity --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """N concurrent talking calls: the worker tree's cost per call (idle subtracted) and the turns they got."""

    calls: int
    cores_per_call: float
    pss_per_call_mib: float
    tree_cores: float
    voice: list[float]
    missed: int
    loadavg: float


async def idle_cost(worker: Worker, *, seconds: float, windows: int = 3) -> tuple[float, TreeSample]:
    """The idle tree's CPU: the quietest of `windows` windows (a job process still starting is not idle)."""
    found: list[tuple[float, TreeSample]] = []
    before = worker.sample()
    for _ in range(windows):
        await asyncio.sleep(seconds / windows)
        after = worker.sample()
        found.append((cores_between(before, after), after))
        before = after
    return min(found, key=lambda pair: pair[0])


async def _talk(
    stack: Stack, call: Call, *, utterances: Sequence[Utterance], until: float, offset: float, reply: bool
) -> list[float | None]:
    """One caller's sentences until `until`; the voice-turn totals it got (None for a missed one)."""
    await asyncio.sleep(offset)
    totals: list[float | None] = []
    i = 0
    while time.monotonic() < until:
        utterance = utterances[i % len(utterances)]
        i += 1
        speech_end = await call.caller.speak(utterance)
        if not reply:
            await asyncio.sleep(1.5)  # nobody answers a floor worker's caller: a pause between sentences
            continue
        deadline = speech_end + TURN_WITHIN_S
        heard = None
        while heard is None and time.monotonic() < deadline:
            heard = call.caller.first_audible_after(speech_end)
            await asyncio.sleep(0.02)
        totals.append(heard - speech_end if heard is not None else None)
        await call.caller.quiet(for_s=0.8, within_s=TURN_WITHIN_S)
    return totals


def _joined(caller: BenchCaller) -> bool:
    return caller.agent_identity is not None


async def capacity(
    stack: Stack,
    worker: Worker,
    *,
    calls: int,
    seconds: float,
    utterances: Sequence[Utterance],
    idle: tuple[float, int],
) -> Load:
    """`calls` concurrent conversations for `seconds`; CPU over the window and the tree's peak PSS."""
    idle_cores, idle_pss = idle
    opened = [await open_call(stack, worker, prefix=f"load{calls}") for _ in range(calls)]
    try:
        for call in opened:
            await dispatch(stack, worker, call)
        if worker.name in FLOORS:  # a floor worker says nothing: wait for it to join
            for call in opened:
                await call.caller.until(functools.partial(_joined, call.caller), within_s=30)
        else:
            await asyncio.gather(*(await_welcome(call) for call in opened))
        await asyncio.sleep(4.0)  # the welcomes end, the pool refills its idle processes
        stack.openai.expect = utterances[0].text
        before = worker.sample()
        until = time.monotonic() + seconds
        talks = [
            asyncio.create_task(
                _talk(
                    stack,
                    call,
                    utterances=utterances,
                    until=until,
                    offset=i * 1.5 / calls,
                    reply=worker.name not in FLOORS,
                )
            )
            for i, call in enumerate(opened)
        ]
        peak = before.pss_kib
        while not all(task.done() for task in talks):
            await asyncio.wait(talks, timeout=1.0)
            peak = max(peak, worker.sample().pss_kib)
        after = worker.sample()
        totals = [t for task in talks for t in task.result()]
    finally:
        await asyncio.gather(*(close_call(stack, call) for call in opened))
    window = cores_between(before, after)
    return Load(
        calls=calls,
        cores_per_call=(window - idle_cores) / calls,
        pss_per_call_mib=(peak - idle_pss) / 1024 / calls,
        tree_cores=window,
        voice=[t for t in totals if t is not None],
        missed=sum(1 for t in totals if t is None),
        loadavg=loadavg(),
    )
