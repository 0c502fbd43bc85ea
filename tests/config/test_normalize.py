"""Fitting values to providers: ranges, allowlists, provider vocabularies, languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.languages import language_code, stt_language
from tests.config.conftest import MakeSettings, Resolve, codes


@pytest.mark.parametrize(
    ("provider", "speed", "expected"),
    [
        ("openai", 0.1, 0.25),
        ("openai", 5.0, 4.0),
        ("openai", 3.0, 3.0),
        ("deepgram", 0.5, 0.7),
        ("deepgram", 1.6, 1.5),
        ("piper", 3.0, 3.0),
        ("piper", 5.0, 4.0),
    ],
)
def test_tts_speed_is_clamped_to_the_providers_range(
    resolve: Resolve, make_settings: MakeSettings, provider: str, speed: float, expected: float
) -> None:
    config = resolve(job={"tts": {"speed": speed}}, with_settings=make_settings(WEBCALL_TTS_PROVIDER=provider))
    assert config.tts.speed == expected
    assert (("clamped", "tts.speed") in codes(config)) is (speed != expected)


def test_llm_temperature_is_clamped_to_0_to_2(resolve: Resolve) -> None:
    assert resolve(job={"llm": {"temperature": -1}}).llm.temperature == 0.0
    assert resolve(job={"llm": {"temperature": 2.5}}).llm.temperature == 2.0


def test_ambience_volume_is_clamped_to_0_to_1(resolve: Resolve) -> None:
    config = resolve(job={"ambience": {"volume": 7}})
    assert config.ambience.volume == 1.0
    assert codes(config) == [("clamped", "ambience.volume")]


def test_a_model_off_the_allowlist_falls_back_with_not_allowed(resolve: Resolve) -> None:
    config = resolve(job={"llm": {"model": "gpt-5-ultra"}})
    assert config.llm.model == "gpt-4o-mini"
    assert codes(config) == [("not_allowed", "llm.model")]


def test_a_voice_off_the_allowlist_falls_back_to_the_profiles(resolve: Resolve, make_settings: MakeSettings) -> None:
    config = resolve(
        job={
            "type": "web",
            "agent_id": "agt_b88d642dd68747f28305c428b209xxxx",
            "agent_overrides": {"tts": {"voice_id": "verse"}},
        },
        with_settings=make_settings(WEBCALL_ALLOWED_TTS_VOICES="coral,alloy"),
    )
    assert config.tts.voice == "coral"
    assert codes(config) == [("not_allowed", "tts.voice")]


def test_every_voice_of_the_provider_table_is_allowed_by_default(resolve: Resolve) -> None:
    # `verse` is an OpenAI voice the old hand-written allowlist lacked.
    config = resolve(job={"tts": {"voice": "verse"}})
    assert (config.tts.voice, config.warnings) == ("verse", ())


def test_the_allowlists_are_configurable(resolve: Resolve, make_settings: MakeSettings) -> None:
    settings = make_settings(WEBCALL_ALLOWED_LLM_MODELS="gpt-5-ultra", WEBCALL_ALLOWED_TTS_VOICES='["verse"]')
    config = resolve(job={"llm": {"model": "gpt-5-ultra"}, "tts": {"voice": "verse"}}, with_settings=settings)
    assert (config.llm.model, config.tts.voice) == ("gpt-5-ultra", "verse")


def test_profiles_are_configuration_and_not_allowlisted(
    tmp_path: Path, make_settings: MakeSettings, resolve: Resolve
) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "default.yaml").write_text("llm: {model: in-house-model}\n")
    config = resolve(with_settings=make_settings(WEBCALL_CONFIG_DIR=str(tmp_path)))
    assert config.llm.model == "in-house-model"
    assert config.warnings == ()


def test_a_voice_of_another_provider_from_metadata_is_invalid(resolve: Resolve) -> None:
    config = resolve(job={"tts": {"voice": "aura-2-thalia-en"}})
    assert config.tts.voice == "alloy"
    assert codes(config) == [("invalid_value", "tts.voice")]


def test_deepgram_tts_model_is_the_voice(resolve: Resolve, make_settings: MakeSettings) -> None:
    config = resolve(
        job={"tts": {"voice": "aura-2-helena-en"}}, with_settings=make_settings(WEBCALL_TTS_PROVIDER="deepgram")
    )
    assert (config.tts.model, config.tts.voice) == ("aura-2-helena-en", "aura-2-helena-en")
    assert config.provenance["tts.model"] == "job_metadata"


def test_defaults_follow_the_providers_chosen_by_settings_without_warnings(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    settings = make_settings(WEBCALL_STT_PROVIDER="whisper", WEBCALL_TTS_PROVIDER="piper")
    config = resolve(with_settings=settings)
    assert (config.stt.model, config.tts.voice, config.tts.model) == ("tiny.en", "en_US-joe-medium", "en_US-joe-medium")
    assert config.warnings == ()


def test_an_stt_model_of_another_provider_is_invalid(resolve: Resolve) -> None:
    config = resolve(job={"stt": {"model": "whisper-1"}})
    assert config.stt.model == "nova-3"
    assert codes(config) == [("invalid_value", "stt.model")]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("pt_br", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("yue", "yue"),
        ("iw", "he"),
        ("English", None),
        ("qq", None),
        ("xyz-abcdefgh", None),
        ("und", None),
        ("e", None),
        ("en-", None),
        (3, None),
    ],
)
def test_language_codes_are_normalized_or_refused(value: object, code: str | None) -> None:
    assert language_code(value) == code


def test_an_invalid_language_keeps_the_profiles(resolve: Resolve) -> None:
    config = resolve(job={"language": {"primary": "Klingon!"}})
    assert config.language.primary == "en"
    assert codes(config) == [("invalid_value", "language.primary")]


def test_a_secondary_language_equal_to_the_primary_is_dropped(resolve: Resolve) -> None:
    assert resolve(job={"language": {"primary": "en-US", "secondary": "en"}}).language.secondary is None


@pytest.mark.parametrize(
    ("provider", "model", "primary", "secondary", "expected"),
    [
        ("deepgram", "nova-3", "en", None, ("en", None)),
        ("deepgram", "nova-3", "hi", "en", ("multi", None)),
        ("deepgram", "nova-3", "pt-BR", "es", ("multi", None)),
        ("deepgram", "nova-3", "ta", "en", ("ta", "language.secondary")),
        ("deepgram", "nova-2", "hi", "en", ("hi", "language.secondary")),
        ("openai", "gpt-4o-mini-transcribe", "hi", "en", ("multi", None)),
        ("openai", "gpt-4o-mini-transcribe", "ar", None, ("ar", None)),
        ("whisper", "tiny.en", "en", None, ("en", None)),
        ("whisper", "tiny.en", "hi", None, ("en", "language.primary")),
        ("whisper", "tiny.en", "en", "es", ("en", "language.secondary")),
    ],
)
def test_stt_language_in_provider_terms(
    provider: str, model: str, primary: str, secondary: str | None, expected: tuple[str, str | None]
) -> None:
    assert stt_language(provider=provider, model=model, primary=primary, secondary=secondary) == expected


def test_an_unsupported_pair_is_reported_on_the_language_that_is_dropped(resolve: Resolve) -> None:
    config = resolve(job={"language": {"primary": "ta", "secondary": "en"}})
    assert config.stt.language == "ta"
    assert codes(config) == [("unsupported_language", "language.secondary")]


def test_stt_language_provenance_is_the_language_source(resolve: Resolve) -> None:
    config = resolve(room={"language": {"primary": "hi"}}, job={"language": {"secondary": "en"}})
    assert config.stt.language == "multi"
    assert config.provenance["stt.language"] == "job_metadata"
