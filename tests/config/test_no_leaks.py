"""No input value ever appears in a log message, a typed error's message or a warning's message."""

from __future__ import annotations

import json
import logging

import pytest

from agent.config.dialects import parse_document
from agent.config.prompts import read_prompt
from agent.config.resolve import CallSources, resolve_call
from agent.errors import ConfigError, TemplateError
from agent.settings import Settings
from tests.config.conftest import REPO

SECRET = "S3CRET-d41d8cd9"
DOCUMENTS = [
    {"agentId": SECRET, "userRef": SECRET, "metadata": {"promptVariables": {SECRET: SECRET}, "session_source": 5}},
    {
        "type": "web",
        "agent_id": SECRET,
        "agent_overrides": {"system_prompt": SECRET, "llm": {"model": SECRET}, SECRET: 1},
    },
    {
        "agent_id": SECRET,
        "voice_gender": SECRET,
        "primary_language": SECRET,
        "websocket_url": SECRET,
        "voice_speed": SECRET,
    },
    {"assistant_id": SECRET, "metadata": {"plan": {SECRET: SECRET}}},
    {"call_id": SECRET, "type": SECRET, "recording": SECRET},
    {"dialect": SECRET},
    {"agentId": SECRET, "assistant_id": SECRET},
    {"instructions_file": SECRET + ".md", "tts": {"voice": SECRET, "speed": SECRET}, "language": {"primary": SECRET}},
]
BROKEN = [SECRET, f'{{"a": "{SECRET}", "b": NaN}}', f'["{SECRET}"]', f'{{"{SECRET}": ' * 40, json.dumps(SECRET)]


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, WEBCALL_CONFIG_DIR=str(REPO / "config"), WEBCALL_PROMPTS_DIR=str(REPO / "prompts"))


def test_no_input_value_reaches_a_log_message_or_a_warning_message(
    caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = [json.dumps(d) for d in DOCUMENTS] + BROKEN
    for text in texts:
        config = resolve_call(
            CallSources(
                job_metadata=text,
                room_metadata=text,
                caller_metadata=text,
                caller_attributes={f"webcall.{SECRET}": SECRET, "webcall.tts.speed": SECRET},
                room_name=f"scaiwave-{SECRET}",
            ),
            settings=settings,
        )
        assert all(SECRET not in warning.message for warning in config.warnings)
    assert caplog.records
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in str(record.args)


@pytest.mark.parametrize("text", [json.dumps(DOCUMENTS[5]), json.dumps(DOCUMENTS[6]), *BROKEN])
def test_no_input_value_reaches_a_typed_errors_message(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_document(text, source="job_metadata")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.args)


def test_a_prompt_file_error_does_not_repeat_the_name() -> None:
    with pytest.raises(TemplateError) as info:
        read_prompt(SECRET + ".md", prompts_dir=REPO / "prompts")
    assert SECRET not in str(info.value)
