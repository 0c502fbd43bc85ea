"""Small hand-written stand-ins for an in-process `AgentSession`: a scripted LLM, a tone TTS, a playout sink.

They implement the framework's own abstract classes (`llm.LLM`, `tts.TTS`, `io.AudioOutput`, `io.TextOutput`), so
the session's real scheduling, transcript synchronizer and tool execution run unchanged around them.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, APIStatusError, llm, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.voice import io


@dataclass(kw_only=True)
class ToolCall:
    name: str
    arguments: dict[str, object]


Reply = str | ToolCall
Policy = Callable[[llm.ChatContext], Reply]


def last_user_text(ctx: llm.ChatContext) -> str:
    for item in reversed(ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""


def echo_policy(ctx: llm.ChatContext) -> Reply:
    return "answer to: " + last_user_text(ctx)


@dataclass(kw_only=True)
class LlmRequest:
    chat_ctx: llm.ChatContext
    tools: list[str]
    started_at: float
    first_token_at: float | None = None
    chunk_times: list[float] = field(default_factory=list)


class ScriptedLLM(llm.LLM[Any]):
    """Answers each request with `policy(chat_ctx)`, streamed word by word every `chunk_delay_s`."""

    def __init__(self, *, policy: Policy = echo_policy, ttft_s: float = 0.0, chunk_delay_s: float = 0.0) -> None:
        super().__init__()
        self.policy = policy
        self.ttft_s = ttft_s
        self.chunk_delay_s = chunk_delay_s
        self.requests: list[LlmRequest] = []

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        names = [t.id for t in tools or []]
        request = LlmRequest(chat_ctx=chat_ctx.copy(), tools=names, started_at=time.perf_counter())
        self.requests.append(request)
        return _ScriptedStream(self, request=request, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _ScriptedStream(llm.LLMStream):
    def __init__(
        self,
        owner: ScriptedLLM,
        *,
        request: LlmRequest,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._owner = owner
        self._request = request

    async def _run(self) -> None:
        reply = self._owner.policy(self._request.chat_ctx)
        await asyncio.sleep(self._owner.ttft_s)
        request_id = utils.shortuuid("req_")
        if isinstance(reply, ToolCall):
            call = llm.FunctionToolCall(
                name=reply.name, arguments=json.dumps(reply.arguments), call_id=utils.shortuuid("call_")
            )
            self._request.first_token_at = time.perf_counter()
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", tool_calls=[call]))
            )
            return
        for i, word in enumerate(reply.split(" ")):
            if i and self._owner.chunk_delay_s:
                await asyncio.sleep(self._owner.chunk_delay_s)
            now = time.perf_counter()
            if self._request.first_token_at is None:
                self._request.first_token_at = now
            self._request.chunk_times.append(now)
            chunk = word if i == 0 else " " + word
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=chunk))
            )


class ToneTTS(tts.TTS[Any]):
    """A 220 Hz tone, `ms_per_char` per character (0.1 s at least), after `first_byte_s`; `failing=True` answers
    each with 500. Records the texts and the voice and speed it was set to (`update_options`, as a mid-call change
    sets them)."""

    def __init__(
        self,
        *,
        ms_per_char: float = 20.0,
        failing: bool = False,
        first_byte_s: float = 0.0,
        voice: str = "tone",
        speed: float = 1.0,
    ) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000, num_channels=1)
        self.ms_per_char = ms_per_char
        self.first_byte_s = first_byte_s
        self.failing = failing
        self.voice = voice
        self.speed = speed
        self.texts: list[str] = []

    def update_options(self, *, voice: str, speed: float) -> None:
        self.voice, self.speed = voice, speed

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        self.texts.append(text)
        return _ToneStream(tts=self, input_text=text, conn_options=conn_options)


class _ToneStream(tts.ChunkedStream):
    def __init__(self, *, tts: ToneTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tone = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        await asyncio.sleep(self._tone.first_byte_s)
        if self._tone.failing:
            raise APIStatusError("tts unavailable", status_code=500, retryable=False)
        output_emitter.initialize(
            request_id=utils.shortuuid(), sample_rate=16000, num_channels=1, mime_type="audio/pcm"
        )
        samples = max(1600, int(16000 * len(self._input_text) * self._tone.ms_per_char / 1000))
        output_emitter.push(tone_pcm(samples))
        output_emitter.flush()


def tone_pcm(samples: int, *, rate: int = 16000) -> bytes:
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * n / rate))) for n in range(samples))


@dataclass(kw_only=True)
class Played:
    started_at: float
    duration_s: float
    interrupted: bool


class PlayoutAudioOutput(io.AudioOutput):
    """Plays captured audio against the clock (`speed` times real time) and reports playback as a room track does."""

    def __init__(self, *, speed: float = 1.0) -> None:
        super().__init__(label="PlayoutAudioOutput", capabilities=io.AudioOutputCapabilities(pause=False))
        self.speed = speed
        self.played: list[Played] = []
        self._segment_started: float | None = None
        self._segment_duration = 0.0
        self._finish_task: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._segment_started is None:
            self._segment_started = time.perf_counter()
            self.on_playback_started(created_at=time.time())
        self._segment_duration += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._segment_started is None:
            return
        started, duration = self._segment_started, self._segment_duration
        self._segment_started, self._segment_duration = None, 0.0
        self._finish_task = asyncio.create_task(self._finish(started, duration))

    async def _finish(self, started: float, duration: float) -> None:
        remaining = duration / self.speed - (time.perf_counter() - started)
        await asyncio.sleep(max(0.0, remaining))
        self.played.append(Played(started_at=started, duration_s=duration, interrupted=False))
        self.on_playback_finished(playback_position=duration, interrupted=False)

    def clear_buffer(self) -> None:
        if self._finish_task is not None and not self._finish_task.done():
            self._finish_task.cancel()
        if self._segment_started is not None or (self._finish_task is not None and self._finish_task.cancelled()):
            started = self._segment_started or time.perf_counter()
            self._segment_started, self._segment_duration = None, 0.0
            self.played.append(Played(started_at=started, duration_s=0.0, interrupted=True))
            self.on_playback_finished(playback_position=0.0, interrupted=True)


@dataclass(kw_only=True)
class TextSegment:
    chunks: list[tuple[float, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c for _, c in self.chunks)


class RecordingTextOutput(io.TextOutput):
    """Records the agent's transcription as the room would receive it: one segment per flush, timed per chunk."""

    def __init__(self) -> None:
        super().__init__(label="RecordingTextOutput", next_in_chain=None)
        self.segments: list[TextSegment] = []
        self._current: TextSegment | None = None

    async def capture_text(self, text: str) -> None:
        if self._current is None:
            self._current = TextSegment()
            self.segments.append(self._current)
        self._current.chunks.append((time.perf_counter(), text))

    def flush(self) -> None:
        self._current = None

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.segments]
