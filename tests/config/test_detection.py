"""Dialect detection: the hint, the markers, the deployment default, conflicts."""

from __future__ import annotations

import json

import pytest

from agent.config.dialects import REGISTRY, detect, parse_document
from agent.errors import DialectError
from agent.settings import Dialect
from tests.config.conftest import Resolve, codes

BODIES: dict[Dialect, dict[str, object]] = {
    "sawt": {"agentId": "a1"},
    "convoi": {"type": "web", "agent_id": "a1"},
    "vaani": {"agent_id": "a1", "voice_gender": "male"},
    "vyom": {"assistant_id": "a1"},
    "scaiwave": {"room_id": "r1", "type": "audio"},
    "native": {"agent_id": "a1", "tts": {"speed": 1.1}},
}
METADATA_ONLY: dict[Dialect, dict[str, object]] = {
    "sawt": {"promptVariables": {"customer_name": "Ada"}},
    "convoi": {"agent_overrides": {"first_message": "Hi"}},
    "vaani": {"primary_language": "hi"},
    "scaiwave": {"recording": {"transcript": True}},
    "native": {"variables": {"x": "1"}},
}


def test_the_registry_holds_every_dialect_once_in_documentation_order() -> None:
    assert [spec.name for spec in REGISTRY] == ["sawt", "convoi", "vaani", "vyom", "scaiwave", "native"]


@pytest.mark.parametrize(("dialect", "body"), BODIES.items(), ids=list(BODIES))
def test_each_dialect_is_detected_from_its_body(dialect: Dialect, body: dict[str, object]) -> None:
    assert detect(body, source="job_metadata").name == dialect


@pytest.mark.parametrize(("dialect", "body"), METADATA_ONLY.items(), ids=list(METADATA_ONLY))
def test_documents_with_markers_but_without_the_body_are_detected(dialect: Dialect, body: dict[str, object]) -> None:
    assert detect(body, source="job_metadata").name == dialect


def test_sawt_markers_inside_metadata_are_enough() -> None:
    assert detect({"metadata": {"session_source": "web"}}, source="job_metadata").name == "sawt"


def test_an_explicit_hint_wins_over_markers() -> None:
    assert detect({"dialect": "vaani", "assistant_id": "a1"}, source="job_metadata").name == "vaani"
    assert detect({"dialect": " Vyom "}, source="job_metadata").name == "vyom"


def test_an_unknown_hint_is_a_dialect_error() -> None:
    with pytest.raises(DialectError) as info:
        detect({"dialect": "teams"}, source="room_metadata")
    assert (info.value.code, info.value.source) == ("unknown_dialect", "room_metadata")


def test_the_hint_is_not_passed_on_as_a_field() -> None:
    parsed = parse_document(json.dumps({"dialect": "native", "variables": {"a": "b"}}), source="job_metadata")
    assert parsed.document == {"variables": {"a": "b"}}
    assert parsed.warnings == ()


def test_markers_of_two_dialects_are_a_conflict_naming_both() -> None:
    with pytest.raises(DialectError) as info:
        detect({"agentId": "a", "assistant_id": "b"}, source="job_metadata")
    assert info.value.code == "conflicting_dialect"
    assert info.value.candidates == ("sawt", "vyom")


def test_a_shape_without_markers_is_native_by_default() -> None:
    assert detect({"agent_id": "a1", "metadata": {"x": 1}}, source="job_metadata").name == "native"


def test_a_shape_without_markers_follows_the_deployment_default() -> None:
    assert detect({"agent_id": "a1", "metadata": {"x": 1}}, source="job_metadata", default="vaani").name == "vaani"


def test_the_deployment_default_does_not_override_markers() -> None:
    assert detect({"assistant_id": "a1"}, source="job_metadata", default="vaani").name == "vyom"


def test_resolve_turns_a_conflict_into_a_warning_and_ignores_the_document(resolve: Resolve) -> None:
    config = resolve(job={"agentId": "e63355c6-cf51-40f3-b006-b615d9ab762d", "assistant_id": "b"})
    assert codes(config) == [("conflicting_dialect", "job_metadata")]
    assert (config.profile, config.agent_id, config.dialect) == ("default", None, "native")


def test_resolve_turns_an_unknown_hint_into_a_warning(resolve: Resolve) -> None:
    config = resolve(job={"dialect": "teams", "agent_id": "x"})
    assert codes(config) == [("unknown_dialect", "job_metadata")]
    assert config.agent_id is None


def test_the_call_dialect_is_the_dispatch_documents_then_the_rooms(resolve: Resolve) -> None:
    assert resolve(job={"assistant_id": "a"}, room={"agentId": "b"}).dialect == "vyom"
    assert resolve(room={"agentId": "b"}).dialect == "sawt"
    assert resolve().dialect == "native"
