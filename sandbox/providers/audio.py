"""Audio container encoding and decoding for the fake providers (PyAV, which aiortc already brings).

Owns turning synthesized PCM into the formats OpenAI's ``/v1/audio/speech`` offers (``pcm``, ``wav``, ``mp3``,
``opus``, ``aac``, ``flac``) incrementally, so a response can start before the whole utterance is encoded, and
decoding any uploaded audio file back to PCM for transcription.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any, Final

import av
import numpy as np

from sandbox.providers import speech
from sandbox.providers.speech import SpeechEngineError, resample, wav_to_pcm

# format -> (codec, container, content type)
_FORMATS: Final[dict[str, tuple[str, str, str]]] = {
    "mp3": ("libmp3lame", "mp3", "audio/mpeg"),
    "opus": ("libopus", "ogg", "audio/ogg"),
    "aac": ("aac", "adts", "audio/aac"),
    "flac": ("flac", "flac", "audio/flac"),
    "wav": ("pcm_s16le", "wav", "audio/wav"),
}
SUPPORTED_FORMATS: Final[frozenset[str]] = frozenset({"pcm", *_FORMATS})


def content_type(fmt: str) -> str:
    """The Content-Type OpenAI answers with for a ``response_format``."""
    return "audio/pcm" if fmt == "pcm" else _FORMATS[fmt][2]


class _Sink:
    """A write-only file for PyAV: non-seekable, so muxers never rewrite bytes that were already sent."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


class StreamEncoder:
    """Encodes 16-bit mono PCM pushed piece by piece; each call returns the container bytes ready so far."""

    def __init__(self, fmt: str, *, sample_rate: int) -> None:
        if fmt not in SUPPORTED_FORMATS:
            raise ValueError("unsupported audio format")
        self.format = fmt
        self.sample_rate = sample_rate
        self._container: Any = None
        self._stream: Any = None
        self._resampler: Any = None
        if fmt == "pcm":
            return
        codec, container, _ = _FORMATS[fmt]
        self._sink = _Sink()
        self._container = av.open(self._sink, mode="w", format=container)
        codec_rate = 48000 if codec == "libopus" else sample_rate
        self._stream = self._container.add_stream(codec, rate=codec_rate)
        self._stream.layout = "mono"
        self._resampler = av.AudioResampler(format=self._stream.format.name, layout="mono", rate=codec_rate)

    def push(self, pcm: bytes) -> bytes:
        if self._container is None:
            return pcm
        if pcm:
            frame = av.AudioFrame.from_ndarray(
                np.frombuffer(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = self.sample_rate
            for converted in self._resampler.resample(frame):
                for packet in self._stream.encode(converted):
                    self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        if self._container is None:
            return b""
        for converted in self._resampler.resample(None):
            for packet in self._stream.encode(converted):
                self._container.mux(packet)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._sink.take()


def decode_audio(data: bytes, *, sample_rate: int) -> bytes:
    """Decode an audio file of any common container to 16-bit mono PCM at ``sample_rate``."""
    if data[:4] == b"RIFF":
        pcm, rate = wav_to_pcm(data)
        return resample(pcm, src_rate=rate, dst_rate=sample_rate)
    try:
        container: Any = av.open(io.BytesIO(data), mode="r")
    except av.error.FFmpegError as exc:
        raise SpeechEngineError("undecodable audio") from exc
    resampler: Any = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    out = bytearray()
    with container:
        for frame in container.decode(audio=0):
            for converted in resampler.resample(frame):
                out += converted.to_ndarray().tobytes()
        for converted in resampler.resample(None):
            out += converted.to_ndarray().tobytes()
    return bytes(out)


async def transcribe_file(data: bytes) -> speech.Transcript:
    """What whisper hears in an uploaded audio file (any container), decoded and transcribed off the event loop.

    Raises `SpeechEngineError` when the file cannot be decoded.
    """
    pcm = await asyncio.to_thread(decode_audio, data, sample_rate=speech.WHISPER_SAMPLE_RATE)
    return await asyncio.to_thread(speech.transcriber().transcribe, pcm, sample_rate=speech.WHISPER_SAMPLE_RATE)
