"""Agent profiles and the voice table: lookup, layering, caching, broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config.fields import LEAF_FIELDS
from agent.config.voices import load_voice_table
from agent.settings import Settings
from tests.config.conftest import REPO, MakeSettings, Resolve, codes

PROFILES = sorted((REPO / "config" / "agents").glob("*.yaml"))


def write_profiles(root: Path, **files: str) -> Path:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / "agents" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_every_shipped_profile_resolves_with_no_warning_but_variables_its_platform_fills(
    path: Path, resolve: Resolve
) -> None:
    config = resolve(job={"dialect": "native", "agent_id": path.stem})
    assert config.profile == path.stem
    assert {w.code for w in config.warnings} <= {"missing_variable"}
    assert config.instructions.strip()


def test_an_unknown_agent_gets_the_default_profile_and_a_warning(resolve: Resolve) -> None:
    config = resolve(job={"assistant_id": "no-such-agent"})
    assert (config.agent_id, config.profile) == ("no-such-agent", "default")
    assert codes(config) == [("unknown_agent", "agent_id")]


@pytest.mark.parametrize("agent_id", ["../agents/default", "../../etc/passwd", "default.yaml", "/etc/hosts", "DEFAULT"])
def test_an_agent_id_is_looked_up_by_name_never_used_as_a_path(agent_id: str, resolve: Resolve) -> None:
    config = resolve(job={"assistant_id": agent_id})
    assert config.profile == "default"
    assert codes(config) == [("unknown_agent", "agent_id")]


def test_no_agent_id_means_the_default_profile_without_warning(resolve: Resolve) -> None:
    config = resolve(job={"variables": {"a": "b"}})
    assert (config.agent_id, config.profile, config.warnings) == (None, "default", ())


def test_profiles_are_read_once_per_process(tmp_path: Path, make_settings: MakeSettings, resolve: Resolve) -> None:
    settings = make_settings(WEBCALL_CONFIG_DIR=str(write_profiles(tmp_path, default="tts: {speed: 1.1}\n")))
    assert resolve(with_settings=settings).tts.speed == 1.1
    write_profiles(tmp_path, default="tts: {speed: 1.3}\n")
    assert resolve(with_settings=settings).tts.speed == 1.1


def test_a_broken_profile_file_is_a_warning_and_the_default_still_applies(
    tmp_path: Path, make_settings: MakeSettings, resolve: Resolve
) -> None:
    root = write_profiles(tmp_path, default="tts: {speed: 1.1}\n", broken="tts: [unclosed\n", listy="- a\n- b\n")
    settings = make_settings(WEBCALL_CONFIG_DIR=str(root))
    for agent in ("broken", "listy"):
        config = resolve(job={"dialect": "native", "agent_id": agent}, with_settings=settings)
        assert config.tts.speed == 1.1
        assert codes(config) == [("invalid_value", "profile")]


def test_a_profiles_own_mistakes_are_reported_on_every_call(
    tmp_path: Path, make_settings: MakeSettings, resolve: Resolve
) -> None:
    root = write_profiles(tmp_path, default="tts: {speed: fast, tone: warm}\nagent_id: x\n")
    config = resolve(with_settings=make_settings(WEBCALL_CONFIG_DIR=str(root)))
    assert codes(config) == [
        ("ignored_field", "agent_id"),
        ("invalid_value", "tts.speed"),
        ("ignored_field", "tts.tone"),
    ]


def test_no_config_directory_means_built_in_defaults(
    tmp_path: Path, make_settings: MakeSettings, resolve: Resolve
) -> None:
    config = resolve(with_settings=make_settings(WEBCALL_CONFIG_DIR=str(tmp_path / "missing")))
    assert (config.profile, config.instructions, config.warnings) == ("default", "", ())


def test_provenance_names_a_source_for_every_field(resolve: Resolve) -> None:
    config = resolve(job={"variables": {"v": "1"}})
    expected = [f for f in LEAF_FIELDS if f != "variables"] + ["variables.v"]
    assert sorted(config.provenance) == sorted(expected)


def test_every_voice_in_the_shipped_table_is_on_the_default_allowlist(settings: Settings) -> None:
    table = load_voice_table(REPO / "config" / "voices.yaml")
    voices = {voice for rows in table.values() for row in rows.values() for voice in row.values()}
    assert voices
    assert voices <= set(Settings.model_fields["allowed_tts_voices"].default)
    assert set(table) == {"openai", "deepgram", "piper"}


def test_every_language_row_of_the_voice_table_has_both_genders() -> None:
    raw = yaml.safe_load((REPO / "config" / "voices.yaml").read_text(encoding="utf-8"))
    for provider, rows in raw.items():
        assert "default" in rows, provider
        for language, row in rows.items():
            assert set(row) == {"male", "female"}, (provider, language)


def test_a_missing_voice_table_keeps_the_profiles_voice(
    tmp_path: Path, make_settings: MakeSettings, resolve: Resolve
) -> None:
    root = write_profiles(tmp_path, default="tts: {voice: sage}\n")
    config = resolve(job={"tts": {"voice_gender": "male"}}, with_settings=make_settings(WEBCALL_CONFIG_DIR=str(root)))
    assert config.tts.voice == "sage"
