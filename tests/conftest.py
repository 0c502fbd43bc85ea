"""Shared fixtures. Every test starts with no provider or LiveKit credentials in its environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.plugins.sandbox_server", "tests.plugins.fake_providers", "tests.plugins.bounded_tests"]

_CLEARED_PREFIXES = ("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    from agent.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
