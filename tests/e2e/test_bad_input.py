"""Hostile and odd callers through the sandbox: what they type on ``lk.chat`` and what they send as audio.

One worker process writes its call events to a spool; each test is one call with a caller `rtc.Room` (real Opus, real
text streams). Every case ends with the worker alive, the call's ``call.ended`` written, and the transcript holding
what was said or typed (control characters removed, nothing else changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from livekit import api

from agent.chat_limits import clean_text
from sandbox.providers import speech
from sandbox.providers.replies import ECHO_PREFIX, Reply
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import Caller, dispatch, room_name, spooled_event, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

REPLY_WITHIN_S = 60.0
WELCOME = "Hello, this is the front desk."
GREETED: dict[str, object] = {"dialect": "native", "welcome": {"text": WELCOME}}
LIMIT = 4000  # chat.max_message_chars by default
HEARD_IT_ALL = "Thank you, I heard all of that."

# Typed messages a caller (or a broken client) can send; each is answered with what it says once cleaned.
HOSTILE_MESSAGES: dict[str, str] = {
    "oversized": "overflow " * 12_000,
    "binary-looking": bytes(range(1, 256)).decode("latin-1") + "\ufffd\ufffe\uffff" + "\x7f\x1b[31mred",
    "rtl": "مرحبا، هل أنتم مفتوحون غدا؟ \u202egnp.exe\u202c שלום עולם",
    "combining marks": "Z\u0337\u0322\u031ba\u0336\u0321l\u0335\u0327g\u0338o\u0334\u0328 " * 40,
    "emoji zwj": "family \U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
    " flag \U0001f3f3\ufe0f\u200d\U0001f308 wave \U0001f44b\U0001f3fd",
    "nul": "before\x00after\x00\x00end",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("events")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(spool: Path) -> AsyncIterator[Stack]:
    async with running_stack(WEBCALL_EVENTS_DIR=str(spool)) as running:
        yield running


def ended(spool: Path, room: str) -> dict[str, Any] | None:
    return spooled_event(spool, room=room, kind="call.ended")


def user_messages(stack: Stack, since: int) -> list[str]:
    """The last user message of each chat completion the fake LLM was asked since request `since`."""
    found = []
    for request in stack.openai.requests[since:]:
        body = request.json
        if request.path == "/v1/chat/completions" and isinstance(body, dict):
            users = [m["content"] for m in body["messages"] if m["role"] == "user"]
            if users:
                found.append(users[-1])
    return found


async def call_ended(stack: Stack, spool: Path, room: str) -> dict[str, Any]:
    await until(lambda: ended(spool, room), within_s=60, what="call.ended in the spool")
    event = ended(spool, room)
    assert event is not None
    assert stack.worker.process.returncode is None, "the worker is alive"
    return event


async def open_call(stack: Stack, *, metadata: dict[str, object], microphone: bool = False) -> tuple[str, Caller]:
    room = room_name("bad")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room, microphone=microphone)
    await dispatch(stack.lk, room=room, metadata=json.dumps(metadata))
    return room, caller


async def hang_up(stack: Stack, room: str, caller: Caller) -> None:
    await caller.leave()
    # the room may be gone already: the call ended it, or the server timed a starved caller out
    with contextlib.suppress(api.TwirpError):
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))


# -- lk.chat --------------------------------------------------------------------------------------------------


async def typed_and_answered(stack: Stack, caller: Caller, message: str, *, case: str) -> None:
    """`message` is typed; the LLM is asked exactly its cleaned (and cut) text, and the reply is read."""
    since = len(stack.openai.requests)
    replies = sum(ECHO_PREFIX in t for t in caller.transcriptions)
    await caller.type(message)
    await until(lambda: user_messages(stack, since), within_s=REPLY_WITHIN_S, what=f"{case}: the LLM asked")
    assert user_messages(stack, since) == [clean_text(message)[:LIMIT]], case
    await until(
        lambda: sum(ECHO_PREFIX in t for t in caller.transcriptions) > replies,
        within_s=REPLY_WITHIN_S,
        what=f"{case}: the reply read on lk.transcription",
    )


async def test_hostile_chat_messages_are_each_answered_as_cleaned_and_kept_in_the_transcript(
    stack: Stack, spool: Path
) -> None:
    room, caller = await open_call(stack, metadata=GREETED)
    try:
        await until(lambda: any(WELCOME in t for t in caller.transcriptions), within_s=60, what="the welcome")
        for case, message in HOSTILE_MESSAGES.items():
            await typed_and_answered(stack, caller, message, case=case)
    finally:
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    typed = [i["text"] for i in event["transcript"] if i["channel"] == "chat" and i["role"] == "user"]
    assert typed == [clean_text(m)[:LIMIT] for m in HOSTILE_MESSAGES.values()]
    assert event["incident_counts"].get("chat_message_truncated") == 1, "the oversized message, said so"


async def test_empty_and_blank_messages_are_no_turn_are_counted_and_the_next_message_is_answered(
    stack: Stack, spool: Path
) -> None:
    room, caller = await open_call(stack, metadata=GREETED)
    try:
        await until(lambda: any(WELCOME in t for t in caller.transcriptions), within_s=60, what="the welcome")
        since = len(stack.openai.requests)
        for blank in ("", " ", "\n\t \n", "\x00\x00", "\u200b"):
            await caller.type(blank)
        await caller.type("are you open today")
        await until(
            lambda: any("You said: are you open today" in t for t in caller.transcriptions),
            within_s=REPLY_WITHIN_S,
            what="the answer to the message after the blank ones",
        )
        assert user_messages(stack, since) == ["\u200b", "are you open today"]
    finally:
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    typed = [i["text"] for i in event["transcript"] if i["channel"] == "chat" and i["role"] == "user"]
    assert typed == ["\u200b", "are you open today"]
    assert event["incident_counts"].get("chat_message_empty") == 4


# -- audio ----------------------------------------------------------------------------------------------------


def noise(seconds: float, *, rate: int = 16000, amplitude: int = 30000) -> bytes:
    """Full-scale white noise (clipping at the top): the loudest thing a microphone sends."""
    rng = np.random.default_rng(7)
    samples = rng.integers(-amplitude, amplitude, size=int(seconds * rate), dtype=np.int32)
    return samples.astype(np.int16).tobytes()


def trimmed(pcm: bytes, *, threshold: int = 200) -> bytes:
    """`pcm` without its leading and trailing silence, so utterances joined end to end leave no pause."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud.size else b""


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def longest_pause_s(pcm: bytes, *, rate: int = 16000) -> float:
    """The longest run of 20 ms frames quieter than the fake STT's speech threshold (-45 dBFS)."""
    frame = rate // 50
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    longest = run = 0
    for start in range(0, samples.size - frame, frame):
        quiet = np.sqrt(np.mean(samples[start : start + frame] ** 2)) < 32768 * 10 ** (-45 / 20)
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    return longest * 0.02


def agent_turns(stack: Stack, since: int) -> int:
    return sum(1 for r in stack.openai.requests[since:] if r.path == "/v1/chat/completions")


async def test_a_caller_silent_for_the_whole_call_is_reprompted_then_the_call_ends_politely(
    stack: Stack, spool: Path
) -> None:
    metadata = {**GREETED, "limits": {"user_silence_timeout_s": 3, "silence_reprompts": 1}}
    since = len(stack.openai.requests)
    room, caller = await open_call(stack, metadata=metadata, microphone=True)
    try:
        # the caller's microphone is open and sends only silence
        silence = asyncio.create_task(caller.speak(b"\0" * 16000 * 2 * 40))
        await until(lambda: ended(spool, room), within_s=90, what="the call ended by the silence limit")
        silence.cancel()
    finally:
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    assert event["end_reason"] == "user_silence"
    # the re-prompt and the goodbye are generated turns; the caller said nothing
    assert agent_turns(stack, since) == 2
    spoken = [i for i in event["transcript"] if i["role"] == "assistant"]
    assert len(spoken) == 3, "welcome, re-prompt, goodbye"
    assert not [i for i in event["transcript"] if i["role"] == "user"]


async def test_loud_noise_neither_crashes_the_call_nor_makes_endless_turns(stack: Stack, spool: Path) -> None:
    room, caller = await open_call(stack, metadata=GREETED, microphone=True)
    try:
        await until(lambda: any(WELCOME in t for t in caller.transcriptions), within_s=60, what="the welcome")
        since = len(stack.openai.requests)
        loud = noise(20.0)
        assert _rms(loud) > 15000, "about full scale"
        await caller.speak(loud)
        await caller.type("still there")
        await until(
            lambda: any("You said: still there" in t for t in caller.transcriptions),
            within_s=REPLY_WITHIN_S,
            what="an answer after the noise",
        )
        # whatever the STT made of 20 s of noise (an utterance is cut at 15 s), it is a few turns, not one a frame
        assert agent_turns(stack, since) <= 5
    finally:
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    assert event["end_reason"] == "caller_left"


@pytest.mark.timeout(900)
async def test_a_caller_talking_without_a_pause_for_three_minutes_is_heard_whole_and_answered(
    stack: Stack, spool: Path
) -> None:
    sentence = trimmed(
        speech.espeak_utterance("and then we talked about the order and the delivery and the invoice and the address")
    )
    talk = sentence * (int(180 * 16000 * 2 / len(sentence)) + 1)
    assert longest_pause_s(talk) < 0.3, "no pause long enough to end an utterance at the fake STT"
    room, caller = await open_call(stack, metadata=GREETED, microphone=True)
    # a short answer to whatever was said (an echo of three minutes would take three minutes to speak)
    stack.openai.replies.policy = lambda _body: Reply(text=HEARD_IT_ALL)
    try:
        await until(lambda: any(WELCOME in t for t in caller.transcriptions), within_s=60, what="the welcome")
        await caller.speak(talk)
        # the turn ends when the fake STT's last final arrives: on a loaded 2-core box its whisper runs minutes behind
        # three minutes of speech (finals of 15 s utterances, queued in order)
        await until(
            lambda: any(HEARD_IT_ALL in t for t in caller.transcriptions),
            within_s=400,
            what="the answer once the caller stops",
        )
    finally:
        stack.openai.replies.reset()
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    heard = " ".join(i["text"] for i in event["transcript"] if i["role"] == "user").lower()
    # whisper drops many of the repeats, but each 15 s utterance holds about three sentences: six or more mean the
    # transcript holds more than the last 30 s
    assert heard.count("invoice") >= 6, "minutes of speech are in the transcript, not only the last seconds"


async def test_a_caller_who_never_publishes_a_track_is_greeted_and_answered_in_the_chat(
    stack: Stack, spool: Path
) -> None:
    room, caller = await open_call(stack, metadata=GREETED, microphone=False)
    try:
        await until(lambda: any(WELCOME in t for t in caller.transcriptions), within_s=60, what="the welcome")
        await caller.type("I have no microphone")
        await until(
            lambda: any("You said: I have no microphone" in t for t in caller.transcriptions),
            within_s=REPLY_WITHIN_S,
            what="the typed answer",
        )
        assert not caller.room.local_participant.track_publications
    finally:
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    assert [i["text"] for i in event["transcript"] if i["role"] == "user"] == ["I have no microphone"]


async def answered(caller: Caller, said: Callable[[str], bool], word: str, *, what: str) -> None:
    try:
        await until(lambda: said(word), within_s=REPLY_WITHIN_S, what=what)
    except AssertionError as error:
        raise AssertionError(f"{error}; the caller read {caller.transcriptions}") from None


async def test_a_caller_who_unpublishes_and_republishes_the_microphone_is_heard_on_the_new_track(
    stack: Stack, spool: Path
) -> None:
    room, caller = await open_call(stack, metadata=GREETED, microphone=True)
    said: Callable[[str], bool] = lambda word: any(  # noqa: E731
        t.startswith("You said:") and word in t.lower() for t in caller.transcriptions
    )
    try:
        await until(lambda: any(WELCOME in t for t in caller.transcriptions), within_s=60, what="the welcome")
        await caller.speak(speech.espeak_utterance("What time do you open on Monday?"))
        await answered(caller, said, "monday", what="the answer on the first track")
        first = await caller.unpublish_microphone()
        started = time.monotonic()
        await caller.speak(speech.espeak_utterance("Where can I park my car?"))
        await answered(caller, said, "park", what="the answer on the republished track")
        assert caller.first_loud_at(started) is not None, "the answer was spoken, too"
        assert first not in caller.room.local_participant.track_publications
    finally:
        await hang_up(stack, room, caller)
    event = await call_ended(stack, spool, room)
    heard = [i["text"].lower() for i in event["transcript"] if i["role"] == "user"]
    assert any("monday" in t for t in heard)
    assert any("park" in t for t in heard)
