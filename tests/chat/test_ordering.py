"""Typed messages are never dropped and are answered in order."""

from __future__ import annotations

import asyncio

from tests.chat.fakes import last_user_text
from tests.chat.harness import in_process_call

WELCOME = "Welcome to the clinic, this greeting plays to the very end before anything else happens."


async def test_a_message_typed_during_a_non_interruptible_welcome_is_answered_after_it() -> None:
    async with in_process_call(welcome=WELCOME, welcome_interruptible=False, playout_speed=1.0) as call:
        await asyncio.sleep(0.2)
        assert call.session.current_speech is not None, "the welcome should still be playing"
        await call.type("what are your opening hours?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert [last_user_text(r.chat_ctx) for r in call.llm.requests] == ["what are your opening hours?"]
        welcome_segment, reply_segment = call.text.segments
        assert welcome_segment.text == WELCOME
        assert reply_segment.text == "answer to: what are your opening hours?"
        assert reply_segment.chunks[0][0] >= welcome_segment.chunks[-1][0]
        assert call.audio.played[0].interrupted is False
