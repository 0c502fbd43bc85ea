"""Hand-written stand-ins for an in-process call: a scripted LLM and a tone TTS (`tests.chat.fakes`), a clocked
audio sink, a WAV source.

They subclass the framework's own abstract classes, so the session's scheduling, turn handling and transcript
synchronizer run unchanged around them. Speech input is real speech (espeak-ng), because Silero does not reliably
detect a synthetic tone as speech.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, llm, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.voice import io

from tests.chat.fakes import ScriptedLLM as ScriptedLLM
from tests.chat.fakes import ToneTTS as ToneTTS
from tests.chat.fakes import last_user_text as last_user_text


def instructions_of(ctx: llm.ChatContext) -> str:
    """The system/developer text the LLM was given, joined."""
    return "\n".join(
        item.text_content or ""
        for item in ctx.items
        if isinstance(item, llm.ChatMessage) and item.role in ("system", "developer")
    )


@dataclass(kw_only=True)
class Playout:
    text_started: float
    duration_s: float = 0.0
    interrupted: bool = False


class ClockedAudioOutput(io.AudioOutput):
    """Plays captured audio against the clock (`speed` x real time) and reports playback as a room track does."""

    def __init__(self, *, speed: float = 4.0) -> None:
        super().__init__(label="ClockedAudioOutput", capabilities=io.AudioOutputCapabilities(pause=False))
        self.speed = speed
        self.segments: list[Playout] = []
        self.frames = 0
        self._current: Playout | None = None
        self._finish: asyncio.Task[None] | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames += 1
        if self._current is None:
            self._current = Playout(text_started=time.perf_counter())
            self.on_playback_started(created_at=time.time())
        self._current.duration_s += frame.duration

    def flush(self) -> None:
        super().flush()
        current, self._current = self._current, None
        if current is not None:
            self.segments.append(current)
            self._finish = asyncio.create_task(self._finish_after(current))

    async def _finish_after(self, segment: Playout) -> None:
        await asyncio.sleep(max(0.0, segment.duration_s / self.speed - (time.perf_counter() - segment.text_started)))
        self.on_playback_finished(playback_position=segment.duration_s, interrupted=False)

    def clear_buffer(self) -> None:
        if self._finish is not None and not self._finish.done():
            self._finish.cancel()
            self.segments[-1].interrupted = True
            self.on_playback_finished(playback_position=0.0, interrupted=True)
        elif self._current is not None:
            self._current.interrupted = True
            self.segments.append(self._current)
            self._current = None
            self.on_playback_finished(playback_position=0.0, interrupted=True)


@dataclass(kw_only=True)
class QueueAudioInput(io.AudioInput):
    """Audio the test pushes (speech WAVs, silence), delivered in 20 ms frames at real-time pace."""

    rate: int = 16000
    _queue: asyncio.Queue[rtc.AudioFrame] = field(default_factory=asyncio.Queue)

    def __post_init__(self) -> None:
        super().__init__(label="QueueAudioInput")

    def push_pcm(self, pcm: bytes) -> None:
        step = self.rate // 50 * 2
        for start in range(0, len(pcm), step):
            chunk = pcm[start : start + step].ljust(step, b"\0")
            self._queue.put_nowait(rtc.AudioFrame(chunk, self.rate, 1, step // 2))

    def push_silence(self, seconds: float) -> None:
        self.push_pcm(b"\0" * int(self.rate * seconds) * 2)

    async def __anext__(self) -> rtc.AudioFrame:
        try:
            frame = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            frame = rtc.AudioFrame(b"\0" * (self.rate // 50 * 2), self.rate, 1, self.rate // 50)
        await asyncio.sleep(0.02)
        return frame


def espeak_pcm(text: str, *, workdir: Path, rate: int = 16000) -> bytes:
    """Real speech for `text`: espeak-ng to WAV, resampled by sox to mono 16-bit `rate`."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    assert espeak, "espeak-ng must be installed (apt-get install espeak-ng)"
    assert sox, "sox must be installed (apt-get install sox)"
    raw, out = workdir / "speech_raw.wav", workdir / "speech.wav"
    subprocess.run([espeak, "-w", str(raw), text], check=True)
    subprocess.run([sox, str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as wav:
        pcm: bytes = wav.readframes(wav.getnframes())
    return pcm


class ScriptedSTT(stt.STT[Any]):
    """Non-streaming STT that 'hears' the next scripted sentence for each VAD-segmented utterance."""

    def __init__(self, sentences: list[str]) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self.sentences = list(sentences)
        self.heard_seconds: list[float] = []

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        self.heard_seconds.append(frame.duration)
        text = self.sentences.pop(0) if self.sentences else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode("en"), text=text)],
        )
