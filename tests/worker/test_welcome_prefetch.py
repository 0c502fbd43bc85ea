"""The welcome is synthesized while the worker joins; the audio is used only if the final config says the same."""

from __future__ import annotations

import asyncio
import itertools

from agent.config.call_config import CallConfig, TtsConfig, Welcome
from agent.welcome import WelcomePrefetch
from tests.worker.fakes import ToneTTS

EARLY = CallConfig(welcome=Welcome(text="Hello and welcome."), tts=TtsConfig(voice="nova", speed=1.0))


async def test_the_prefetched_welcome_is_played_when_the_final_config_agrees() -> None:
    engine = ToneTTS(ms_per_char=10.0)
    prefetch = WelcomePrefetch(config=EARLY, engine=engine)
    audio = prefetch.audio_for(EARLY.model_copy())
    assert audio is not None
    frames = [frame async for frame in audio]
    assert engine.texts == ["Hello and welcome."]
    assert sum(frame.duration for frame in frames) > 0.1


async def test_a_caller_changed_voice_or_text_discards_the_prefetched_audio() -> None:
    for final in (
        EARLY.model_copy(update={"tts": TtsConfig(voice="nova", speed=1.3)}),
        EARLY.model_copy(update={"welcome": Welcome(text="Hello Ana and welcome.")}),
    ):
        prefetch = WelcomePrefetch(config=EARLY, engine=ToneTTS(ms_per_char=10.0))
        assert prefetch.audio_for(final) is None
        await prefetch.aclose()


async def test_nothing_is_prefetched_for_a_generated_or_empty_welcome() -> None:
    from agent import pipeline
    from agent.settings import Settings

    settings = Settings.model_validate({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    shared = pipeline.Shared(vad=pipeline.load_vad())
    for welcome in (Welcome(mode="generate"), Welcome(text="", mode="say"), Welcome(text="Hi", mode="none")):
        prefetch = WelcomePrefetch.start(CallConfig(welcome=welcome), settings=settings, shared=shared)
        assert prefetch.audio_for(CallConfig(welcome=welcome)) is None


async def test_a_failed_prefetch_leaves_the_welcome_to_the_session() -> None:
    prefetch = WelcomePrefetch(config=EARLY, engine=ToneTTS(ms_per_char=10.0, failing=True))
    await asyncio.sleep(0.1)
    assert prefetch.failed
    assert prefetch.audio_for(EARLY) is None


async def test_prefetched_frames_are_handed_over_one_event_loop_turn_at_a_time() -> None:
    prefetch = WelcomePrefetch(config=EARLY, engine=ToneTTS(ms_per_char=40.0))
    audio = prefetch.audio_for(EARLY)
    assert audio is not None
    await asyncio.sleep(0.3)  # the whole welcome is synthesized and waiting
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_turns())
    seen = [turns async for _ in audio]
    counter.cancel()
    assert len(seen) >= 3
    # Other tasks (the room's audio forwarding) run between any two frames, however many are waiting.
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))
