"""The provider table decides: which providers metadata may pick, which voices speak the call's language, which
languages a caller may choose."""

from __future__ import annotations

import pytest

from agent.providers import STT, TTS
from agent.settings import Settings
from tests.config.conftest import MakeSettings, Resolve, codes

SAWT_AGENT = "e63355c6-cf51-40f3-b006-b615d9ab762d"


def test_metadata_asking_for_piper_on_a_deployment_that_allows_only_deepgram_is_refused(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    settings = make_settings(
        WEBCALL_TTS_PROVIDER="deepgram",
        WEBCALL_ALLOWED_TTS_PROVIDERS="deepgram",
        WEBCALL_ALLOWED_STT_PROVIDERS="deepgram",
    )
    config = resolve(room={"stt": {"provider": "whisper"}, "tts": {"provider": "piper"}}, with_settings=settings)
    assert (config.stt.provider, config.tts.provider) == ("deepgram", "deepgram")
    assert codes(config) == [("not_allowed", "stt.provider"), ("not_allowed", "tts.provider")]


def test_offline_providers_are_not_on_the_default_allowlists(resolve: Resolve) -> None:
    config = resolve(job={"stt": {"provider": "whisper"}, "tts": {"provider": "piper"}})
    assert (config.stt.provider, config.tts.provider) == ("deepgram", "openai")
    assert {code for code, _ in codes(config)} == {"not_allowed"}


def test_a_deployment_may_allow_the_offline_providers(resolve: Resolve, make_settings: MakeSettings) -> None:
    settings = make_settings(WEBCALL_ALLOWED_STT_PROVIDERS="whisper", WEBCALL_ALLOWED_TTS_PROVIDERS="piper")
    config = resolve(job={"stt": {"provider": "whisper"}, "tts": {"provider": "piper"}}, with_settings=settings)
    assert (config.stt.provider, config.tts.provider, config.tts.voice) == ("whisper", "piper", "en_US-joe-medium")
    assert config.warnings == ()


def test_stt_and_tts_models_from_metadata_must_be_on_the_deployments_lists(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    job = {"stt": {"provider": "deepgram", "model": "nova-2"}, "tts": {"provider": "openai", "model": "tts-1-hd"}}
    assert codes(resolve(job=job)) == [], "every model of the provider table is allowed by default"

    settings = make_settings(WEBCALL_ALLOWED_STT_MODELS="nova-3", WEBCALL_ALLOWED_TTS_MODELS="gpt-4o-mini-tts")
    config = resolve(job=job, with_settings=settings)
    assert (config.stt.model, config.tts.model) == ("nova-3", "gpt-4o-mini-tts")
    assert codes(config) == [("not_allowed", "stt.model"), ("not_allowed", "tts.model")]


def test_a_tts_whose_model_is_its_voice_is_checked_by_the_voice_list_alone(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    settings = make_settings(WEBCALL_ALLOWED_TTS_MODELS="gpt-4o-mini-tts")
    config = resolve(job={"tts": {"provider": "deepgram", "voice": "aura-2-apollo-en"}}, with_settings=settings)
    assert (config.tts.voice, config.tts.model) == ("aura-2-apollo-en", "aura-2-apollo-en")
    assert codes(config) == []


def test_the_process_providers_are_always_allowed(resolve: Resolve, make_settings: MakeSettings) -> None:
    settings = make_settings(WEBCALL_TTS_PROVIDER="piper", WEBCALL_ALLOWED_TTS_PROVIDERS="openai")
    assert resolve(job={"tts": {"provider": "piper"}}, with_settings=settings).tts.provider == "piper"


def test_the_arabic_sawt_profile_on_deepgram_no_longer_gets_an_english_only_voice(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    config = resolve(job={"agentId": SAWT_AGENT}, with_settings=make_settings(WEBCALL_TTS_PROVIDER="deepgram"))
    assert config.language.primary == "ar"
    # No Deepgram voice speaks Arabic: the call's TTS moves to an allowed provider whose voices do.
    assert config.tts.voice != "aura-2-thalia-en"
    assert (config.tts.provider, config.tts.model) == ("openai", "gpt-4o-mini-tts")
    assert TTS["openai"].speaks(config.tts.voice, "ar")
    assert ("unsupported_voice", "tts.provider") in codes(config)


def test_with_no_other_provider_allowed_the_voice_stays_and_the_warning_says_so(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    settings = make_settings(WEBCALL_TTS_PROVIDER="deepgram", WEBCALL_ALLOWED_TTS_PROVIDERS="deepgram")
    config = resolve(job={"agentId": SAWT_AGENT}, with_settings=settings)
    assert (config.tts.provider, config.tts.voice) == ("deepgram", "aura-2-thalia-en")
    assert ("unsupported_voice", "tts.voice") in codes(config)


def test_a_spanish_call_on_deepgram_gets_a_spanish_voice(resolve: Resolve, make_settings: MakeSettings) -> None:
    settings = make_settings(WEBCALL_TTS_PROVIDER="deepgram")
    config = resolve(job={"language": "es-MX", "tts": {"voice": "aura-2-helena-en"}}, with_settings=settings)
    assert config.tts.provider == "deepgram"
    assert config.tts.voice.endswith("-es")
    assert config.tts.model == config.tts.voice
    assert codes(config) == [("unsupported_voice", "tts.voice")]


def test_a_voice_that_speaks_the_language_is_kept(resolve: Resolve, make_settings: MakeSettings) -> None:
    settings = make_settings(WEBCALL_TTS_PROVIDER="deepgram")
    config = resolve(job={"language": "es", "tts": {"voice": "aura-2-nestor-es"}}, with_settings=settings)
    assert (config.tts.voice, config.warnings) == ("aura-2-nestor-es", ())


@pytest.mark.parametrize("tag", ["qq", "xyz-abcdefgh", "und"])
def test_a_caller_language_that_is_no_language_is_refused(resolve: Resolve, tag: str) -> None:
    config = resolve(attributes={"webcall.language": tag})
    assert (config.language.primary, config.stt.language) == ("en", "en")
    assert codes(config) == [("invalid_value", "language.primary")]


def test_a_caller_language_the_stt_model_cannot_hear_is_refused(resolve: Resolve) -> None:
    # Swahili is a real language, but not one Deepgram nova-3 hears.
    config = resolve(attributes={"webcall.language": "sw"})
    assert (config.language.primary, config.stt.language) == ("en", "en")
    assert codes(config) == [("unsupported_language", "language.primary")]


def test_a_caller_language_the_providers_support_is_taken(resolve: Resolve) -> None:
    config = resolve(attributes={"webcall.language": "pt_br", "webcall.language.secondary": "es"})
    assert (config.language.primary, config.language.secondary, config.stt.language) == ("pt-BR", "es", "multi")
    assert config.warnings == ()


def test_on_the_offline_stt_a_caller_may_only_choose_english(resolve: Resolve, make_settings: MakeSettings) -> None:
    settings = make_settings(WEBCALL_STT_PROVIDER="whisper", WEBCALL_TTS_PROVIDER="piper")
    config = resolve(attributes={"webcall.language": "de"}, with_settings=settings)
    assert (config.language.primary, config.stt.language) == ("en", "en")
    assert codes(config) == [("unsupported_language", "language.primary")]


def test_a_language_the_platform_set_is_kept_even_where_the_table_is_silent(resolve: Resolve) -> None:
    # The platform vouches for its own languages; only the caller's are held to the table.
    config = resolve(job={"language": "sw"})
    assert (config.language.primary, config.stt.language) == ("sw", "sw")


def test_the_settings_allowlists_default_to_the_provider_table() -> None:
    settings = Settings(_env_file=None)
    assert set(settings.allowed_tts_voices) == {voice for spec in TTS.values() for voice in spec.voices}
    assert {"verse", "aura-2-thalia-en", "en_US-joe-medium"} <= set(settings.allowed_tts_voices)
    assert set(settings.allowed_stt_providers) == {p for p, spec in STT.items() if not spec.offline}
    assert set(settings.allowed_tts_providers) == {p for p, spec in TTS.items() if not spec.offline}


def test_the_piper_speed_range_is_one_range() -> None:
    # normalize clamps with it, the pipeline builds PiperTTS with it and PiperTTS checks it: all read TTS["piper"].
    assert TTS["piper"].speed == (0.25, 4.0)
    assert TTS["piper"].clamp(5.0) == 4.0


def test_a_deepgram_voice_named_like_deepgrams_beyond_the_table_is_taken_when_allowed(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    settings = make_settings(WEBCALL_TTS_PROVIDER="deepgram", WEBCALL_ALLOWED_TTS_VOICES="aura-2-hector-fr")
    config = resolve(job={"language": "fr", "tts": {"voice": "aura-2-hector-fr"}}, with_settings=settings)
    assert (config.tts.voice, config.tts.model, config.warnings) == ("aura-2-hector-fr", "aura-2-hector-fr", ())
