"""Typed messages are never dropped and are answered in order."""

from __future__ import annotations

import asyncio

import pytest

from agent.config.call_config import CallConfig
from tests.chat.fakes import ScriptedLLM, last_user_text
from tests.chat.harness import in_process_call

WELCOME = "Welcome to the clinic, this greeting plays to the very end before anything else happens."


async def test_a_message_typed_during_a_non_interruptible_welcome_is_answered_after_it() -> None:
    async with in_process_call(welcome=WELCOME, welcome_interruptible=False, playout_speed=1.0) as call:
        await call.until_speaking()
        assert call.session.current_speech is not None, "the welcome should still be playing"
        await call.type("what are your opening hours?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert [last_user_text(r.chat_ctx) for r in call.llm.requests] == ["what are your opening hours?"]
        welcome_segment, reply_segment = call.text.segments
        assert welcome_segment.text == WELCOME
        assert reply_segment.text == "answer to: what are your opening hours?"
        assert reply_segment.chunks[0][0] >= welcome_segment.chunks[-1][0]
        assert call.audio.played[0].interrupted is False


async def test_the_frameworks_default_handler_loses_a_message_typed_during_a_non_interruptible_welcome() -> None:
    from livekit.agents.voice.room_io import TextInputEvent
    from livekit.agents.voice.room_io.types import _default_text_input_cb

    async with in_process_call(welcome=WELCOME, welcome_interruptible=False, playout_speed=1.0) as call:
        await call.until_speaking()
        assert call.session.current_speech is not None
        with pytest.raises(RuntimeError):
            await _default_text_input_cb(call.session, TextInputEvent(text="lost?"))
        assert call.llm.requests == []


async def test_several_messages_at_once_are_answered_one_by_one_in_order() -> None:
    async with in_process_call(llm=ScriptedLLM(chunk_delay_s=0.01)) as call:
        for text in ("first", "second", "third"):
            await call.type(text)
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert [last_user_text(r.chat_ctx) for r in call.llm.requests] == ["first", "second", "third"]
        assert call.text.texts == ["answer to: first", "answer to: second", "answer to: third"]


async def test_a_message_typed_while_the_agent_speaks_waits_for_the_speech_and_does_not_cut_it_off() -> None:
    async with in_process_call(welcome=WELCOME, welcome_interruptible=True, playout_speed=1.0) as call:
        await call.until_speaking()
        assert call.session.current_speech is not None
        await call.type("hello?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert call.audio.played[0].interrupted is False
        assert call.text.texts == [WELCOME, "answer to: hello?"]


async def test_the_transcript_holds_both_channels_in_order_with_speakers() -> None:
    async with in_process_call(welcome=WELCOME, welcome_interruptible=False, playout_speed=1.0) as call:
        await call.until_speaking()
        await call.type("typed during the welcome")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)
        spoken = call.session.generate_reply(user_input="a spoken question", input_modality="audio")
        await spoken
        await asyncio.sleep(0.05)

        items = [(i.channel, i.role, i.speaker, i.text) for i in call.chat.transcript.items]
        assert items == [
            ("voice", "assistant", "agent", WELCOME),
            ("chat", "user", "caller", "typed during the welcome"),
            ("chat", "assistant", "agent", "answer to: typed during the welcome"),
            ("voice", "user", "caller", "a spoken question"),
            ("voice", "assistant", "agent", "answer to: a spoken question"),
        ]
        # the welcome is recorded when it has played, after the message typed during it
        assert [i.seq for i in call.chat.transcript.items] == [1, 0, 2, 3, 4]


async def test_a_scribe_call_records_every_message_but_answers_only_those_addressed_to_the_agent() -> None:
    def addressed(text: str, speaker: str) -> bool:
        return "scribe" in text.lower()

    async with in_process_call(config=CallConfig(dialect="scaiwave"), should_answer=addressed) as call:
        await call.type("let's start with the budget", speaker="alice")
        await call.type("Scribe, what did Alice say?", speaker="bob")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert [last_user_text(r.chat_ctx) for r in call.llm.requests] == ["bob: Scribe, what did Alice say?"]
        users = [(i.speaker, i.text) for i in call.chat.transcript.items if i.role == "user"]
        assert users == [("alice", "let's start with the budget"), ("bob", "Scribe, what did Alice say?")]
