"""The OpenAI TTS with a bound on the wait for its first audio.

livekit's openai plugin gives each synthesis request a fixed 30 s read time-out (only the connect time-out comes from
the session's conn options), so a provider that accepts the request and never answers, or answers its first byte
after 5 s, keeps the caller in silence that long before the fallback TTS is tried or the call degrades to text.
`BoundedOpenAITTS` fails such a request with `APITimeoutError` when no audio has come within ``first_audio_s``
(``WEBCALL_TTS_TIMEOUT_S``); once audio flows, the plugin's own time-outs apply.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, APITimeoutError
from livekit.agents import tts as agents_tts
from livekit.plugins import openai
from livekit.plugins.openai import tts as openai_tts


class BoundedOpenAITTS(openai.TTS):
    """`openai.TTS` whose requests fail after ``first_audio_s`` without audio."""

    def __init__(self, *, first_audio_s: float, **options: Any) -> None:
        super().__init__(**options)
        self.first_audio_s = first_audio_s

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> agents_tts.ChunkedStream:
        return _BoundedStream(tts=self, input_text=text, conn_options=conn_options)


class _BoundedStream(openai_tts.ChunkedStream):
    async def _run(self, output_emitter: agents_tts.AudioEmitter) -> None:
        assert isinstance(self._tts, BoundedOpenAITTS)
        try:
            async with asyncio.timeout(self._tts.first_audio_s) as deadline:
                forward = output_emitter.push

                def push(data: bytes) -> None:
                    # the first audio lifts the bound: a long answer may take as long as it takes
                    deadline.reschedule(None)
                    forward(data)

                output_emitter.push = push  # type: ignore[method-assign]
                await super()._run(output_emitter)
        except TimeoutError:
            raise APITimeoutError("no audio within the first-audio time-out") from None
