"""A typed question answered through the knowledge tool stays a text turn from the tool call to the answer."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

from livekit.agents import llm

from agent import knowledge
from agent.config.call_config import CallConfig
from agent.settings import Settings
from tests.chat.fakes import Reply, ScriptedLLM, ToolCall
from tests.chat.harness import in_process_call

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "knowledge"


def tool_then_answer(ctx: llm.ChatContext) -> Reply:
    outputs = [item.output for item in ctx.items if isinstance(item, llm.FunctionCallOutput)]
    if not outputs:
        return ToolCall(name="search_knowledge", arguments={"query": "garage barrier visitor code"})
    found = re.search(r"PELICAN-\d+", " ".join(outputs))
    return f"The visitor code is {found.group(0)}." if found else "I don't know."


async def test_a_knowledge_answer_to_a_typed_question_is_given_in_text_without_speech(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES, tmp_path / "knowledge", ignore=shutil.ignore_patterns(".index"))
    settings = Settings(WEBCALL_CONFIG_DIR=str(tmp_path))
    loaded = knowledge.load_all(settings)
    base = await knowledge.knowledge_for(CallConfig(knowledge_base_ids=("clinic",)), loaded=loaded, settings=settings)
    tools = knowledge.tools_for(base)
    llm_ = ScriptedLLM(policy=tool_then_answer)
    async with in_process_call(llm=llm_) as call:
        await call.session.current_agent.update_tools(list(tools))
        await call.type("what's the garage code?")
        await asyncio.wait_for(call.chat.wait_idle(), timeout=20)
        await asyncio.sleep(0.3)

        assert call.text.texts == ["The visitor code is PELICAN-7731."]
        assert call.tts.texts == []
        assert len(llm_.requests) == 2
