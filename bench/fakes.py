"""Fake OpenAI with fixed latencies, for benchmarks that compare workers: a provider costs the same every time.

`FixedOpenAI` is `sandbox.providers.FakeOpenAI` (the real wire formats, recorded requests, piper speech) with three
changes that make each provider's share of a turn a constant:

- transcription answers the text the bench says the caller spoke (`expect`), without running whisper, whose
  time on a loaded 2-core box moves between 0.4 and 1.1 s;
- the LLM always streams `REPLY`, so the TTS is asked for the same sentences each turn;
- those sentences and the greeting are synthesized before the run, so the TTS answers from piper's cache.

The first-byte delays are the fake's own latency controls (``set_latency``). Each request's answer time is kept in
`answered_at`, keyed by the request record: for the STT when its JSON was sent, for the LLM and TTS when the first
chunk was written.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from sandbox.providers import FakeOpenAI, Reply, speech
from sandbox.providers.base import RECORD_KEY
from sandbox.providers.controls import RecordedRequest
from sandbox.providers.openai_server import SPEECH_SAMPLE_RATE, sentences_of

REPLY = "Sure, I can help with that. Anything else?"
STT_PATH = "/v1/audio/transcriptions"
LLM_PATH = "/v1/chat/completions"
TTS_PATH = "/v1/audio/speech"


@dataclass(frozen=True)
class Latencies:
    """The injected provider latencies, seconds."""

    stt: float = 0.1
    llm_first_token: float = 0.2
    llm_token_interval: float = 0.01
    tts_first_byte: float = 0.1


class FixedOpenAI(FakeOpenAI):
    """The fake OpenAI server with constant provider latencies."""

    def __init__(self, *, latencies: Latencies) -> None:
        super().__init__()
        self.latencies = latencies
        self.expect = ""
        self.answered_at: dict[int, float] = {}
        self.replies.policy = lambda _body: Reply(text=REPLY)
        self.apply_latencies()

    def apply_latencies(self) -> None:
        self.set_latency(first_byte=self.latencies.stt, path=STT_PATH)
        self.set_latency(
            first_byte=self.latencies.llm_first_token, chunk_interval=self.latencies.llm_token_interval, path=LLM_PATH
        )
        self.set_latency(first_byte=self.latencies.tts_first_byte, path=TTS_PATH)

    async def warm(self, *texts: str) -> None:
        """Synthesize every sentence the run will ask for, so the TTS answers from the cache."""
        for text in (REPLY, *texts):
            for sentence in sentences_of(text):
                await asyncio.to_thread(speech.synthesizer().synthesize, sentence, sample_rate=SPEECH_SAMPLE_RATE)

    def answer_time(self, record: RecordedRequest) -> float | None:
        return self.answered_at.get(id(record))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.answered_at[id(request[RECORD_KEY])] = time.monotonic()
        return await super()._chat(request)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        self.answered_at[id(request[RECORD_KEY])] = time.monotonic()
        return await super()._speech(request)

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[RECORD_KEY]
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.filename is not None:
                record.audio += await part.read()
            elif isinstance(part, BodyPartReader) and part.name is not None:
                record.form[part.name] = await part.text()
        record.text = self.expect
        self.answered_at[id(record)] = time.monotonic()
        return web.json_response({"text": self.expect, "usage": {"type": "duration", "seconds": 1}})
