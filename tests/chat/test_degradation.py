"""When the TTS fails the call degrades to text: the agent says so and keeps answering typed messages."""

from __future__ import annotations

import asyncio
import time

from livekit.agents import ErrorEvent, stt, tts

from agent.chat import DEGRADED_NOTICE
from agent.config.call_config import CallConfig, ChatConfig
from tests.chat.fakes import ToneTTS, last_user_text
from tests.chat.harness import in_process_call


async def test_a_failing_tts_degrades_the_call_to_text_and_typed_messages_are_still_answered() -> None:
    config = CallConfig(chat=ChatConfig(reply_mode="voice"))
    async with in_process_call(config=config, tts=ToneTTS(failing=True)) as call:
        await call.type("first question")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)
        await call.type("second question")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert call.chat.degraded == {"tts"}
        assert [e.code for e in call.chat.events] == ["chat_degraded"]
        assert call.session.output.audio_enabled is False
        # the first question's voice reply died with the TTS and was answered again in text
        assert "answer to: first question" in call.text.texts
        assert call.text.texts[-1] == "answer to: second question"
        assert len(call.llm.requests) == 3, "first (voice, failed), first again (text), second (text)"
        assert call.text.texts.count("answer to: first question") >= 1
        assert last_user_text(call.llm.requests[-1].chat_ctx) == "second question"
        notices = [i for i in call.chat.transcript.items if i.text == DEGRADED_NOTICE]
        assert [(n.channel, n.role) for n in notices] == [("chat", "assistant")]


async def test_after_degrading_the_session_stays_open_for_many_turns() -> None:
    config = CallConfig(chat=ChatConfig(reply_mode="voice"))
    async with in_process_call(config=config, tts=ToneTTS(failing=True)) as call:
        for i in range(5):
            await call.type(f"q{i}")
            await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert call.text.texts[-1] == "answer to: q4"
        assert len(call.tts.texts) == 1, "no speech is attempted after the first failure"


async def test_an_unrecoverable_stt_error_turns_audio_input_off_and_says_so_in_speech_and_the_chat() -> None:
    async with in_process_call() as call:
        error = stt.STTError(timestamp=time.time(), label="stt", error=RuntimeError("down"), recoverable=False)
        call.session.emit("error", ErrorEvent(error=error, source=None))
        await call.type("can you still read me?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert call.chat.degraded == {"stt"}
        assert call.session.input.audio_enabled is False
        assert call.session.output.audio_enabled is True, "the agent can still speak"
        assert [e.code for e in call.chat.events] == ["chat_degraded"]
        # the notice is spoken (its transcription is the first text out), then the typed message is answered
        assert call.text.texts == [DEGRADED_NOTICE, "answer to: can you still read me?"]


async def test_a_recoverable_error_does_not_degrade_the_call() -> None:
    async with in_process_call() as call:
        error = tts.TTSError(timestamp=time.time(), label="tts", error=RuntimeError("blip"), recoverable=True)
        call.session.emit("error", ErrorEvent(error=error, source=None))

        assert call.chat.degraded == set()
        assert call.session.output.audio_enabled is True
