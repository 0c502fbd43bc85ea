"""``python -m agent``: settings are checked before anything starts; the console needs no LiveKit server."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config.call_config import CallConfig, Welcome
from agent.console import converse
from agent.log import REDACTED, get_logger, set_redaction
from sandbox.providers import FakeOpenAI
from tests.worker.fakes import ScriptedLLM


def clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    return {**keep, **extra}


def test_start_without_livekit_settings_exits_non_zero_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "start"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["webcall-agent: missing LiveKit settings: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET"]


def test_start_names_only_the_missing_setting_and_never_a_value() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "start"],
        env=clean_env(LIVEKIT_URL="ws://127.0.0.1:9", LIVEKIT_API_KEY="devkey"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "webcall-agent: missing LiveKit settings: LIVEKIT_API_SECRET"
    assert "devkey" not in done.stderr


def test_python_m_agent_events_lists_the_outbox_and_refuses_to_redeliver_without_a_webhook(
    tmp_path: Path,
) -> None:
    env = clean_env(WEBCALL_EVENTS_OUTBOX_DIR=str(tmp_path))
    listed = subprocess.run(
        [sys.executable, "-m", "agent", "events", "outbox", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])
    refused = subprocess.run(
        [sys.executable, "-m", "agent", "events", "redeliver", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "WEBCALL_EVENTS_URL" in refused.stderr


async def test_the_console_prints_the_welcome_then_answers_each_line() -> None:
    out = io.StringIO()
    config = CallConfig(instructions="Be brief.", welcome=Welcome(text="Hi, I am the desk."))
    code = await converse(config, model=ScriptedLLM(), lines=io.StringIO("Any rooms tonight?\n\nBye\n"), out=out)
    assert code == 0
    assert out.getvalue().splitlines() == [
        "agent> Hi, I am the desk.",
        "agent> answer to: Any rooms tonight?",
        "agent> answer to: Bye",
    ]


@pytest.mark.slow
async def test_python_m_agent_console_talks_to_an_openai_compatible_server_without_livekit(
    fake_openai: FakeOpenAI,
) -> None:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "console",
        env=clean_env(OPENAI_BASE_URL=fake_openai.base_url, HF_HUB_OFFLINE="1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(b"What is the wifi password?\n"), timeout=90)
    assert process.returncode == 0, stderr.decode()
    assert "agent> " in stdout.decode()
    chats = [r for r in fake_openai.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 1
    assert isinstance(chats[0].json, dict)
    messages = chats[0].json["messages"]
    assert messages[-1] == {"role": "user", "content": "What is the wifi password?"}


def test_caller_data_under_pii_keys_is_redacted_in_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("test")
    with caplog.at_level(logging.INFO, logger="webcall.test"):
        logger.info("caller joined", extra={"pii.caller_name": "Ana Souza", "room": "r1"})
    record = caplog.records[-1]
    assert record.getMessage() == "caller joined"
    assert vars(record)["pii.caller_name"] == REDACTED
    assert vars(record)["room"] == "r1"


def test_redaction_can_be_turned_off_for_local_debugging(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("test")
    set_redaction(enabled=False)
    try:
        with caplog.at_level(logging.INFO, logger="webcall.test"):
            logger.info("caller joined", extra={"pii.caller_name": "Ana Souza"})
    finally:
        set_redaction(enabled=True)
    assert vars(caplog.records[-1])["pii.caller_name"] == "Ana Souza"
