"""The allowlist settings read comma-separated lists (or JSON arrays) from the environment."""

from __future__ import annotations

import pytest

from agent.settings import DEFAULT_CALLER_ALLOWED, Settings


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBCALL_ALLOWED_LLM_MODELS", " gpt-4o , gpt-4.1,,")
    monkeypatch.setenv("WEBCALL_ALLOWED_TTS_VOICES", "nova")
    monkeypatch.setenv("WEBCALL_CALLER_ALLOWED_FIELDS", "variables.name,tts.speed")
    settings = Settings(_env_file=None)
    assert settings.allowed_llm_models == ("gpt-4o", "gpt-4.1")
    assert settings.allowed_tts_voices == ("nova",)
    assert settings.caller_allowed_fields == ("variables.name", "tts.speed")


def test_lists_may_be_json_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBCALL_ALLOWED_LLM_MODELS", '["a", "b"]')
    assert Settings(_env_file=None).allowed_llm_models == ("a", "b")


def test_an_empty_list_allows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBCALL_CALLER_ALLOWED_FIELDS", "")
    assert Settings(_env_file=None).caller_allowed_fields == ()


def test_the_caller_allowlist_defaults_to_language_and_speed_and_no_variables() -> None:
    assert Settings(_env_file=None).caller_allowed_fields == DEFAULT_CALLER_ALLOWED == ("language", "tts.speed")
