from __future__ import annotations

import pytest

from agent.errors import SettingsError
from agent.settings import Settings


def test_missing_livekit_settings_are_named_without_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_KEY", "k-should-not-leak")
    settings = Settings(_env_file=None)
    with pytest.raises(SettingsError) as info:
        settings.require_livekit()
    assert info.value.fields == ("LIVEKIT_URL", "LIVEKIT_API_SECRET")
    assert "k-should-not-leak" not in str(info.value)


def test_keys_are_secret_and_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hidden")
    settings = Settings(_env_file=None)
    assert settings.openai_api_key is not None
    assert "sk-hidden" not in repr(settings)
    assert settings.openai_api_key.get_secret_value() == "sk-hidden"


def test_agent_name_defaults_to_webcall_agent_and_env_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).agent_name == "webcall-agent"
    monkeypatch.setenv("LIVEKIT_AGENT_NAME", "other")
    assert Settings(_env_file=None).agent_name == "other"


def test_the_drain_outlasts_the_longest_call_unless_set() -> None:
    from agent.settings import DRAIN_MARGIN_S, Settings

    assert Settings.model_validate({}).drain_timeout_s == 1800.0 + DRAIN_MARGIN_S
    assert Settings.model_validate({"WEBCALL_MAX_CALL_DURATION_S": "600"}).drain_timeout_s == 600.0 + DRAIN_MARGIN_S
    assert Settings.model_validate({"WEBCALL_DRAIN_TIMEOUT_S": "3"}).drain_timeout_s == 3.0
