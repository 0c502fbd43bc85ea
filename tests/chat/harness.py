"""An in-process call: a real `AgentSession` with the framework's transcript synchronizer over hand-written I/O.

The outputs are wired exactly as RoomIO wires them in a room (audio sink and transcription sink behind one
`TranscriptSynchronizer`), so what a test sees on `RecordingTextOutput` is what the caller would see on
`lk.transcription`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from livekit.agents import Agent, AgentSession, APIConnectOptions
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import AgentStateChangedEvent
from livekit.agents.voice.room_io import TextInputEvent
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from agent.chat import ChatChannel
from agent.chat_limits import ChatLimits
from agent.config.call_config import CallConfig
from tests.chat.fakes import PlayoutAudioOutput, RecordingTextOutput, ScriptedLLM, ToneTTS


class WelcomeAgent(Agent):
    def __init__(self, *, welcome: str, interruptible: bool) -> None:
        super().__init__(instructions="You are a helpful assistant.")
        self._welcome = welcome
        self._interruptible = interruptible

    async def on_enter(self) -> None:
        if self._welcome:
            self.session.say(self._welcome, allow_interruptions=self._interruptible)


@dataclass(kw_only=True)
class Call:
    session: AgentSession[Any]
    chat: ChatChannel
    llm: ScriptedLLM
    tts: ToneTTS
    audio: PlayoutAudioOutput
    text: RecordingTextOutput

    async def until_speaking(self) -> None:
        """Wait until the agent's audio is playing (a fixed sleep is not enough on a loaded machine)."""
        speaking = asyncio.Event()

        def on_state(ev: AgentStateChangedEvent) -> None:
            if ev.new_state == "speaking":
                speaking.set()

        self.session.on("agent_state_changed", on_state)
        try:
            if self.session.agent_state != "speaking":
                await asyncio.wait_for(speaking.wait(), timeout=20)
        finally:
            self.session.off("agent_state_changed", on_state)

    async def type(self, text: str, *, speaker: str | None = None) -> None:
        """Deliver a typed message exactly as RoomIO does: through the registered text input callback."""
        event = TextInputEvent(text=text)
        if speaker is not None:
            self.chat.submit(text, speaker=speaker)
            return
        await self.chat.text_input_cb(self.session, event)


@asynccontextmanager
async def in_process_call(
    *,
    config: CallConfig | None = None,
    llm: ScriptedLLM | None = None,
    tts: ToneTTS | None = None,
    welcome: str = "",
    welcome_interruptible: bool = True,
    playout_speed: float = 4.0,
    limits: ChatLimits | None = None,
    should_answer: Callable[[str, str], bool] | None = None,
) -> AsyncIterator[Call]:
    config = config or CallConfig()
    llm = llm or ScriptedLLM()
    tts = tts or ToneTTS()
    session: AgentSession[Any] = AgentSession(
        llm=llm,
        tts=tts,
        vad=None,
        turn_handling={"turn_detection": "manual"},
        aec_warmup_duration=None,
        conn_options=SessionConnectOptions(tts_conn_options=APIConnectOptions(max_retry=0, timeout=5.0)),
    )
    audio = PlayoutAudioOutput(speed=playout_speed)
    text = RecordingTextOutput()
    sync = TranscriptSynchronizer(next_in_chain_audio=audio, next_in_chain_text=text)
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    chat = ChatChannel(session=session, config=config, limits=limits, should_answer=should_answer)
    await session.start(WelcomeAgent(welcome=welcome, interruptible=welcome_interruptible))
    await chat.start()
    try:
        yield Call(session=session, chat=chat, llm=llm, tts=tts, audio=audio, text=text)
    finally:
        await chat.aclose()
        await session.aclose()
        await sync.aclose()
