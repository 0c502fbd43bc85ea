"""The TTS fallback chain finishes a sentence its first TTS was cut off in, against the fake OpenAI and Deepgram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai as openai_sdk
import pytest
import pytest_asyncio
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, tts
from livekit.plugins import deepgram

from agent import pipeline
from agent.config.call_config import TtsConfig
from agent.openai_tts import BoundedOpenAITTS
from agent.settings import Settings
from agent.tts_chain import SentenceFallbackTTS
from sandbox.providers import FakeDeepgram, FakeOpenAI, FaultSpec, speech

NO_RETRY = APIConnectOptions(max_retry=0, retry_interval=0.0, timeout=10.0)
SENTENCE = "Our shop opens at nine in the morning and closes at six in the evening."

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture
async def chain(fake_openai: FakeOpenAI, fake_deepgram: FakeDeepgram) -> AsyncIterator[SentenceFallbackTTS]:
    client = openai_sdk.AsyncClient(api_key="sandbox", base_url=fake_openai.base_url, max_retries=0)
    async with aiohttp.ClientSession() as http:
        members: list[tts.TTS[Any]] = [
            BoundedOpenAITTS(first_audio_s=20.0, client=client, response_format="pcm"),
            deepgram.TTS(base_url=fake_deepgram.speak_url, api_key="sandbox", http_session=http),
        ]
        yield SentenceFallbackTTS(members, max_retry_per_tts=0)
    await client.close()


def cut(after_chunks: int = 2) -> FaultSpec:
    return FaultSpec.model_validate({"service": "tts", "kind": "cut", "after_chunks": after_chunks})


async def spoken(stream: tts.ChunkedStream) -> rtc.AudioFrame:
    async with stream:
        return rtc.combine_audio_frames([audio.frame async for audio in stream])


def test_a_chain_of_two_ttss_is_asked_one_sentence_at_a_time() -> None:
    settings = Settings.model_validate({"OPENAI_API_KEY": "sk-test", "DEEPGRAM_API_KEY": "dg-test"})
    built = pipeline.build_tts(TtsConfig(provider="openai"), settings=settings, shared=pipeline.load_shared(settings))
    assert isinstance(built, SentenceFallbackTTS)
    assert built.capabilities.streaming is False, "the framework's tts_node puts it behind its sentence tokenizer"


async def test_a_sentence_cut_mid_way_is_spoken_again_whole_by_the_next_tts(
    chain: SentenceFallbackTTS, fake_openai: FakeOpenAI, fake_deepgram: FakeDeepgram
) -> None:
    whole = await spoken(chain._tts_instances[1].synthesize(SENTENCE, conn_options=NO_RETRY))
    fake_openai.inject(cut())
    changes: list[tuple[tts.TTS[Any], bool]] = []
    chain.on("tts_availability_changed", lambda ev: changes.append((ev.tts, ev.available)))

    heard = await spoken(chain.synthesize(SENTENCE, conn_options=NO_RETRY))

    # the cut request, then (maybe already) the adapter's recovery probe
    assert [r.fault for r in fake_openai.requests_to("/v1/audio/speech")][:1] == ["drop"]
    speak = fake_deepgram.requests_to("/v1/speak")
    assert len(speak) == 2, "the reference, then the sentence again"
    assert speak[-1].text == SENTENCE
    # the cut start, then the whole sentence in the fallback's voice
    assert heard.duration > whole.duration
    words = speech.words_of(speech.transcriber().transcribe(bytes(heard.data), sample_rate=heard.sample_rate).text)
    assert {"closes", "evening"} <= set(words), words
    # marked unavailable (the next sentence goes to the fallback), until the framework's probe finds it answering
    assert changes[:1] == [(chain._tts_instances[0], False)], changes


async def test_a_sentence_every_tts_fails_raises_even_after_some_of_it_was_heard(
    chain: SentenceFallbackTTS, fake_openai: FakeOpenAI, fake_deepgram: FakeDeepgram
) -> None:
    fake_openai.inject(cut())
    fake_deepgram.inject(FaultSpec(service="tts", kind="http_500"))

    with pytest.raises(APIConnectionError):
        await spoken(chain.synthesize(SENTENCE, conn_options=NO_RETRY))

    assert [r.fault for r in fake_openai.requests_to("/v1/audio/speech") if r.fault] == ["drop"]
    assert [r.fault for r in fake_deepgram.requests_to("/v1/speak") if r.fault] == ["status"]
