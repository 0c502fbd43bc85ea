"""A call in a real room: the sandbox LiveKit server, RoomIO, and a caller `rtc.Room` that types and reads.

The agent side is an in-process `AgentSession` (scripted LLM, tone TTS) started with RoomIO exactly as the worker
starts it, with `ChatChannel.text_input_options()`; the caller sends `lk.chat` with `send_text` as a browser does
and reads `lk.transcription` and `lk.chat` text streams chunk by chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, APIConnectOptions
from livekit.agents.testing import fake_job_context
from livekit.agents.voice import io, room_io
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.chat import ChatChannel
from agent.config.call_config import CallConfig
from sandbox.server import SandboxServer
from tests.chat.fakes import ScriptedLLM, ToneTTS
from tests.chat.harness import WelcomeAgent

ROOM = "chat-room"


@dataclass(kw_only=True)
class Stream:
    topic: str
    sender: str
    attributes: dict[str, str]
    chunks: list[tuple[float, str]] = field(default_factory=list)
    done: bool = False

    @property
    def text(self) -> str:
        return "".join(c for _, c in self.chunks)


class Reader:
    """Collects every text stream a client receives on the given topics."""

    def __init__(self, client: rtc.Room, topics: tuple[str, ...] = ("lk.transcription", "lk.chat")) -> None:
        self.streams: list[Stream] = []
        self._tasks: set[asyncio.Task[None]] = set()
        for topic in topics:
            client.register_text_stream_handler(topic, self._handler(topic))

    def _handler(self, topic: str) -> Any:
        def on_stream(reader: rtc.TextStreamReader, sender: str) -> None:
            stream = Stream(topic=topic, sender=sender, attributes=dict(reader.info.attributes or {}))
            self.streams.append(stream)
            task = asyncio.create_task(self._read(reader, stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return on_stream

    async def _read(self, reader: rtc.TextStreamReader, stream: Stream) -> None:
        async for chunk in reader:
            stream.chunks.append((time.perf_counter(), chunk))
        stream.done = True

    def texts(self, topic: str) -> list[str]:
        return [s.text for s in self.streams if s.topic == topic and s.done and s.text]


@dataclass(kw_only=True)
class RoomCall:
    session: AgentSession[Any]
    chat: ChatChannel
    llm: ScriptedLLM
    tts: ToneTTS
    agent_room: rtc.Room
    caller: rtc.Room
    reader: Reader


async def join(server: SandboxServer, *, identity: str) -> rtc.Room:
    client = rtc.Room()
    await client.connect(server.url, server.token(room=ROOM, identity=identity))
    return client


@asynccontextmanager
async def room_call(
    server: SandboxServer,
    *,
    config: CallConfig | None = None,
    llm: ScriptedLLM | None = None,
    tts: ToneTTS | None = None,
    welcome: str = "",
    welcome_interruptible: bool = True,
    text_tap: io.TextOutput | None = None,
    replies_on_chat: bool = False,
) -> AsyncIterator[RoomCall]:
    config = config or CallConfig()
    llm = llm or ScriptedLLM()
    tts = tts or ToneTTS()
    agent_room = await join(server, identity="agent")
    caller = await join(server, identity="caller")
    reader = Reader(caller)
    session: AgentSession[Any] = AgentSession(
        llm=llm,
        tts=tts,
        vad=None,
        turn_handling={"turn_detection": "manual"},
        aec_warmup_duration=None,
        conn_options=SessionConnectOptions(tts_conn_options=APIConnectOptions(max_retry=0, timeout=5.0)),
    )
    chat = ChatChannel(session=session, config=config, replies_on_chat=replies_on_chat)
    # `text_tap` sees each chunk of the agent's transcription once RoomIO has written it to the room
    text_output = room_io.TextOutputOptions(next_in_chain=text_tap)
    options = room_io.RoomOptions(
        participant_identity="caller",
        text_input=chat.text_input_options(),
        text_output=text_output,
        close_on_disconnect=False,
    )
    try:
        with fake_job_context(room=agent_room):
            await session.start(
                WelcomeAgent(welcome=welcome, interruptible=welcome_interruptible),
                room=agent_room,
                room_options=options,
                session_host=False,
                record=False,
            )
            await chat.start(agent_room, caller_identity="caller")
            yield RoomCall(
                session=session, chat=chat, llm=llm, tts=tts, agent_room=agent_room, caller=caller, reader=reader
            )
            await chat.aclose()
            await session.aclose()
    finally:
        await caller.disconnect()
        await agent_room.disconnect()
