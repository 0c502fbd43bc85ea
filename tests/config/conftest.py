"""Fixtures for the config tests: settings pointed at the repository's own `config/` and `prompts/`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config import profiles, prompts, voices
from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources, resolve_call
from agent.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config" / "examples"

MakeSettings = Callable[..., Settings]
Resolve = Callable[..., CallConfig]


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    # Profiles, prompt files and the voice table are read once per process; tests that write their own files
    # need to start from an empty cache.
    for cached in (profiles.load_profiles, prompts._read, voices.load_voice_table):
        cached.cache_clear()
    yield
    for cached in (profiles.load_profiles, prompts._read, voices.load_voice_table):
        cached.cache_clear()


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch) -> MakeSettings:
    """Settings from the environment plus `env` (``WEBCALL_*`` names), reading the repository's config by default."""

    def make(**env: str) -> Settings:
        monkeypatch.setenv("WEBCALL_CONFIG_DIR", str(REPO / "config"))
        monkeypatch.setenv("WEBCALL_PROMPTS_DIR", str(REPO / "prompts"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return Settings(_env_file=None)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
def resolve(settings: Settings) -> Resolve:
    """`resolve_call` with the repository's settings; documents may be given as objects (sent as JSON text)."""

    def run(
        *,
        job: object = None,
        room: object = None,
        participant: object = None,
        attributes: dict[str, str] | None = None,
        room_name: str | None = None,
        with_settings: Settings | None = None,
    ) -> CallConfig:
        return resolve_call(
            CallSources(
                job_metadata=as_text(job),
                room_metadata=as_text(room),
                caller_metadata=as_text(participant),
                caller_attributes=attributes or {},
                room_name=room_name,
            ),
            settings=with_settings or settings,
        )

    return run


def as_text(document: object) -> str | None:
    return document if document is None or isinstance(document, str) else json.dumps(document)


def codes(config: CallConfig) -> list[tuple[str, str]]:
    return [(w.code, w.field) for w in config.warnings]
