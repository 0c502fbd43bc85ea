"""The golden examples in config/examples/, each read by `agent.config.golden`: every one resolves to exactly its
expected config."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agent.config.call_config import CallConfig
from agent.config.golden import GoldenCase, read_case, read_cases
from agent.config.resolve import resolve_call
from tests.config.conftest import EXAMPLES, MakeSettings

CASES = read_cases(EXAMPLES)
SEED_DIALECTS = ("sawt", "convoi", "vaani", "vyom", "scaiwave")


def test_the_reader_finds_every_example_file() -> None:
    assert [case.path for case in CASES] == sorted(EXAMPLES.glob("*/*.json"))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_example_resolves_to_its_expected_config(case: GoldenCase, make_settings: MakeSettings) -> None:
    settings = make_settings(**case.env)

    config = resolve_call(case.sources(), settings=settings)

    assert config.model_dump(mode="json") == case.expected


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_example_is_well_formed(case: GoldenCase) -> None:
    expected = CallConfig.model_validate(case.expected)
    assert expected.dialect == case.dialect or case.dialect == "native"
    assert case.description, "every case says what it shows"


def test_every_seed_dialect_has_at_least_three_examples() -> None:
    counts = Counter(case.dialect for case in CASES)
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
    case = read_case(EXAMPLES / file)
    assert case.job_metadata is not None
    assert json.loads(case.job_metadata) == body


def test_examples_for_known_agents_use_their_profiles() -> None:
    for case in CASES:
        expected = case.expected
        assert isinstance(expected["warnings"], list)
        unknown = any(w["code"] == "unknown_agent" for w in expected["warnings"])
        if expected["agent_id"] is not None and not unknown:
            assert expected["profile"] == expected["agent_id"], case.name
