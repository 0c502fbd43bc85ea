"""Replies match the channel, per `chat.reply_mode`."""

from __future__ import annotations

import asyncio

from livekit.agents import llm

from agent.config.call_config import CallConfig, ChatConfig
from tests.chat.fakes import ScriptedLLM
from tests.chat.harness import in_process_call

LONG_REPLY = "We open at eight in the morning and close at half past six in the evening on weekdays."


def config(mode: str) -> CallConfig:
    return CallConfig(chat=ChatConfig.model_validate({"reply_mode": mode}))


async def test_auto_answers_a_typed_message_in_text_without_synthesizing_speech() -> None:
    async with in_process_call(config=config("auto")) as call:
        await call.type("when do you open?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert call.text.texts == ["answer to: when do you open?"]
        assert call.tts.texts == []
        assert call.audio.played == []
        assert call.session.output.audio_enabled, "audio comes back on for the next spoken turn"


async def test_a_text_reply_streams_while_the_llm_is_still_producing_it() -> None:
    llm = ScriptedLLM(policy=lambda ctx: LONG_REPLY, chunk_delay_s=0.03)
    async with in_process_call(config=config("auto"), llm=llm) as call:
        await call.type("when do you open?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        (segment,) = call.text.segments
        assert segment.text == LONG_REPLY
        produced = llm.requests[0].chunk_times
        # the caller has the first words before the LLM has produced the last ones
        assert segment.chunks[0][0] < produced[-1]
        assert len(segment.chunks) > 1


async def test_auto_answers_a_spoken_turn_in_voice_after_a_text_turn() -> None:
    async with in_process_call(config=config("auto")) as call:
        await call.type("typed")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)
        await call.session.generate_reply(user_input="spoken", input_modality="audio")

        assert call.tts.texts == ["answer to: spoken"]
        assert len(call.audio.played) == 1
        assert call.text.texts == ["answer to: typed", "answer to: spoken"]


async def test_voice_mode_speaks_the_reply_to_a_typed_message() -> None:
    async with in_process_call(config=config("voice")) as call:
        await call.type("read it to me")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert call.tts.texts == ["answer to: read it to me"]
        assert len(call.audio.played) == 1
        assert call.text.texts == ["answer to: read it to me"]


async def test_text_mode_never_synthesizes_speech_not_even_the_welcome() -> None:
    async with in_process_call(config=config("text"), welcome="Hello and welcome.") as call:
        await call.type("hi")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)
        await call.session.generate_reply(user_input="spoken", input_modality="audio")

        assert call.tts.texts == []
        assert call.audio.played == []
        assert call.text.texts[-2:] == ["answer to: hi", "answer to: spoken"]


async def test_a_text_turn_asks_the_llm_for_plain_text() -> None:
    async with in_process_call(config=config("auto")) as call:
        await call.type("hi")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        system = [
            item.text_content or ""
            for item in call.llm.requests[0].chat_ctx.items
            if isinstance(item, llm.ChatMessage) and item.role == "system"
        ]
        assert any("no speech markup" in text for text in system)
