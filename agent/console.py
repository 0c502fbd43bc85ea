"""``python -m agent console``: a text conversation with the configured agent, with no LiveKit server.

It resolves a call from ``--metadata`` (any dialect) exactly as the worker would, builds the LLM from the same
settings (``OPENAI_BASE_URL`` may point at a local OpenAI-compatible server), prints the welcome, then answers each
line read from stdin until EOF. Speech providers are not used: this is for trying prompts and configs quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from livekit.agents import AgentSession
from livekit.agents.voice.run_result import ChatMessageEvent, RunResult

from agent import pipeline
from agent.cli import Subcommand
from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources
from agent.conversation import WebcallAgent
from agent.deployment import resolve_for_deployment
from agent.errors import PipelineError
from agent.pipeline import LlmEngine
from agent.settings import Settings, get_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metadata", default=None, help="job metadata JSON for the call (any dialect)")


def run(args: argparse.Namespace) -> int:
    return run_console(settings=get_settings(), job_metadata=args.metadata)


def run_console(*, settings: Settings, job_metadata: str | None) -> int:
    shared = pipeline.load_shared(settings)
    config = resolve_for_deployment(CallSources(job_metadata=job_metadata), settings=settings, shared=shared)
    try:
        model = pipeline.build_llm(config, settings=settings, shared=shared)
    except PipelineError as error:
        print(
            f"webcall-agent: cannot build the LLM ({error.code}); set OPENAI_API_KEY or OPENAI_BASE_URL",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(converse(config, model=model, lines=sys.stdin, out=sys.stdout))


async def converse(config: CallConfig, *, model: LlmEngine, lines: TextIO, out: TextIO) -> int:
    """Print the welcome, then one reply per input line. Returns the exit code."""
    session: AgentSession[Any]
    async with AgentSession(llm=model) as session:
        await session.start(WebcallAgent(config=config))
        if config.welcome.mode == "say" and config.welcome.text:
            _print(out, "agent", config.welcome.text)
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, lines.readline)):
            text = line.strip()
            if not text:
                continue
            result: RunResult[None] = await session.run(user_input=text)
            for event in result.events:
                if isinstance(event, ChatMessageEvent) and event.item.role == "assistant":
                    _print(out, "agent", event.item.text_content or "")
    await model.aclose()
    return 0


def _print(out: TextIO, who: str, text: str) -> None:
    out.write(f"{who}> {text}\n")
    out.flush()


CONSOLE = Subcommand(add_arguments=add_arguments, run=run)
