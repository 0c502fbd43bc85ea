"""`python -m agent resolve` prints the config the worker runs: one function fits a call to this deployment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent import pipeline
from agent.config.resolve import CallSources
from agent.deployment import can_serve, resolve_for_deployment
from agent.providers import STT, TTS
from agent.settings import Settings
from tests.cli.commands import resolved

# A call asking for Deepgram on both sides, in Spanish.
ASKS_DEEPGRAM = json.dumps(
    {
        "agent_id": "agt-demo",
        "language": "es",
        "stt": {"provider": "deepgram"},
        "tts": {"provider": "deepgram", "voice": "aura-2-nestor-es", "speed": 1.1},
    }
)


def test_the_resolve_command_shows_the_provider_the_worker_swaps_in_and_its_warning(tmp_path: Path) -> None:
    deployment = {"OPENAI_API_KEY": "sk-test"}  # no Deepgram key or base URL on this deployment
    job = tmp_path / "job.json"
    job.write_text(ASKS_DEEPGRAM, encoding="utf-8")
    printed = resolved("--job-metadata", str(job), "--room-name", "room-1", env={**os.environ, **deployment})

    settings = Settings.model_validate(deployment)
    sources = CallSources(job_metadata=ASKS_DEEPGRAM, room_name="room-1")
    # What the worker's entrypoint runs (`agent.call.resolve`): the process's shared OpenAI client decides.
    worker = resolve_for_deployment(sources, settings=settings, shared=pipeline.load_shared(settings))

    assert printed == worker.model_dump(mode="json")
    assert printed["stt"] == {"provider": "openai", "model": STT["openai"].default_model, "language": "es"}
    tts = printed["tts"]
    assert isinstance(tts, dict)
    assert tts["provider"] == "openai"
    assert TTS["openai"].speaks(tts["voice"], "es")
    assert tts["speed"] == 1.1
    codes = {(w["code"], w["field"]) for w in printed["warnings"]}  # type: ignore[attr-defined]
    assert codes >= {("provider_unavailable", "stt.provider"), ("provider_unavailable", "tts.provider")}


def test_a_deployment_that_has_the_provider_shows_it_unswapped(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(ASKS_DEEPGRAM, encoding="utf-8")
    printed = resolved("--job-metadata", str(job), env={**os.environ, "DEEPGRAM_API_KEY": "dg-test"})
    assert (printed["stt"]["provider"], printed["tts"]["provider"]) == ("deepgram", "deepgram")  # type: ignore[index]
    assert not [w for w in printed["warnings"] if w["code"] == "provider_unavailable"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OPENAI_API_KEY": "sk-test"},
        {"OPENAI_API_KEY": ""},
        {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "DEEPGRAM_API_KEY": ""},
        {"DEEPGRAM_API_KEY": "dg-test"},
        {"DEEPGRAM_BASE_URL": "http://127.0.0.1:9/v1", "WEBCALL_TTS_PROVIDER": "deepgram"},
        {"OPENAI_API_KEY": "sk-test", "DEEPGRAM_API_KEY": "dg-test"},
    ],
    ids=[
        "nothing",
        "openai",
        "empty-openai-key",
        "local-openai",
        "local-openai-empty-dg",
        "deepgram",
        "local-dg",
        "both",
    ],
)
def test_without_the_workers_shared_client_the_settings_decide_as_that_client_does(env: dict[str, str]) -> None:
    settings = Settings.model_validate(env)
    shared = pipeline.load_shared(settings)
    for provider in ("openai", "deepgram"):
        assert can_serve(provider, settings=settings) == can_serve(provider, settings=settings, shared=shared)
    for metadata in (ASKS_DEEPGRAM, json.dumps({"stt": {"provider": "openai"}, "tts": {"provider": "openai"}})):
        sources = CallSources(job_metadata=metadata)
        assert resolve_for_deployment(sources, settings=settings) == resolve_for_deployment(
            sources, settings=settings, shared=shared
        )
