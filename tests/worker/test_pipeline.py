"""Every provider object is built from the call config and the process settings, in each provider's own terms."""

from __future__ import annotations

import pytest
from livekit.agents import stt, tts
from livekit.plugins import deepgram, openai

from agent import deployment, framework, pipeline
from agent.config.call_config import CallConfig, LlmConfig, SttConfig, TtsConfig
from agent.errors import PipelineError
from agent.providers import TTS
from agent.settings import Settings


def settings_with(**env: str) -> Settings:
    return Settings.model_validate(env)


def test_a_local_openai_compatible_server_needs_no_key() -> None:
    settings = settings_with(OPENAI_BASE_URL="http://127.0.0.1:7890/v1/")
    shared = pipeline.load_shared(settings)
    assert shared.openai_client is not None
    assert str(shared.openai_client.base_url) == "http://127.0.0.1:7890/v1/"
    assert shared.openai_client.api_key == pipeline.LOCAL_PLACEHOLDER_KEY
    built = pipeline.build_llm(CallConfig(), settings=settings, shared=shared)
    assert isinstance(built, openai.LLM)


def test_without_key_or_base_url_the_llm_is_a_typed_pipeline_error() -> None:
    settings = settings_with()
    with pytest.raises(PipelineError) as caught:
        pipeline.build_llm(CallConfig(), settings=settings, shared=pipeline.load_shared(settings))
    assert (caught.value.code, caught.value.role, caught.value.provider) == ("missing_key", "llm", "openai")
    assert caught.value.retryable is False


def test_the_llm_gets_the_configured_model_and_temperature() -> None:
    settings = settings_with(OPENAI_API_KEY="sk-test")
    config = CallConfig(llm=LlmConfig(model="gpt-4.1-mini", temperature=0.2))
    built = pipeline.build_llm(config, settings=settings, shared=pipeline.load_shared(settings))
    assert isinstance(built, openai.LLM)
    assert built.model == "gpt-4.1-mini"
    assert built._opts.temperature == 0.2


def test_deepgram_tts_takes_the_voice_as_its_model_and_a_speed_within_its_range() -> None:
    settings = settings_with(DEEPGRAM_API_KEY="dg-test", DEEPGRAM_BASE_URL="http://127.0.0.1:7891/v1")
    config = TtsConfig(provider="deepgram", voice="aura-2-helena-en", speed=2.0)
    built = pipeline.build_tts(config, settings=settings, shared=pipeline.load_shared(settings))
    assert isinstance(built, deepgram.TTS)
    assert built.model == "aura-2-helena-en"
    assert built._opts.speed == 1.5
    assert built._opts.base_url == "http://127.0.0.1:7891/v1/speak"


def test_a_voice_from_another_vocabulary_falls_back_to_the_providers_default() -> None:
    settings = settings_with(OPENAI_API_KEY="sk-test", DEEPGRAM_API_KEY="dg-test")
    shared = pipeline.load_shared(settings)
    on_openai = pipeline.build_tts(
        TtsConfig(provider="openai", voice="aura-2-helena-en"), settings=settings, shared=shared
    )
    assert isinstance(on_openai, tts.FallbackAdapter)
    first = framework.fallback_members(on_openai)[0]
    assert isinstance(first, openai.TTS)
    assert first._opts.voice == TTS["openai"].default_voice


def test_openai_speed_is_passed_in_openai_terms() -> None:
    settings = settings_with(OPENAI_API_KEY="sk-test")
    built = pipeline.build_tts(
        TtsConfig(provider="openai", voice="nova", speed=1.25), settings=settings, shared=pipeline.load_shared(settings)
    )
    assert isinstance(built, openai.TTS)
    assert (built._opts.voice, built._opts.speed) == ("nova", 1.25)


def test_two_configured_providers_make_a_fallback_chain_with_the_configured_one_first() -> None:
    settings = settings_with(OPENAI_API_KEY="sk-test", DEEPGRAM_API_KEY="dg-test")
    shared = pipeline.load_shared(settings)
    speech_in = pipeline.build_stt(SttConfig(provider="deepgram", language="multi"), settings=settings, shared=shared)
    speech_out = pipeline.build_tts(TtsConfig(provider="deepgram"), settings=settings, shared=shared)
    assert isinstance(speech_in, stt.FallbackAdapter)
    first, second = framework.fallback_members(speech_in)
    assert isinstance(first, deepgram.STT)
    # A non-streaming STT joins the chain behind the VAD-driven StreamAdapter.
    assert isinstance(second, stt.StreamAdapter)
    assert isinstance(second.wrapped_stt, openai.STT)
    assert isinstance(speech_out, tts.FallbackAdapter)
    first_out, second_out = framework.fallback_members(speech_out)
    assert isinstance(first_out, deepgram.TTS)
    assert isinstance(second_out, openai.TTS)


def test_one_configured_provider_is_used_alone() -> None:
    settings = settings_with(DEEPGRAM_API_KEY="dg-test")
    built = pipeline.build_stt(
        SttConfig(provider="deepgram", language="multi"), settings=settings, shared=pipeline.load_shared(settings)
    )
    assert isinstance(built, deepgram.STT)
    assert built._opts.language == "multi"
    assert built._opts.endpoint_url == "https://api.deepgram.com/v1/listen"


def test_deepgram_base_url_is_the_api_root_whatever_suffix_it_was_given() -> None:
    for given in ("http://127.0.0.1:9/v1", "http://127.0.0.1:9", "http://127.0.0.1:9/v1/listen/"):
        settings = settings_with(DEEPGRAM_BASE_URL=given)
        assert pipeline._deepgram_url(settings, "speak") == "http://127.0.0.1:9/v1/speak"


def test_offline_providers_are_built_without_any_key() -> None:
    from agent.offline.piper_tts import PiperTTS
    from agent.offline.whisper_stt import WhisperSTT

    settings = settings_with()
    shared = pipeline.Shared(vad=pipeline.load_vad())
    assert isinstance(pipeline.build_stt(SttConfig(provider="whisper"), settings=settings, shared=shared), WhisperSTT)
    speaker = pipeline.build_tts(
        TtsConfig(provider="piper", voice="en_US-joe-medium", speed=5.0), settings=settings, shared=shared
    )
    assert isinstance(speaker, PiperTTS)
    assert speaker.speed == 4.0


def test_openai_tts_asks_for_raw_pcm_unless_told_another_format() -> None:
    shared_settings = settings_with(OPENAI_API_KEY="sk-test")
    shared = pipeline.load_shared(shared_settings)
    built = pipeline.build_tts(TtsConfig(provider="openai"), settings=shared_settings, shared=shared)
    assert isinstance(built, openai.TTS)
    assert built._opts.response_format == "pcm"
    mp3 = settings_with(OPENAI_API_KEY="sk-test", WEBCALL_OPENAI_TTS_FORMAT="mp3")
    built = pipeline.build_tts(TtsConfig(provider="openai"), settings=mp3, shared=shared)
    assert isinstance(built, openai.TTS)
    assert built._opts.response_format == "mp3"
    with pytest.raises(ValueError, match="WEBCALL_OPENAI_TTS_FORMAT"):
        settings_with(WEBCALL_OPENAI_TTS_FORMAT="ogg")


def test_prewarm_reads_the_agent_profiles_before_any_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit.agents import JobExecutorType, JobProcess

    from agent.config.profiles import load_profiles
    from agent.settings import get_settings
    from agent.worker import prewarm

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    get_settings.cache_clear()
    load_profiles.cache_clear()
    proc = JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None)
    prewarm(proc)
    assert isinstance(proc.userdata["shared"], pipeline.Shared)
    assert load_profiles.cache_info().currsize == 1  # the call's resolve_call reads no YAML
    assert sorted(proc.userdata["knowledge"]) == ["clinic", "returns"]  # the call indexes no collection
    get_settings.cache_clear()


def test_a_provider_the_deployment_lacks_is_swapped_for_one_it_has_with_a_warning() -> None:
    settings = settings_with(OPENAI_API_KEY="sk-test")  # no Deepgram here
    shared = pipeline.load_shared(settings)
    asked = CallConfig(
        stt=SttConfig(provider="deepgram", language="es"),
        tts=TtsConfig(provider="deepgram", voice="aura-2-helena-en", speed=1.2),
        provenance={"tts.provider": "job_metadata"},
    )
    served = deployment.with_available_providers(asked, settings=settings, shared=shared)
    assert (served.stt.provider, served.stt.language) == ("openai", "es")
    assert (served.tts.provider, served.tts.speed) == ("openai", 1.2)
    assert served.tts.voice != "aura-2-helena-en"
    assert {(w.code, w.field) for w in served.warnings} == {
        ("provider_unavailable", "stt.provider"),
        ("provider_unavailable", "tts.provider"),
    }
    assert served.provenance["tts.provider"] == "default"
    assert isinstance(pipeline.build_tts(served.tts, settings=settings, shared=shared), openai.TTS)


def test_a_config_the_deployment_can_serve_is_returned_unchanged() -> None:
    settings = settings_with(OPENAI_API_KEY="sk-test", DEEPGRAM_API_KEY="dg-test")
    shared = pipeline.load_shared(settings)
    asked = CallConfig(tts=TtsConfig(provider="deepgram"))
    assert deployment.with_available_providers(asked, settings=settings, shared=shared) is asked


def test_with_nothing_to_serve_a_role_the_config_stays_and_building_is_a_typed_error() -> None:
    settings = settings_with(OPENAI_API_KEY="", WEBCALL_STT_PROVIDER="deepgram", WEBCALL_TTS_PROVIDER="openai")
    shared = pipeline.load_shared(settings)
    asked = CallConfig(tts=TtsConfig(provider="deepgram"))
    served = deployment.with_available_providers(asked, settings=settings, shared=shared)
    assert served.tts.provider == "deepgram"
    assert not served.warnings
    with pytest.raises(PipelineError) as caught:
        pipeline.build_tts(served.tts, settings=settings, shared=shared)
    assert (caught.value.code, caught.value.role, caught.value.provider) == ("missing_key", "tts", "deepgram")


def test_an_empty_key_is_no_credential_for_a_fallback_chain() -> None:
    settings = settings_with(OPENAI_API_KEY="", DEEPGRAM_API_KEY="dg-test")
    shared = pipeline.load_shared(settings)
    built = pipeline.build_tts(TtsConfig(provider="deepgram"), settings=settings, shared=shared)
    assert isinstance(built, deepgram.TTS), "no FallbackAdapter with an OpenAI TTS that cannot be built"


def _openai_tts_for(language: str) -> pipeline.TtsEngine:
    """The TTS of a call in `language` on OpenAI, on a deployment that has Deepgram too."""
    settings = settings_with(OPENAI_API_KEY="sk-test", DEEPGRAM_API_KEY="dg-test")
    shared = pipeline.load_shared(settings)
    return pipeline.build_tts(
        TtsConfig(provider="openai", voice="nova"), settings=settings, shared=shared, language=language
    )


def test_a_fallback_tts_speaks_the_calls_language_with_one_of_its_own_voices() -> None:
    built = _openai_tts_for("es")
    assert isinstance(built, tts.FallbackAdapter)
    _, fallback = framework.fallback_members(built)
    assert isinstance(fallback, deepgram.TTS)
    assert TTS["deepgram"].speaks(fallback.model, "es")


def test_a_fallback_tts_with_no_voice_for_the_calls_language_is_left_out() -> None:
    # An Arabic call on OpenAI: no Deepgram voice speaks Arabic, so Deepgram is no fallback (it would speak English).
    assert isinstance(_openai_tts_for("ar"), openai.TTS)


def test_a_call_swapped_to_another_tts_provider_gets_a_voice_for_its_language() -> None:
    settings = settings_with(OPENAI_API_KEY="", DEEPGRAM_API_KEY="dg-test", WEBCALL_TTS_PROVIDER="deepgram")
    shared = pipeline.load_shared(settings)
    asked = CallConfig(language={"primary": "es"}, tts=TtsConfig(provider="openai", voice="nova"))
    served = deployment.with_available_providers(asked, settings=settings, shared=shared)
    assert served.tts.provider == "deepgram"
    assert served.tts.voice == served.tts.model
    assert TTS["deepgram"].speaks(served.tts.voice, "es")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (TtsConfig(provider="openai", voice="verse", speed=9.0), {"voice": "verse", "speed": 4.0}),
        (
            TtsConfig(provider="deepgram", voice="aura-2-nestor-es", speed=0.1),
            {"model": "aura-2-nestor-es", "speed": 0.7},
        ),
        (
            TtsConfig(provider="deepgram", voice="nova", model="aura-2-apollo-en"),
            {"model": "aura-2-apollo-en", "speed": 1.0},
        ),
        (TtsConfig(provider="piper", voice="en_US-joe-medium", speed=3.0), {"voice": "en_US-joe-medium", "speed": 3.0}),
    ],
)
def test_mid_call_tts_options_are_in_the_providers_terms_from_the_provider_table(
    config: TtsConfig, expected: dict[str, object]
) -> None:
    assert pipeline.tts_options(config) == expected


@pytest.mark.parametrize(
    ("engine", "kind", "silence_s"), [("silero", "livekit.plugins.silero", 0.55), ("native", "livekit.agents", 0.60)]
)
def test_the_vad_engine_setting_picks_the_silero_runtime_with_its_own_silence_wait(
    engine: str, kind: str, silence_s: float
) -> None:
    shared = pipeline.load_shared(settings_with(WEBCALL_VAD=engine))
    assert type(shared.vad).__module__.startswith(kind)
    assert getattr(shared.vad, "min_silence_duration", None) == pytest.approx(silence_s)


def test_the_native_vad_runtime_is_the_default() -> None:
    shared = pipeline.load_shared(settings_with())
    assert type(shared.vad).__module__.startswith("livekit.agents")


def test_an_unknown_vad_engine_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="WEBCALL_VAD"):
        settings_with(WEBCALL_VAD="webrtc")
