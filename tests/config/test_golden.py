"""`agent.config.golden`, the one reader of golden cases: what it makes of each key, and the files it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config.golden import GoldenCaseError, read_case

EXPECTED = {"dialect": "native"}


def write_case(tmp_path: Path, case: object, *, name: str = "native/case.json") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(case if isinstance(case, str) else json.dumps(case), encoding="utf-8")
    return path


def test_an_object_is_sent_as_its_json_a_string_verbatim_and_an_absent_document_not_at_all(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        {"job_metadata": {"agent_id": "support"}, "room_metadata": "{not json", "expected": EXPECTED},
        name="sawt/mixed.json",
    )

    case = read_case(path)

    assert (case.name, case.dialect) == ("sawt/mixed", "sawt")
    assert case.job_metadata is not None
    assert json.loads(case.job_metadata) == {"agent_id": "support"}
    assert case.room_metadata == "{not json"
    assert case.participant_metadata is None
    assert case.sources().caller_metadata is None, "the resolver sees no document, as the worker would"
    assert case.wire("participant_metadata") == "", "a LiveKit metadata field carries an empty string instead"
    assert case.wire("room_metadata") == "{not json"


def test_attributes_room_name_env_and_the_expected_welcome_are_read(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        {
            "attributes": {"webcall.language": "es"},
            "room_name": "scaiwave-c1",
            "env": {"WEBCALL_DIALECT": "vyom"},
            "expected": {"welcome": {"text": "Hola"}},
        },
    )

    case = read_case(path)

    assert case.sources().caller_attributes == {"webcall.language": "es"}
    assert case.sources().room_name == "scaiwave-c1"
    assert case.env == {"WEBCALL_DIALECT": "vyom"}
    assert case.expected_welcome() == "Hola"


@pytest.mark.parametrize(
    ("content", "code", "field"),
    [
        ("{not json", "unreadable", None),
        ("[1, 2]", "not_an_object", None),
        ({"job_metadata": {}, "expected": EXPECTED, "extra": 1}, "unknown_key", "extra"),
        ({"description": "nothing to send", "expected": EXPECTED}, "no_input", None),
        ({"job_metadata": {}}, "no_expected", None),
        ({"attributes": {"webcall.tts.speed": 1.1}, "expected": EXPECTED}, "invalid_value", "attributes"),
        ({"job_metadata": {}, "env": {"LIVEKIT_API_SECRET": "x"}, "expected": EXPECTED}, "invalid_value", "env"),
        ({"room_name": 7, "expected": EXPECTED}, "invalid_value", "room_name"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-key",
        "no-input",
        "no-expected",
        "attribute-not-a-string",
        "env",
        "room",
    ],
)
def test_a_file_that_is_not_a_case_is_refused_with_its_code_and_key(
    tmp_path: Path, content: object, code: str, field: str | None
) -> None:
    with pytest.raises(GoldenCaseError) as raised:
        read_case(write_case(tmp_path, content))
    assert (raised.value.code, raised.value.field) == (code, field)


def test_a_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(GoldenCaseError) as raised:
        read_case(tmp_path / "native" / "absent.json")
    assert raised.value.code == "unreadable"
