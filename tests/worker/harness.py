"""A real `AgentSession` wired to the worker's own session options and hand-written I/O (no room, no server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from livekit.agents import NOT_GIVEN, AgentSession, vad
from livekit.agents.testing import fake_job_context

from agent.config.call_config import CallConfig
from agent.conversation import WebcallAgent, aec_warmup, turn_handling
from tests.worker.fakes import ClockedAudioOutput, QueueAudioInput, ScriptedLLM, ScriptedSTT, ToneTTS


@dataclass(kw_only=True)
class Call:
    session: AgentSession[Any]
    agent: WebcallAgent
    llm: ScriptedLLM
    tts: ToneTTS
    stt: ScriptedSTT
    audio_in: QueueAudioInput
    audio_out: ClockedAudioOutput


@asynccontextmanager
async def in_process_call(
    config: CallConfig,
    *,
    vad_model: vad.VAD | None = None,
    llm: ScriptedLLM | None = None,
    stt: ScriptedSTT | None = None,
    playout_speed: float = 4.0,
) -> AsyncIterator[Call]:
    """The session exactly as `agent.call.make_session` configures it, with fakes for the providers."""
    llm = llm or ScriptedLLM()
    tts = ToneTTS(ms_per_char=10.0, voice=config.tts.voice, speed=config.tts.speed)
    stt = stt or ScriptedSTT([])
    session: AgentSession[Any] = AgentSession(
        stt=stt if vad_model is not None else NOT_GIVEN,
        llm=llm,
        tts=tts,
        vad=vad_model,
        turn_handling=turn_handling(config) if vad_model is not None else {"turn_detection": "manual"},
        aec_warmup_duration=aec_warmup(config),
        user_away_timeout=config.limits.user_silence_timeout_s,
    )
    audio_in = QueueAudioInput()
    audio_out = ClockedAudioOutput(speed=playout_speed)
    session.input.audio = audio_in
    session.output.audio = audio_out
    agent = WebcallAgent(config=config)
    with fake_job_context():
        await session.start(agent, record=False)
        try:
            yield Call(session=session, agent=agent, llm=llm, tts=tts, stt=stt, audio_in=audio_in, audio_out=audio_out)
        finally:
            await session.aclose()
