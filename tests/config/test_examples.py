"""The golden examples in config/examples/: every one resolves to exactly its expected config."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent.config.call_config import CallConfig
from agent.config.cli import example_sources
from agent.config.resolve import resolve_call
from tests.config.conftest import EXAMPLES, MakeSettings

EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.json"))
SEED_DIALECTS = ("sawt", "convoi", "vaani", "vyom", "scaiwave")
INPUT_KEYS = {"job_metadata", "room_metadata", "participant_metadata", "attributes", "room_name"}


def load(path: Path) -> dict[str, object]:
    example = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(example, dict)
    return example


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in EXAMPLE_FILES])
def test_example_resolves_to_its_expected_config(path: Path, make_settings: MakeSettings) -> None:
    example = load(path)
    env = example.get("env", {})
    assert isinstance(env, dict)
    settings = make_settings(**env)

    config = resolve_call(example_sources(example), settings=settings)

    assert config.model_dump(mode="json") == example["expected"]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in EXAMPLE_FILES])
def test_example_is_well_formed(path: Path) -> None:
    example = load(path)
    assert set(example) <= INPUT_KEYS | {"description", "env", "expected"}
    assert INPUT_KEYS & set(example)
    expected = CallConfig.model_validate(example["expected"])
    assert expected.dialect == path.parent.name or path.parent.name == "native"


def test_every_seed_dialect_has_at_least_three_examples() -> None:
    counts = Counter(path.parent.name for path in EXAMPLE_FILES)
    assert all(counts[dialect] >= 3 for dialect in SEED_DIALECTS), counts


@pytest.mark.parametrize(
    ("file", "body"),
    [
        (
            "sawt/documented_body.json",
            {
                "agentId": "e63355c6-cf51-40f3-b006-b615d9ab762d",
                "userRef": "user_12345",
                "metadata": {
                    "promptVariables": {"customer_name": "Mohammed", "language": "Arabic"},
                    "preCallVariables": {"account_id": "ACC123"},
                    "session_source": "support_widget",
                },
            },
        ),
        ("convoi/minimal.json", {"type": "web", "agent_id": "agt_b88d642dd68747f28305c428b209xxxx"}),
        (
            "vaani/documented_body.json",
            {
                "agent_id": "d083374a-c167-4bda-b8bc-2a418ca85f35",
                "voice_gender": "female",
                "primary_language": "en",
                "welcome_message": "Hello! How can I help you today?",
            },
        ),
        (
            "vyom/documented_body.json",
            {
                "assistant_id": "550e8400-e29b-41d4-a716-446655440000",
                "metadata": {"name": "John Doe", "plan": "premium"},
            },
        ),
    ],
    ids=["sawt", "convoi", "vaani", "vyom"],
)
def test_each_seeds_documented_body_is_an_example(file: str, body: dict[str, object]) -> None:
    assert load(EXAMPLES / file)["job_metadata"] == body


def test_examples_for_known_agents_use_their_profiles() -> None:
    for path in EXAMPLE_FILES:
        expected = load(path)["expected"]
        assert isinstance(expected, dict)
        unknown = any(w["code"] == "unknown_agent" for w in expected["warnings"])
        if expected["agent_id"] is not None and not unknown:
            assert expected["profile"] == expected["agent_id"], path
