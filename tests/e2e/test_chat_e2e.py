"""Typed chat end to end: the worker process, the sandbox server, the fake OpenAI server and a caller `rtc.Room`.

- The caller types while a non-interruptible welcome plays and gets the answer after it, in text.
- A typed question about a fact that is only in a knowledge-base PDF gets that fact in the reply: the scripted fake
  LLM calls `search_knowledge`, and the request it receives next carries the tool result with the passage's source.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping

import pytest
from livekit import api

from sandbox.providers.replies import Reply, ToolCall, message_text
from tests.e2e.conftest import Stack
from tests.e2e.stack import Caller, dispatch, room_name, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

WELCOME = (
    "Welcome to Harbor Street Clinic. This greeting always plays to the end, so please hold on for a moment while "
    "I finish it."
)
KNOWLEDGE_CALL = {
    "dialect": "native",
    "welcome": {"text": WELCOME, "interruptible": False},
    "knowledge_base_ids": ["clinic"],
}


def chat_requests(stack: Stack, since: int) -> list[Mapping[str, object]]:
    found = []
    for request in stack.openai.requests[since:]:
        if request.path == "/v1/chat/completions" and isinstance(request.json, Mapping):
            found.append(request.json)
    return found


def answer_from_tool_result(body: Mapping[str, object]) -> Reply:
    """Reply with the visitor code if, and only if, the tool result in the request contains one."""
    messages = body.get("messages")
    tool_texts = (
        [message_text(m) for m in messages if isinstance(m, Mapping) and m.get("role") == "tool"]
        if isinstance(messages, list)
        else []
    )
    found = re.search(r"PELICAN-\d+", " ".join(tool_texts))
    return Reply(text=f"The garage visitor code is {found.group(0)}." if found else "I don't know.")


async def test_a_message_typed_during_a_non_interruptible_welcome_is_answered_after_it(stack: Stack) -> None:
    room = room_name("chat")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room)
    try:
        first_request = len(stack.openai.requests)
        dispatched_at = time.monotonic()
        await dispatch(stack.lk, room=room, metadata=json.dumps({**KNOWLEDGE_CALL, "knowledge_base_ids": []}))
        await until(lambda: caller.first_loud_at(dispatched_at), within_s=30, what="welcome audio at the caller")
        typed_at = time.monotonic()
        await caller.type("Are you open on Saturdays?")

        await until(
            lambda: any("You said: Are you open on Saturdays?" in t for t in caller.transcriptions),
            within_s=40,
            what="the answer on lk.transcription",
        )
        assert len(chat_requests(stack, first_request)) == 1
        welcome_index = next(i for i, t in enumerate(caller.transcriptions) if "Harbor Street" in t)
        answer_index = next(i for i, t in enumerate(caller.transcriptions) if "You said:" in t)
        assert welcome_index < answer_index
        # the welcome played to its end: agent audio kept arriving after the message was typed
        assert caller.loud_since(typed_at) > 1.0
        # answered in text: no speech was synthesized for the reply
        speech = [r for r in stack.openai.requests[first_request:] if r.path == "/v1/audio/speech"]
        assert all("You said" not in (r.text or "") for r in speech)
    finally:
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_a_typed_question_about_a_fact_only_in_a_knowledge_base_pdf_is_answered_with_it(stack: Stack) -> None:
    room = room_name("kb")
    await stack.lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(stack.server, room=room)
    stack.openai.script(Reply(tool_calls=(ToolCall("search_knowledge", {"query": "garage barrier visitor code"}),)))
    stack.openai.replies.policy = answer_from_tool_result
    try:
        first_request = len(stack.openai.requests)
        await dispatch(stack.lk, room=room, metadata=json.dumps(KNOWLEDGE_CALL))
        await until(lambda: caller.transcriptions, within_s=30, what="the welcome's transcription")
        await caller.type("What is the code for the parking garage?")

        await until(
            lambda: any("PELICAN-7731" in t for t in caller.transcriptions),
            within_s=40,
            what="the fact from the PDF on lk.transcription",
        )
        first, second = chat_requests(stack, first_request)[:2]
        tools = first.get("tools")
        assert isinstance(tools, list)
        assert [t["function"]["name"] for t in tools] == ["search_knowledge"]
        messages = second["messages"]
        assert isinstance(messages, list)
        tool_results = [m for m in messages if m.get("role") == "tool"]
        assert len(tool_results) == 1
        assert "[clinic/parking-and-access.pdf#0]" in message_text(tool_results[0])
        assert "PELICAN-7731" in message_text(tool_results[0])
    finally:
        stack.openai.reset()
        await caller.leave()
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
