"""Deepgram's streaming ``/v1/listen`` protocol, decided by energy and transcribed by whisper.

One `ListenSession` per websocket. Audio is linear16 mono at the ``sample_rate`` query parameter; time is audio
time (seconds received), as in Deepgram, so endpointing only advances while the client keeps sending audio.

Speech is a 20 ms frame louder than ``speech_threshold_dbfs``. On the first speech frame the session sends
``SpeechStarted`` (if ``vad_events``); while speech lasts it sends interim ``Results`` (if ``interim_results``)
every ``interim_every`` seconds of audio; after ``max(endpointing, min_endpointing)`` of silence it transcribes the
whole utterance and sends a final ``Results`` with ``speech_final: true`` (``false`` when endpointing is off); and
``utterance_end_ms`` of silence after the last word sends ``UtteranceEnd``. ``keyterm`` values bias whisper towards
those words (its hotwords), as Deepgram's keyterm prompting biases nova-3. ``Finalize`` flushes the utterance
(``from_finalize: true``), ``CloseStream`` flushes, sends ``Metadata`` and closes; ``KeepAlive`` is accepted.
Word timings are spread evenly over the utterance (whisper runs without timestamps).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sandbox.providers import speech

FRAME_SECONDS = 0.02
PREROLL_SECONDS = 0.3
MAX_UTTERANCE_SECONDS = 15.0

Send = Callable[[dict[str, object]], Awaitable[None]]


@dataclass(frozen=True)
class ListenOptions:
    """The query parameters of one ``/v1/listen`` connection that change behaviour."""

    model: str
    language: str
    sample_rate: int
    interim_results: bool
    punctuate: bool
    vad_events: bool
    endpointing_ms: int | None
    utterance_end_ms: int | None
    # Deepgram's keyterm prompting (``keyterm=`` repeated): whisper is given them as hotwords.
    keyterms: tuple[str, ...] = ()

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, keyterms: tuple[str, ...] = ()) -> ListenOptions:
        def flag(name: str, default: bool) -> bool:
            value = query.get(name)
            return default if value is None else value.lower() == "true"

        endpointing = query.get("endpointing", "10")
        utterance_end = query.get("utterance_end_ms")
        return cls(
            model=query.get("model", "nova-3"),
            language=query.get("language", "en"),
            sample_rate=int(query.get("sample_rate", "16000")),
            interim_results=flag("interim_results", False),
            punctuate=flag("punctuate", False) or flag("smart_format", False),
            vad_events=flag("vad_events", False),
            endpointing_ms=None if endpointing.lower() == "false" else int(endpointing),
            utterance_end_ms=int(utterance_end) if utterance_end else None,
            keyterms=keyterms,
        )


@dataclass
class _Job:
    audio: bytes
    start: float
    is_final: bool
    speech_final: bool
    from_finalize: bool = False


class ListenSession:
    """Endpointing state and the ordered transcription queue of one websocket."""

    def __init__(
        self,
        options: ListenOptions,
        *,
        send: Send,
        speech_threshold_dbfs: float = -45.0,
        min_endpointing_ms: int = 300,
        interim_every: float = 1.0,
    ) -> None:
        self.options = options
        self.request_id = str(uuid.uuid4())
        self.results_sent = 0
        self._send = send
        self._threshold = speech_threshold_dbfs
        self._endpoint_s = max(options.endpointing_ms or 0, min_endpointing_ms) / 1000
        self._interim_every = interim_every
        self._frame_bytes = int(options.sample_rate * FRAME_SECONDS) * 2
        self._pending = bytearray()
        self._preroll = bytearray()
        self._utterance = bytearray()
        self._utterance_start = 0.0
        self._in_speech = False
        self._silence = 0.0
        self._since_interim = 0.0
        self._last_word_end: float | None = None
        self._received = 0.0
        self._queued_interims = 0
        self._queued_finals = 0
        self._interim_sent_at: float | None = None
        self._jobs: asyncio.Queue[_Job | dict[str, object] | None] = asyncio.Queue()

    async def run_results(self) -> None:
        """Transcribe queued utterances in order and send their results (ends at ``close()``)."""
        while (job := await self._jobs.get()) is not None:
            if isinstance(job, dict):
                await self._send(job)
                continue
            if job.is_final:
                self._queued_finals -= 1
            else:
                self._queued_interims -= 1
                # stale interims are skipped so finals never lag behind transcription of old audio; the first
                # interim of an utterance is always sent
                stale = self._queued_interims > 0 or self._queued_finals > 0
                if stale and self._interim_sent_at == job.start:
                    continue
                self._interim_sent_at = job.start
            result = await asyncio.to_thread(
                speech.transcriber().transcribe,
                job.audio,
                sample_rate=self.options.sample_rate,
                hotwords=self.options.keyterms,
            )
            await self._send(self._results(job, result))
            self.results_sent += 1

    def push_audio(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= self._frame_bytes:
            frame = bytes(self._pending[: self._frame_bytes])
            del self._pending[: self._frame_bytes]
            self._on_frame(frame)

    def finalize(self, *, from_finalize: bool) -> None:
        """Flush the current utterance as a final result (``Finalize`` always answers, ``CloseStream`` if speaking)."""
        if not from_finalize and not self._in_speech:
            return
        audio = bytes(self._utterance) if self._in_speech else b""
        self._queued_finals += 1
        self._jobs.put_nowait(
            _Job(audio, self._utterance_start, is_final=True, speech_final=False, from_finalize=from_finalize)
        )
        if self._in_speech:
            self._last_word_end = self._received - self._silence
        self._end_utterance()

    def close(self) -> None:
        self._jobs.put_nowait(None)

    def metadata(self) -> dict[str, object]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "",
            "created": "1970-01-01T00:00:00.000Z",
            "duration": round(self._received, 3),
            "channels": 1,
            "models": [self.options.model],
            "model_info": {self.options.model: {"name": self.options.model, "version": "sandbox", "arch": "whisper"}},
        }

    # --- endpointing -----------------------------------------------------------------------------------------
    def _on_frame(self, frame: bytes) -> None:
        self._received += FRAME_SECONDS
        loud = speech.rms_dbfs(frame) > self._threshold
        if not self._in_speech:
            self._preroll += frame
            del self._preroll[: max(0, len(self._preroll) - int(PREROLL_SECONDS / FRAME_SECONDS) * len(frame))]
            if loud:
                self._start_utterance()
            else:
                self._check_utterance_end()
            return
        self._utterance += frame
        self._silence = 0.0 if loud else self._silence + FRAME_SECONDS
        self._since_interim += FRAME_SECONDS
        length = len(self._utterance) / 2 / self.options.sample_rate
        if self._silence >= self._endpoint_s:
            speech_final = self.options.endpointing_ms is not None
            self._queue_final(speech_final=speech_final)
        elif length >= MAX_UTTERANCE_SECONDS:
            self._queue_final(speech_final=False)
            self._start_utterance()
        elif self.options.interim_results and self._since_interim >= self._interim_every:
            self._since_interim = 0.0
            self._queued_interims += 1
            self._jobs.put_nowait(
                _Job(bytes(self._utterance), self._utterance_start, is_final=False, speech_final=False)
            )

    def _start_utterance(self) -> None:
        self._in_speech = True
        self._utterance = bytearray(self._preroll)
        self._preroll.clear()
        self._utterance_start = max(0.0, self._received - len(self._utterance) / 2 / self.options.sample_rate)
        self._silence = 0.0
        self._since_interim = 0.0
        self._last_word_end = None
        if self.options.vad_events:
            event: dict[str, object] = {"type": "SpeechStarted", "channel": [0], "timestamp": self._utterance_start}
            self._jobs_send(event)

    def _queue_final(self, *, speech_final: bool) -> None:
        self._queued_finals += 1
        self._jobs.put_nowait(
            _Job(bytes(self._utterance), self._utterance_start, is_final=True, speech_final=speech_final)
        )
        self._last_word_end = self._received - self._silence
        self._end_utterance()

    def _end_utterance(self) -> None:
        self._in_speech = False
        self._utterance = bytearray()
        self._silence = 0.0

    def _check_utterance_end(self) -> None:
        limit = self.options.utterance_end_ms
        if limit is None or self._last_word_end is None:
            return
        if self._received - self._last_word_end >= limit / 1000:
            event: dict[str, object] = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self._last_word_end}
            self._last_word_end = None
            self._jobs_send(event)

    def _jobs_send(self, event: dict[str, object]) -> None:
        # events share the results queue so they reach the client in audio order
        self._jobs.put_nowait(event)

    # --- wire format -----------------------------------------------------------------------------------------
    def _results(self, job: _Job, result: speech.Transcript) -> dict[str, object]:
        duration = len(job.audio) / 2 / self.options.sample_rate
        alt = alternative(
            result.text,
            start=job.start,
            duration=duration,
            punctuate=self.options.punctuate,
            language=self.options.language,
        )
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(job.start, 3),
            "is_final": job.is_final,
            "speech_final": job.speech_final,
            "from_finalize": job.from_finalize,
            "channel": {"alternatives": [alt]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.options.model, "version": "sandbox", "arch": "whisper"},
                "model_uuid": self.request_id,
            },
        }


def alternative(
    text: str,
    *,
    start: float,
    duration: float,
    punctuate: bool,
    language: str,
) -> dict[str, object]:
    """One Deepgram ``alternatives`` entry for a whisper transcript, words spread evenly over ``duration``."""
    tokens = text.split()
    words: list[dict[str, object]] = []
    step = duration / max(1, len(tokens))
    for index, token in enumerate(tokens):
        plain = "".join(speech.words_of(token))
        if not plain:
            continue
        word: dict[str, object] = {
            "word": plain,
            "start": round(start + index * step, 3),
            "end": round(start + (index + 1) * step, 3),
            "confidence": 0.9,
        }
        if punctuate:
            word["punctuated_word"] = token
        words.append(word)
    transcript = text if punctuate else " ".join(str(word["word"]) for word in words)
    result: dict[str, object] = {"transcript": transcript, "confidence": 0.9 if words else 0.0, "words": words}
    if language == "multi":
        result["languages"] = ["en"]
    return result
