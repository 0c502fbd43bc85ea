"""pytest fixtures for the fake OpenAI/Deepgram providers.

- ``provider_speech``: the piper voice and whisper model, loaded once per test session (process-wide caches).
- ``fake_openai``: a running `sandbox.providers.FakeOpenAI` on a free 127.0.0.1 port (``.base_url``).
- ``fake_deepgram``: a running `sandbox.providers.FakeDeepgram` (``.listen_url``, ``.speak_url``).
- ``espeak``: a function ``espeak(text, sample_rate=16000) -> bytes`` of 16-bit mono PCM speech.

Each server lives for one test (servers are cheap; the models are not). Controls: ``set_latency(first_byte=,
chunk_interval=, path=)``, ``fail_next(status, times=, path=)``, ``hang_next()``, ``drop_next(after_chunks=)``,
``script(Reply(...), ...)`` / ``replies.policy`` on the OpenAI fake; every request is in ``.requests``
(``requests_to(path)``; ``await wait_for(path, count=, done=)`` inside ``asyncio.timeout``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech


@pytest.fixture(scope="session")
def provider_speech() -> tuple[speech.Synthesizer, speech.Transcriber]:
    return speech.load_all()


@pytest.fixture
async def fake_openai(provider_speech: object) -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def fake_deepgram(provider_speech: object) -> AsyncIterator[FakeDeepgram]:
    async with FakeDeepgram() as server:
        yield server


@pytest.fixture(scope="session")
def espeak() -> Callable[..., bytes]:
    return speech.espeak_utterance
