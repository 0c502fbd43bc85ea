"""Knowledge-base ids: unknown ones warn `unknown_knowledge_base` and the call goes on."""

from __future__ import annotations

from tests.config.conftest import Resolve


def _overrides(*ids: str) -> dict[str, object]:
    return {"type": "web", "agent_id": "a", "agent_overrides": {"knowledge_base_ids": list(ids)}}


def test_a_known_collection_resolves_without_a_warning(resolve: Resolve) -> None:
    config = resolve(job=_overrides("clinic"))
    assert config.knowledge_base_ids == ("clinic",)
    assert not [w for w in config.warnings if w.code == "unknown_knowledge_base"]


def test_an_unknown_collection_warns_at_its_position_and_keeps_the_others(resolve: Resolve) -> None:
    config = resolve(job=_overrides("clinic", "kb_missing"))
    warnings = [w for w in config.warnings if w.code == "unknown_knowledge_base"]
    assert [w.field for w in warnings] == ["knowledge_base_ids[1]"]
    assert "kb_missing" not in warnings[0].message
    assert "clinic" in config.knowledge_base_ids


def test_an_id_that_tries_to_leave_the_knowledge_directory_is_unknown(resolve: Resolve) -> None:
    config = resolve(job=_overrides("../agents", "/etc", ".hidden"))
    fields = [w.field for w in config.warnings if w.code == "unknown_knowledge_base"]
    assert fields == ["knowledge_base_ids[0]", "knowledge_base_ids[1]", "knowledge_base_ids[2]"]
