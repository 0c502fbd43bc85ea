"""Fuzzing the resolver: 10,000 generated calls, each a mutated golden example; every one yields a valid config.

The cases come from `tests.config.fuzzing`. The resolver's contract is that no input makes it raise or reach its
last-resort fallback (which is for bugs, and logs an error), and that what it yields is a `CallConfig` that survives
a JSON round trip and whose warnings carry known codes and no input text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.call_config import CallConfig, WarningCode
from agent.config.resolve import resolve_call
from agent.settings import Settings
from tests.config.conftest import REPO
from tests.config.fuzzing import ErrorRecords, FuzzCase, fuzz_cases

GENERATED_CALLS = 10_000
CODES = set(get_args(WarningCode))


@functools.cache
def _settings(env: tuple[tuple[str, str], ...]) -> Settings:
    values = {"WEBCALL_CONFIG_DIR": str(REPO / "config"), "WEBCALL_PROMPTS_DIR": str(REPO / "prompts"), **dict(env)}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def settings_for(env: Mapping[str, str]) -> Settings:
    return _settings(tuple(sorted(env.items())))


@pytest.fixture
def errors() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


def check(case: FuzzCase, errors: ErrorRecords) -> CallConfig:
    """Resolve `case` and assert the resolver's contract; returns the config."""
    config = resolve_call(case.sources, settings=settings_for(case.env))
    assert errors.records == [], f"{case.example}: the last-resort fallback was reached"
    assert isinstance(config, CallConfig)
    text = config.model_dump_json()
    assert CallConfig.model_validate_json(text) == config
    assert {w.code for w in config.warnings} <= CODES
    assert set(config.provenance) >= {"tts.speed", "stt.language", "instructions"}
    return config


@pytest.mark.timeout(900)
def test_ten_thousand_mutated_golden_examples_all_resolve_to_a_valid_config(errors: ErrorRecords) -> None:
    tried: list[str] = []

    @settings(
        max_examples=GENERATED_CALLS,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(case=fuzz_cases())
    def resolve_one(case: FuzzCase) -> None:
        check(case, errors)
        tried.append(case.example)

    resolve_one()

    assert len(tried) >= GENERATED_CALLS
    # Every golden example was mutated, not only the first few.
    from tests.config.fuzzing import EXAMPLE_FILES

    assert len(set(tried)) == len(EXAMPLE_FILES)


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fuzz_cases(), seed=st.integers(0, 3))
def test_a_mutated_example_resolves_the_same_way_twice(case: FuzzCase, seed: int) -> None:
    settings_ = settings_for(case.env)
    assert resolve_call(case.sources, settings=settings_) == resolve_call(case.sources, settings=settings_)
