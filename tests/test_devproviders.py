"""Which providers a local run gives its worker (`agent.devproviders`), one environment per test."""

from __future__ import annotations

from agent.devproviders import plan_providers
from agent.settings import Settings


def test_with_no_keys_every_provider_is_a_fake_and_one_line_says_the_key_is_missing() -> None:
    plan = plan_providers({})
    assert (plan.fake_openai, plan.fake_deepgram, plan.env) == (True, True, {})
    assert plan.summary.startswith("no OPENAI_API_KEY: ")
    assert "\n" not in plan.summary


def test_an_openai_key_serves_llm_and_voice_and_transcription_stays_on_the_fake_deepgram() -> None:
    plan = plan_providers({"OPENAI_API_KEY": "sk-test"})
    assert (plan.fake_openai, plan.fake_deepgram, plan.env) == (False, True, {})
    assert "sk-test" not in plan.summary


def test_a_local_llm_server_gets_the_llm_and_only_its_model_while_speech_stays_on_deepgram() -> None:
    environ = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "WEBCALL_LLM_MODEL": "llama3.2"}
    plan = plan_providers(environ)
    assert (plan.fake_openai, plan.fake_deepgram) == (False, True)
    settings = Settings.model_validate({**environ, **plan.env})
    assert settings.tts_provider == "deepgram"
    assert settings.allowed_tts_providers == ("deepgram",)
    assert settings.allowed_stt_providers == ("deepgram",)
    assert settings.allowed_llm_models == ("llama3.2",)
    assert plan.summary.startswith("LLM: the OpenAI-compatible server at http://127.0.0.1:11434/v1")


def test_speech_providers_the_developer_chose_are_left_as_chosen() -> None:
    plan = plan_providers({"OPENAI_BASE_URL": "http://127.0.0.1:8080/v1", "WEBCALL_TTS_PROVIDER": "openai"})
    assert "WEBCALL_TTS_PROVIDER" not in plan.env
    assert "WEBCALL_ALLOWED_TTS_PROVIDERS" not in plan.env


def test_deepgram_credentials_keep_the_deepgram_fake_off() -> None:
    assert not plan_providers({"DEEPGRAM_API_KEY": "dg"}).fake_deepgram
    assert plan_providers({"DEEPGRAM_API_KEY": "dg"}).fake_openai
