"""Per-call limits are clamped to the deployment's maxima (``WEBCALL_MAX_*``) with a ``clamped`` warning, whatever
the source and the dialect of the call."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.call_config import CallConfig
from agent.config.golden import GoldenCase, read_cases
from agent.config.normalize import deployment_maxima
from agent.config.resolve import CallSources, resolve_call
from agent.settings import Settings
from tests.config.conftest import EXAMPLES, REPO, MakeSettings, Resolve, codes

DEFAULTS = Settings(_env_file=None, WEBCALL_CONFIG_DIR=str(REPO / "config"), WEBCALL_PROMPTS_DIR=str(REPO / "prompts"))
MAXIMA = deployment_maxima(DEFAULTS)
# The examples: a day-long call, endless re-prompts, a 100-million-character message.
HUGE = {
    "limits.max_duration_s": 86400,
    "limits.user_silence_timeout_s": 86400,
    "limits.silence_reprompts": 100000,
    "chat.max_message_chars": 1e8,
}
LIMITS = list(HUGE)


def document(values: Mapping[str, object]) -> dict[str, object]:
    """A native document setting dotted `values` (``{"limits.x": 1}`` -> ``{"limits": {"x": 1}}``)."""
    out: dict[str, dict[str, object]] = {}
    for path, value in values.items():
        group, name = path.split(".")
        out.setdefault(group, {})[name] = value
    return dict(out)


def value_of(config: CallConfig, path: str) -> object:
    group, name = path.split(".")
    return getattr(getattr(config, group), name)


@pytest.mark.parametrize("path", LIMITS, ids=LIMITS)
def test_a_limit_above_the_deployment_maximum_is_clamped_to_it_with_a_warning(resolve: Resolve, path: str) -> None:
    config = resolve(job=document({path: HUGE[path]}))
    assert value_of(config, path) == MAXIMA[path]
    assert ("clamped", path) in codes(config)
    assert config.provenance[path] == "job_metadata"


def test_the_defaults_are_within_the_maxima_and_resolve_without_a_warning(resolve: Resolve) -> None:
    config = resolve()
    assert all(value_of(config, path) <= MAXIMA[path] for path in LIMITS)  # type: ignore[operator]
    assert codes(config) == []


@pytest.mark.parametrize("path", LIMITS, ids=LIMITS)
def test_a_limit_at_the_maximum_is_kept_as_given(resolve: Resolve, path: str) -> None:
    config = resolve(room=document({path: MAXIMA[path]}))
    assert value_of(config, path) == MAXIMA[path]
    assert codes(config) == []


def test_a_deployment_that_raises_a_maximum_allows_longer_calls(make_settings: MakeSettings, resolve: Resolve) -> None:
    longer = make_settings(WEBCALL_MAX_CALL_DURATION_S="7200", WEBCALL_MAX_MESSAGE_CHARS="16000")
    config = resolve(
        job=document({"limits.max_duration_s": 3600, "chat.max_message_chars": 12000}), with_settings=longer
    )
    assert (config.limits.max_duration_s, config.chat.max_message_chars) == (3600, 12000)
    assert codes(config) == []


@given(
    path=st.sampled_from(LIMITS),
    value=st.integers(min_value=1, max_value=10**12) | st.floats(min_value=1.0, max_value=1e15),
    source=st.sampled_from(["job", "room"]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_limit_from_any_trusted_source_resolves_within_its_maximum_warned_exactly_when_cut(
    path: str, value: float, source: str
) -> None:
    if path in ("limits.silence_reprompts", "chat.max_message_chars"):
        value = int(value)
    text = json.dumps(document({path: value}))
    sources = CallSources(job_metadata=text) if source == "job" else CallSources(room_metadata=text)
    config = resolve_call(sources, settings=DEFAULTS)
    resolved = value_of(config, path)
    assert isinstance(resolved, int | float)
    assert resolved <= MAXIMA[path]
    assert (("clamped", path) in codes(config)) == (value > MAXIMA[path])
    if value <= MAXIMA[path]:
        assert resolved == value


def _one_case_per_dialect() -> list[GoldenCase]:
    """For each dialect, its first example whose room metadata is free to carry the limits."""
    chosen: dict[str, GoldenCase] = {}
    for case in read_cases(EXAMPLES):
        if case.room_metadata is None and case.job_metadata is not None and not case.env:
            chosen.setdefault(case.dialect, case)
    return list(chosen.values())


CASES = _one_case_per_dialect()


def test_every_dialect_has_a_case_here() -> None:
    assert sorted(case.dialect for case in CASES) == ["convoi", "native", "sawt", "scaiwave", "vaani", "vyom"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_call_of_each_dialect_has_its_huge_limits_clamped(case: GoldenCase) -> None:
    # Only native documents carry limits (no platform's API has them): a dialect's call gets them from a native
    # room document (or its profile) beside the platform's own job document.
    sources = dataclasses.replace(case.sources(), room_metadata=json.dumps(document(HUGE)))
    config = resolve_call(sources, settings=DEFAULTS)
    assert config.dialect == case.dialect
    assert {path: value_of(config, path) for path in LIMITS} == MAXIMA
    assert {("clamped", path) for path in LIMITS} <= set(codes(config))
