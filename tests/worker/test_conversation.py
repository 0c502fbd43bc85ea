"""The conversation in-process: welcome, interruption semantics, limits, mid-call changes (real AgentSession)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from livekit.agents import vad

from agent import pipeline
from agent.config.call_config import CallConfig, Limits, Welcome
from agent.conversation import (
    GREETING_INSTRUCTIONS,
    REPROMPT_INSTRUCTIONS,
    SILENCE_GOODBYE_INSTRUCTIONS,
    TIME_UP_GOODBYE_INSTRUCTIONS,
)
from tests.worker.fakes import ScriptedSTT, espeak_pcm, instructions_of, last_user_text
from tests.worker.harness import in_process_call


@pytest.fixture(scope="module")
def silero() -> vad.VAD:
    return pipeline.load_vad()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak_pcm("What time do you open on Saturday?", workdir=tmp_path_factory.mktemp("speech"))


async def until(predicate: Callable[[], object], *, within_s: float = 10.0) -> None:
    """Wait for a condition that framework callbacks make true (they signal no event a test could await)."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 - state is set by framework callbacks, not by an awaitable
            await asyncio.sleep(0.02)


def config_with(**updates: object) -> CallConfig:
    return CallConfig(instructions="You are the front desk of Hotel Lumen.").model_copy(update=updates)


async def test_the_configured_welcome_is_synthesized_and_played_first() -> None:
    config = config_with(welcome=Welcome(text="Welcome to Hotel Lumen!", mode="say"))
    async with in_process_call(config) as call:
        await until(lambda: call.audio_out.segments)
        assert call.tts.texts == ["Welcome to Hotel Lumen!"]
        assert call.audio_out.frames > 0
        assert call.llm.requests == []


async def test_generate_mode_has_the_llm_greet_with_the_rendered_instructions() -> None:
    config = config_with(welcome=Welcome(mode="generate"))
    async with in_process_call(config) as call:
        await until(lambda: call.tts.texts)
        request = call.llm.requests[0].chat_ctx
        assert "You are the front desk of Hotel Lumen." in instructions_of(request)
        assert GREETING_INSTRUCTIONS in instructions_of(request)


async def test_no_welcome_mode_says_nothing_until_the_caller_speaks() -> None:
    config = config_with(welcome=Welcome(text="unused", mode="none"))
    async with in_process_call(config) as call:
        await asyncio.sleep(0.3)
        assert call.tts.texts == []


async def test_an_interruptible_welcome_is_cut_off_by_speech_from_the_first_word(
    silero: vad.VAD, speech: bytes
) -> None:
    long_welcome = "Welcome to Hotel Lumen. " * 12
    config = config_with(welcome=Welcome(text=long_welcome, interruptible=True))
    async with in_process_call(
        config, vad_model=silero, stt=ScriptedSTT(["what time do you open"]), playout_speed=1.0
    ) as call:
        await until(lambda: call.audio_out.frames > 0)
        call.audio_in.push_pcm(speech)
        await until(lambda: call.audio_out.segments and call.audio_out.segments[0].interrupted)
        await until(lambda: call.llm.requests)
        assert last_user_text(call.llm.requests[-1].chat_ctx) == "what time do you open"


async def test_speech_during_a_non_interruptible_welcome_is_kept_and_answered_after_it(
    silero: vad.VAD, speech: bytes
) -> None:
    config = config_with(welcome=Welcome(text="Welcome to Hotel Lumen. " * 6, interruptible=False))
    async with in_process_call(
        config, vad_model=silero, stt=ScriptedSTT(["what time do you open"]), playout_speed=1.0
    ) as call:
        await until(lambda: call.audio_out.frames > 0)
        call.audio_in.push_pcm(speech)
        await until(lambda: call.llm.requests, within_s=30)
        welcome = call.audio_out.segments[0]
        assert not welcome.interrupted
        assert last_user_text(call.llm.requests[-1].chat_ctx) == "what time do you open"
        assert call.stt.heard_seconds, "the STT received the caller's audio"
        assert call.stt.heard_seconds[0] > 0.5, "a whole spoken sentence, segmented by Silero"


async def test_the_maximum_duration_ends_the_call_with_a_spoken_goodbye() -> None:
    config = config_with(welcome=Welcome(mode="none"), limits=Limits(max_duration_s=0.5))
    async with in_process_call(config) as call:
        closed = asyncio.Event()
        call.session.on("close", lambda _: closed.set())
        from agent.conversation import CallLimits

        ended_by: list[str] = []
        limits = CallLimits(session=call.session, limits=config.limits, on_end=ended_by.append)
        limits.start()
        await asyncio.wait_for(closed.wait(), timeout=15)
        assert TIME_UP_GOODBYE_INSTRUCTIONS in instructions_of(call.llm.requests[-1].chat_ctx)
        assert call.tts.texts, "the goodbye was synthesized"
        assert ended_by == ["max_duration"]
        await limits.aclose()


async def test_user_silence_reprompts_then_says_goodbye_and_ends(silero: vad.VAD) -> None:
    config = config_with(welcome=Welcome(mode="none"), limits=Limits(user_silence_timeout_s=0.6, silence_reprompts=1))
    async with in_process_call(config, vad_model=silero) as call:
        closed = asyncio.Event()
        call.session.on("close", lambda _: closed.set())
        from agent.conversation import CallLimits

        ended_by: list[str] = []
        limits = CallLimits(session=call.session, limits=config.limits, on_end=ended_by.append)
        limits.start()
        await asyncio.wait_for(closed.wait(), timeout=20)
        asked = [instructions_of(r.chat_ctx) for r in call.llm.requests]
        assert REPROMPT_INSTRUCTIONS in asked[0]
        assert SILENCE_GOODBYE_INSTRUCTIONS in asked[-1]
        assert len(asked) == 2
        assert ended_by == ["user_silence"]
        await limits.aclose()


async def test_a_mid_call_change_waits_for_the_current_speech_and_applies_at_the_next_turn() -> None:
    config = config_with(welcome=Welcome(text="Welcome to Hotel Lumen. " * 3, interruptible=False))
    async with in_process_call(config, playout_speed=1.0) as call:
        await until(lambda: call.audio_out.frames > 0)
        changed = config.model_copy(
            update={
                "instructions": "You are the front desk of Hotel Lumen. The guest is called Ana.",
                "variables": {"name": "Ana"},
                "tts": config.tts.model_copy(update={"voice": "nova", "speed": 1.2}),
            }
        )
        staged = call.agent.stage(changed, source="room_metadata")
        assert set(staged) == {"instructions", "variables", "tts.voice", "tts.speed"}
        assert call.tts.voice == "alloy", "the welcome keeps its voice"
        await call.session.run(user_input="Hello?")
        assert "The guest is called Ana." in instructions_of(call.llm.requests[-1].chat_ctx)
        assert (call.tts.voice, call.tts.speed) == ("nova", 1.2)
        assert call.agent.config == changed


def test_an_unchanged_config_stages_nothing() -> None:
    from agent.conversation import changed_fields

    config = config_with()
    assert changed_fields(config, config.model_copy()) == ()
