"""Limits on typed messages: size, rate, encoding."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.chat_limits import ChatIncidents, ChatLimits, clean_text
from agent.config.call_config import CallConfig, ChatConfig
from tests.chat.fakes import ScriptedLLM, last_user_text
from tests.chat.harness import in_process_call


async def test_a_message_over_the_size_limit_is_truncated_with_a_warning_event() -> None:
    config = CallConfig(chat=ChatConfig(max_message_chars=10))
    async with in_process_call(config=config) as call:
        await call.type("0123456789ABCDEF")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert last_user_text(call.llm.requests[0].chat_ctx) == "0123456789"
        (event,) = call.chat.events
        assert event.code == "chat_message_truncated"
        assert event.data == {"length": 16, "limit": 10}


async def test_a_flood_is_throttled_into_fewer_turns_and_no_message_is_lost() -> None:
    messages = [f"message {i}" for i in range(30)]
    limits = ChatLimits(burst=2, refill_per_s=5.0)
    async with in_process_call(limits=limits, llm=ScriptedLLM(ttft_s=0.05)) as call:
        for text in messages:
            await call.type(text)
        await asyncio.wait_for(call.chat.wait_idle(), timeout=30)

        asked = [last_user_text(r.chat_ctx) for r in call.llm.requests]
        assert len(asked) < len(messages)
        assert "\n".join(asked).split("\n") == messages
        assert any(e.code == "chat_throttled" for e in call.chat.events)


async def test_past_the_pending_limit_new_messages_are_refused_with_an_event_not_a_crash() -> None:
    limits = ChatLimits(burst=1, refill_per_s=50.0, max_pending=3)
    async with in_process_call(limits=limits, llm=ScriptedLLM(ttft_s=0.2)) as call:
        for i in range(10):
            await call.type(f"m{i}")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=30)

        assert any(e.code == "chat_queue_full" for e in call.chat.events)
        asked = "\n".join(last_user_text(r.chat_ctx) for r in call.llm.requests).split("\n")
        assert asked[0] == "m0"
        assert asked == sorted(asked, key=lambda m: int(m[1:]))


async def test_a_throttled_turn_holds_at_most_the_batch_bound_and_the_rest_waits_for_the_next() -> None:
    messages = [f"m{i:02d} " + "y" * 20 for i in range(12)]  # 24 characters each
    limits = ChatLimits(burst=1, refill_per_s=4.0, max_batch_messages=4, max_batch_chars=60)
    async with in_process_call(limits=limits, llm=ScriptedLLM(ttft_s=0.05)) as call:
        for text in messages:
            await call.type(text)
        await asyncio.wait_for(call.chat.wait_idle(), timeout=30)

        turns = [last_user_text(r.chat_ctx) for r in call.llm.requests]
        assert "\n".join(turns).split("\n") == messages, "every message answered, in order"
        assert all(len(t) <= 60 for t in turns)
        assert max(len(t.split("\n")) for t in turns) == 2, "two 24-character messages fit in 60, three do not"


def test_a_flood_of_one_incident_is_counted_whole_kept_as_its_first_few_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="webcall.chat_limits")
    incidents = ChatIncidents(ChatLimits(incident_samples=3))
    for _ in range(1000):
        incidents.record("chat_queue_full", pending=50)
    incidents.log_totals()

    assert incidents.counts == {"chat_queue_full": 1000}
    assert [e.code for e in incidents.samples] == ["chat_queue_full"] * 3
    assert [r.getMessage() for r in caplog.records] == ["chat event", "chat events"]
    assert vars(caplog.records[-1])["counts"] == {"chat_queue_full": 1000}


async def test_a_new_burst_after_a_quiet_gap_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="webcall.chat_limits")
    incidents = ChatIncidents(ChatLimits(burst_gap_s=0.05))
    for _ in range(10):
        incidents.record("chat_throttled", messages=20)
    await asyncio.sleep(0.2)
    for _ in range(10):
        incidents.record("chat_throttled", messages=20)

    assert [r.getMessage() for r in caplog.records] == ["chat event", "chat event"]
    assert [vars(r)["count"] for r in caplog.records] == [1, 11]


UNICODE = [
    "مرحبا، متى تفتحون؟",
    "नमस्ते, आप कब खुलते हैं?",
    "你好 👋🏽 営業時間は？",
    "Z̷̢a̴l̸g̶o and e\u0301 combining",
    "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1 family",
]


async def test_any_unicode_reaches_the_llm_as_typed() -> None:
    async with in_process_call() as call:
        for text in UNICODE:
            await call.type(text)
        await asyncio.wait_for(call.chat.wait_idle(), timeout=30)

        assert [last_user_text(r.chat_ctx) for r in call.llm.requests] == UNICODE
        assert call.text.texts == [f"answer to: {t}" for t in UNICODE]


def test_control_characters_are_removed_but_newlines_and_tabs_kept() -> None:
    assert clean_text("a\x00b\x1b[31mc\td\ne\x7f") == "ab[31mc\td\ne"


async def test_an_empty_or_blank_message_is_not_answered_but_counted() -> None:
    async with in_process_call() as call:
        await call.type("   \n ")
        await call.type("\x00\x01")
        await call.type("real")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)

        assert [last_user_text(r.chat_ctx) for r in call.llm.requests] == ["real"]
        assert call.chat.incident_counts.get("chat_message_empty") == 2
