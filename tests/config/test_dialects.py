"""Each dialect's mapping, beyond what the golden examples show."""

from __future__ import annotations

import json

import pytest

from agent.config.dialects import parse_document
from agent.config.dialects.scaiwave import call_id_from_room
from tests.config.conftest import MakeSettings, Resolve, codes

VAANI_AGENT = "d083374a-c167-4bda-b8bc-2a418ca85f35"


def parse(document: object, *, trusted: bool = True) -> tuple[dict[str, object], list[tuple[str, str]]]:
    parsed = parse_document(json.dumps(document), source="job_metadata", trusted=trusted)
    return parsed.document, [(w.code, w.field) for w in parsed.warnings]


def test_sawt_user_ref_keeps_safe_characters_and_is_cut_at_128() -> None:
    document, warnings = parse({"agentId": "a", "userRef": "ü" + "a.b-c_d" * 30})
    call = document["call"]
    assert isinstance(call, dict)
    assert call["user_ref"] == ("a.b-c_d" * 30)[:128]
    assert warnings == [("truncated", "userRef")]


def test_sawt_metadata_may_be_json_in_a_string() -> None:
    document, warnings = parse({"agentId": "a", "metadata": json.dumps({"promptVariables": {"x": "1"}})})
    assert document["variables"] == {"x": "1"}
    assert warnings == []


def test_sawt_metadata_with_unknown_keys_reports_them() -> None:
    _, warnings = parse({"agentId": "a", "metadata": {"promptVariables": {}, "colour": "red"}})
    assert warnings == [("ignored_field", "metadata.colour")]


def test_a_wrong_type_drops_only_that_field() -> None:
    document, warnings = parse({"agentId": "a", "userRef": 12, "metadata": {"session_source": "w"}})
    assert warnings == [("invalid_value", "userRef")]
    assert document == {"agent_id": "a", "call": {"source": "w"}}


def test_convoi_overrides_may_be_json_in_a_string() -> None:
    document, _ = parse({"type": "web", "agent_id": "a", "agent_overrides": json.dumps({"tts": {"speed": 1.2}})})
    assert document["tts"] == {"speed": 1.2}


def test_convoi_type_other_than_web_is_invalid() -> None:
    _, warnings = parse({"agent_id": "a", "participant_name": "p", "type": "phone"})
    assert warnings == [("invalid_value", "type")]


def test_convoi_metadata_object_alone_is_kept_verbatim() -> None:
    parsed = parse_document(json.dumps({"source": "x", "n": [1]}), source="room_metadata", default_dialect="convoi")
    assert parsed.document == {"call": {"metadata": {"source": "x", "n": [1]}}}


def test_vaani_defaults_fill_a_trusted_whole_body() -> None:
    document, _ = parse({"dialect": "vaani", "agent_id": VAANI_AGENT})
    assert document["language"] == {"primary": "hi", "secondary": "en"}
    assert document["tts"] == {"voice_gender": "female", "speed": 1.0}
    assert document["ambience"] == {"enabled": False, "volume": 0.6}
    assert document["welcome"] == {"interruptible": True}


def test_vaani_defaults_do_not_fill_the_callers_document() -> None:
    document, _ = parse({"agent_id": VAANI_AGENT, "voice_speed": 1.2}, trusted=False)
    assert document == {"agent_id": VAANI_AGENT, "tts": {"speed": 1.2}}


def test_vaani_defaults_do_not_fill_a_partial_document() -> None:
    document, _ = parse({"voice_speed": 1.2})
    assert document == {"tts": {"speed": 1.2}}


def test_vaani_agent_id_wins_over_agent_name() -> None:
    document, _ = parse({"agent_id": "by-id", "agent_name": "by-name"}, trusted=False)
    assert document["agent_id"] == "by-id"


def test_vaani_voice_gender_ignores_case_and_refuses_other_values() -> None:
    assert parse({"voice_gender": " MALE "})[0]["tts"] == {"voice_gender": "male"}
    assert parse({"voice_gender": "robot"})[1] == [("invalid_value", "voice_gender")]


@pytest.mark.parametrize(
    ("volume", "expected", "warned"), [(0, 0.0, False), (100, 1.0, False), (-5, 0.0, True), (250, 1.0, True)]
)
def test_vaani_noise_volume_is_0_to_100_and_becomes_0_to_1(volume: int, expected: float, warned: bool) -> None:
    document, warnings = parse({"bg_noise_volume": volume})
    assert document["ambience"] == {"volume": expected}
    assert (("clamped", "bg_noise_volume") in warnings) is warned


def test_vaani_voice_speed_is_held_to_its_own_range() -> None:
    assert parse({"voice_speed": 0.2})[0]["tts"] == {"speed": 0.6}
    assert parse({"voice_speed": 1.0})[0]["tts"] == {"speed": 1.0}


def test_vaani_voice_gender_picks_the_voice_for_the_tts_provider_and_language(
    resolve: Resolve, make_settings: MakeSettings
) -> None:
    hindi = resolve(job={"agent_id": VAANI_AGENT, "voice_gender": "female", "primary_language": "hi"})
    assert hindi.tts.voice == "shimmer"
    deepgram = make_settings(WEBCALL_TTS_PROVIDER="deepgram")
    english = {"agent_id": VAANI_AGENT, "voice_gender": "male", "primary_language": "en"}
    male = resolve(job=english, with_settings=deepgram)
    assert (male.tts.voice, male.tts.model) == ("aura-2-apollo-en", "aura-2-apollo-en")
    # The Vaani profile is Hindi: no Deepgram voice speaks it, so the call's TTS moves to one that does.
    hindi_male = resolve(job={"agent_id": VAANI_AGENT, "voice_gender": "male"}, with_settings=deepgram)
    assert (hindi_male.tts.provider, hindi_male.tts.voice) == ("openai", "ash")


def test_vaani_websocket_url_is_recorded_not_obeyed(resolve: Resolve) -> None:
    config = resolve(job={"agent_id": VAANI_AGENT, "websocket_url": "wss://elsewhere.example"})
    assert config.call.recorded == {"websocket_url": "wss://elsewhere.example"}


def test_vyom_metadata_fills_variables_and_is_kept_for_events() -> None:
    document, _ = parse({"assistant_id": "a", "metadata": {"name": "N", "age": 41, "vip": True}})
    assert document["variables"] == {"name": "N", "age": 41, "vip": True}
    assert document["call"] == {"metadata": {"name": "N", "age": 41, "vip": True}}


def test_vyom_numbers_and_booleans_become_text_variables(resolve: Resolve) -> None:
    config = resolve(job={"assistant_id": "x", "metadata": {"age": 41, "vip": True, "score": 2.5}})
    assert config.variables == {"age": "41", "score": "2.5", "vip": "true"}


def test_scaiwave_top_level_recording_flags_are_accepted() -> None:
    document, _ = parse({"dialect": "scaiwave", "audio": True, "transcript": True})
    assert document["call"] == {"recording": {"audio": True, "transcript": True}, "transcript": True}


def test_scaiwave_livekit_room_gives_the_call_id() -> None:
    document, _ = parse({"livekit_room": "scaiwave-call-1"})
    assert document["call"] == {"call_id": "call-1"}


@pytest.mark.parametrize(
    ("room", "call_id"),
    [("scaiwave-call-1", "call-1"), ("scaiwave-", None), ("other-call-1", None), ("scaiwave-../x", None), (None, None)],
)
def test_a_call_id_is_read_only_from_a_well_formed_scaiwave_room_name(room: str | None, call_id: str | None) -> None:
    assert call_id_from_room(room) == call_id


def test_the_room_name_does_not_set_a_call_id_for_other_dialects(resolve: Resolve) -> None:
    config = resolve(job={"agentId": "a"}, room_name="scaiwave-call-1")
    assert (config.dialect, config.call.call_id) == ("sawt", None)


def test_scaiwave_metadata_call_id_wins_over_the_room_name(resolve: Resolve) -> None:
    config = resolve(room={"call_id": "call-from-metadata"}, room_name="scaiwave-call-from-name")
    assert config.call.call_id == "call-from-metadata"
    assert config.provenance["call.call_id"] == "room_metadata"


def test_native_language_may_be_a_plain_code(resolve: Resolve) -> None:
    assert resolve(job={"language": "fr", "agent_id": "x"}).language.primary == "fr"


def test_native_unknown_and_computed_keys_are_ignored_fields(resolve: Resolve) -> None:
    config = resolve(job={"tts": {"speed": 1.1, "pitch": 2}, "provenance": {}, "stt": {"language": "multi"}})
    assert ("ignored_field", "tts.pitch") in codes(config)
    assert ("ignored_field", "provenance") in codes(config)
    assert ("ignored_field", "stt.language") in codes(config)
    assert config.tts.speed == 1.1


def test_a_named_voice_wins_over_a_voice_gender_in_the_same_document(resolve: Resolve) -> None:
    for tts in ({"voice": "sage", "voice_gender": "male"}, {"voice_gender": "male", "voice": "sage"}):
        config = resolve(job={"tts": tts})
        assert config.tts.voice == "sage"
        assert codes(config) == [("ignored_field", "tts.voice_gender")]
