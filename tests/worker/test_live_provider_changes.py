"""A mid-call voice, speed or language change reaches the chain's first provider in that provider's own terms."""

from __future__ import annotations

from livekit.agents import stt, tts
from livekit.plugins import deepgram, openai

from agent import conversation, framework, pipeline
from agent.config.call_config import CallConfig, SttConfig, TtsConfig
from agent.settings import Settings

BOTH = {"OPENAI_API_KEY": "sk-test", "DEEPGRAM_API_KEY": "dg-test"}


def _built(config: CallConfig) -> pipeline.Pipeline:
    settings = Settings.model_validate(BOTH)
    return pipeline.build(config, settings=settings, shared=pipeline.load_shared(settings))


def test_a_new_deepgram_voice_becomes_the_model_of_the_first_tts_in_the_chain() -> None:
    built = _built(CallConfig(tts=TtsConfig(provider="deepgram", voice="aura-2-thalia-en")))
    changed = CallConfig(tts=TtsConfig(provider="deepgram", voice="aura-2-apollo-en", speed=3.0))
    conversation._update_tts(built.tts, changed)
    assert isinstance(built.tts, tts.FallbackAdapter)
    first, fallback = framework.fallback_members(built.tts)
    assert isinstance(first, deepgram.TTS)
    assert (first.model, first._opts.speed) == ("aura-2-apollo-en", 1.5)
    assert isinstance(fallback, openai.TTS)
    assert fallback._opts.voice == "alloy"


def test_a_new_openai_voice_and_speed_reach_the_openai_tts() -> None:
    built = _built(CallConfig(tts=TtsConfig(provider="openai", voice="alloy")))
    conversation._update_tts(built.tts, CallConfig(tts=TtsConfig(provider="openai", voice="verse", speed=0.1)))
    assert isinstance(built.tts, tts.FallbackAdapter)
    first = framework.fallback_members(built.tts)[0]
    assert isinstance(first, openai.TTS)
    assert (first._opts.voice, first._opts.speed) == ("verse", 0.25)


def test_a_language_change_reaches_the_openai_stt_behind_its_stream_adapter() -> None:
    # OpenAI's STT is first in the chain, wrapped in the VAD-driven StreamAdapter: the change must reach it there.
    built = _built(CallConfig(stt=SttConfig(provider="openai", model="gpt-4o-mini-transcribe", language="en")))
    assert isinstance(built.stt, stt.FallbackAdapter)
    adapter = framework.fallback_members(built.stt)[0]
    assert isinstance(adapter, stt.StreamAdapter)
    first = adapter.wrapped_stt
    assert isinstance(first, openai.STT)
    conversation._update_stt(built.stt, "pt-BR")
    assert (first._opts.languages, first._opts.detect_language) == (["pt"], False)
    conversation._update_stt(built.stt, "multi")
    assert (first._opts.languages, first._opts.detect_language) == ([], True)
