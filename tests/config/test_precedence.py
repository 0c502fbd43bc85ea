"""Precedence, one rule per test: default < profile < room_name < room_metadata < job_metadata < caller."""

from __future__ import annotations

from tests.config.conftest import Resolve

CONVOI_AGENT = "agt_b88d642dd68747f28305c428b209xxxx"  # its profile sets llm.temperature 0.5 and tts.voice coral


def test_the_profile_overrides_the_built_in_default(resolve: Resolve) -> None:
    config = resolve(job={"type": "web", "agent_id": CONVOI_AGENT})
    assert config.llm.temperature == 0.5
    assert config.provenance["llm.temperature"] == "profile"


def test_the_agents_profile_overrides_the_default_profile(resolve: Resolve) -> None:
    default = resolve()
    agent = resolve(job={"type": "web", "agent_id": CONVOI_AGENT})
    assert default.welcome.text == "Hello! How can I help you today?"
    assert agent.welcome.text == "Hi! Thanks for stopping by. What can I help you with?"


def test_the_default_profile_fills_what_the_agents_profile_leaves_out(resolve: Resolve) -> None:
    config = resolve(job={"type": "web", "agent_id": CONVOI_AGENT})
    assert config.limits.max_duration_s == 1800
    assert config.provenance["limits.max_duration_s"] == "profile"


def test_the_room_name_overrides_the_built_in_default(resolve: Resolve) -> None:
    config = resolve(room_name="scaiwave-call-1")
    assert config.call.call_id == "call-1"
    assert config.provenance["call.call_id"] == "room_name"


def test_room_metadata_overrides_the_room_name(resolve: Resolve) -> None:
    config = resolve(room={"call_id": "call-2"}, room_name="scaiwave-call-1")
    assert config.call.call_id == "call-2"
    assert config.provenance["call.call_id"] == "room_metadata"


def test_room_metadata_overrides_the_profile(resolve: Resolve) -> None:
    config = resolve(room={"agent_id": CONVOI_AGENT, "llm": {"temperature": 0.9}})
    assert config.llm.temperature == 0.9
    assert config.provenance["llm.temperature"] == "room_metadata"


def test_job_metadata_overrides_room_metadata(resolve: Resolve) -> None:
    config = resolve(room={"tts": {"speed": 1.1}}, job={"tts": {"speed": 1.2}})
    assert config.tts.speed == 1.2
    assert config.provenance["tts.speed"] == "job_metadata"


def test_the_caller_overrides_job_metadata_for_an_allowed_field(resolve: Resolve) -> None:
    config = resolve(job={"tts": {"speed": 1.2}}, attributes={"webcall.tts.speed": "1.3"})
    assert config.tts.speed == 1.3
    assert config.provenance["tts.speed"] == "caller"


def test_the_caller_does_not_override_a_field_that_is_not_allowed(resolve: Resolve) -> None:
    config = resolve(job={"tts": {"voice": "nova"}}, attributes={"webcall.tts.voice": "onyx"})
    assert config.tts.voice == "nova"
    assert config.provenance["tts.voice"] == "job_metadata"


def test_caller_attributes_override_caller_metadata(resolve: Resolve) -> None:
    config = resolve(
        participant={"variables": {"name": "from-metadata"}}, attributes={"webcall.variables.name": "attr"}
    )
    assert config.variables["name"] == "attr"


def test_variables_merge_name_by_name_across_sources(resolve: Resolve) -> None:
    config = resolve(
        room={"variables": {"a": "room", "b": "room"}},
        job={"variables": {"b": "job", "c": "job"}},
        attributes={"webcall.variables.c": "caller"},
    )
    assert config.variables == {"a": "room", "b": "job", "c": "caller"}
    assert [config.provenance[f"variables.{n}"] for n in "abc"] == ["room_metadata", "job_metadata", "caller"]


def test_the_agent_id_from_dispatch_wins_over_the_rooms(resolve: Resolve) -> None:
    config = resolve(room={"agent_id": "scribe", "tts": {"speed": 1.0}}, job={"agent_id": CONVOI_AGENT, "tts": {}})
    assert (config.agent_id, config.profile) == (CONVOI_AGENT, CONVOI_AGENT)


def test_a_value_refused_by_the_allowlist_falls_back_to_the_profile_not_a_lower_source(resolve: Resolve) -> None:
    config = resolve(room={"llm": {"model": "gpt-4o"}}, job={"llm": {"model": "not-on-the-list"}})
    assert config.llm.model == "gpt-4o-mini"
    assert config.provenance["llm.model"] == "default"
