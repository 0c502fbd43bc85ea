"""A TTS fallback chain that finishes a sentence the failing TTS had started.

The framework's ``tts.FallbackAdapter`` gives up on the rest of an answer once any of its audio was pushed ("already
synthesized of audio, ignoring fallback"): a TTS stream cut mid-reply leaves the caller with the first words of the
answer and silence after them, with no notice, although a fallback TTS is there (RELIABILITY.md, "Provider faults").

`SentenceFallbackTTS` keeps the adapter's members, order, availability, recovery probes and events, and changes two
things:
- It is **not streaming**: the framework's ``tts_node`` then puts it behind a ``StreamAdapter`` with its sentence
  tokenizer, so each request to the chain is one sentence. A streaming member (Deepgram's websocket) is asked through
  its own ``synthesize``.
- A member that fails **after** some of a sentence's audio was pushed does not end the request: the next member speaks
  that sentence again, from its start, in its own voice, as a person cut off mid-sentence starts it again. Only the
  failed sentence is repeated; the answer's later sentences go to the first member still available. When every
  member fails the request raises ``APIConnectionError`` whether or not audio was pushed, so the call learns that the
  voice is gone (`agent.chat` degrades it to text, with a notice) instead of going quiet.

Each member's own failure still reaches its ``error`` event (`agent.provider_faults` records it as an incident), and
the adapter's ``tts_availability_changed`` is emitted as the framework's adapter does.

Private names: a subclass of the adapter and of its chunked stream, it reads ``_tts_instances`` and ``_status`` and
calls ``_try_synthesize`` and ``_try_recovery``; the rest of the framework's private use is in `agent.framework`.
All four are pinned to livekit-agents 1.8.9 by ``tests/worker/test_framework.py``.
"""

from __future__ import annotations

from typing import Any

from livekit import rtc
from livekit.agents import APIConnectionError, tts, utils
from livekit.agents.tts.fallback_adapter import DEFAULT_FALLBACK_API_CONNECT_OPTIONS, AvailabilityChangedEvent
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, APIConnectOptions

from agent.log import get_logger

logger = get_logger(__name__)


class SentenceFallbackTTS(tts.FallbackAdapter):
    """``tts.FallbackAdapter`` that is asked one sentence at a time and has the next member finish a cut sentence."""

    def __init__(self, members: list[tts.TTS[Any]], **options: Any) -> None:
        super().__init__(members, **options)
        self._capabilities = tts.TTSCapabilities(
            streaming=False, aligned_transcript=self._capabilities.aligned_transcript
        )

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_FALLBACK_API_CONNECT_OPTIONS
    ) -> tts.FallbackChunkedStream:
        return _SentenceStream(tts=self, input_text=text, conn_options=conn_options)


class _SentenceStream(tts.FallbackChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        adapter = self._fallback_adapter
        all_failed = not any(status.available for status in adapter._status)
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=adapter.sample_rate,
            num_channels=adapter.num_channels,
            mime_type="audio/pcm",
        )
        for position, member in enumerate(adapter._tts_instances):
            status = adapter._status[position]
            if status.available or all_failed:
                pushed_before = output_emitter.pushed_duration()
                try:
                    resampler = (
                        rtc.AudioResampler(input_rate=member.sample_rate, output_rate=adapter.sample_rate)
                        if status.needs_resampling
                        else None
                    )
                    async for audio in self._try_synthesize(tts=member):
                        if timed := audio.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT):
                            output_emitter.push_timed_transcript(timed)
                        for frame in resampler.push(audio.frame) if resampler else (audio.frame,):
                            output_emitter.push_frame(frame)
                    for frame in resampler.flush() if resampler else ():
                        output_emitter.push_frame(frame)
                    return
                except Exception:  # the member logged it and emitted its error event
                    if status.available:
                        status.available = False
                        adapter.emit("tts_availability_changed", AvailabilityChangedEvent(tts=member, available=False))
                    if output_emitter.pushed_duration() > pushed_before:
                        logger.warning(
                            "tts failed mid-sentence, the next tts speaks the sentence again",
                            extra={"position": position, "pushed_s": round(output_emitter.pushed_duration(), 3)},
                        )
            self._try_recovery(member)
        raise APIConnectionError(f"all TTSs failed ({[m.label for m in adapter._tts_instances]})")
