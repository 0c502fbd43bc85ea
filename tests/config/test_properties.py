"""Property tests over arbitrary input: the parse layer raises only typed errors; resolve always yields a config."""

from __future__ import annotations

import json
import logging
from typing import get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.call_config import CallConfig
from agent.config.dialects import BY_NAME, parse_document
from agent.config.fields import flatten
from agent.config.resolve import CallSources, resolve_call
from agent.errors import DialectError, MetadataError
from agent.settings import Dialect, Settings
from tests.config.conftest import REPO
from tests.config.fuzzing import ErrorRecords

SETTINGS = Settings(_env_file=None, WEBCALL_CONFIG_DIR=str(REPO / "config"), WEBCALL_PROMPTS_DIR=str(REPO / "prompts"))

# Every key any dialect reads, at any level, so that generated documents reach every conversion with wrong types.
KEYS = sorted(
    {
        *("agentId", "userRef", "metadata", "promptVariables", "preCallVariables", "session_source"),
        *("type", "agent_id", "participant_name", "agent_overrides", "first_message", "system_prompt"),
        *("llm", "tts", "stt", "model", "temperature", "voice_id", "speed", "language", "knowledge_base_ids"),
        *("agent_name", "voice_gender", "primary_language", "secondary_language", "welcome_message"),
        *("welcome_interruptible", "bg_noise_enabled", "bg_noise_volume", "voice_speed", "websocket_url", "env_flag"),
        *("assistant_id", "call_id", "room_id", "recording", "audio", "video", "transcript", "livekit_room"),
        *("dialect", "instructions", "instructions_file", "welcome", "text", "mode", "interruptible", "ambience"),
        *("variables", "call", "chat", "limits", "voice", "provider", "primary", "secondary", "volume", "enabled"),
        *("reply_mode", "max_duration_s", "user_ref", "pre_call_variables", "recorded", "voice_gender"),
    }
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["male", "FEMALE", "web", "audio", "native", "vyom", "en", "hi-IN", "x.md", "scribe.md", "{{a}}"])
    | st.sampled_from(list(BY_NAME))
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)
SHAPED = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8)
HOSTILE = st.sampled_from(
    [
        '{"a": NaN}',
        '{"voice_speed": Infinity}',
        '{"a": 1e999}',
        "[" * 50_000,
        '{"a":' * 40 + "1" + "}" * 40,
        json.dumps({"agentId": "x", "userRef": "u" * 600_000}),
        json.dumps({"assistant_id": "x", "metadata": {"v": "w" * 400_000}}),
        '{"promptVariables": {"n": "\\ud800\\udc00\\udfff"}}',
        '{"agentId": "\\u0000\\u202e\\ufeff", "metadata": "{\\"promptVariables\\": [1]}"}',
        json.dumps(json.dumps({"type": "web", "agent_id": "a"})),
        "\x00\x01",
        "",
        "   ",
    ]
)
DOCUMENTS = st.one_of(
    JSON.map(json.dumps),
    SHAPED.map(json.dumps),
    SHAPED.map(lambda d: json.dumps(json.dumps(d))),
    st.text(),
    HOSTILE,
)
ATTRIBUTE_KEYS = (
    st.text(max_size=30)
    | st.sampled_from(["webcall.tts.speed", "webcall.language", "webcall.variables.a", "webcall.tts", "webcall."])
    | st.text(max_size=20).map(lambda s: "webcall." + s)
)
PROPERTY_SETTINGS = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(text=DOCUMENTS, trusted=st.booleans(), default=st.sampled_from([None, *get_args(Dialect)]))
def test_the_parse_layer_raises_only_typed_errors(text: str, trusted: bool, default: Dialect | None) -> None:
    error: MetadataError | DialectError | None = None
    try:
        parsed = parse_document(text, source="job_metadata", default_dialect=default, trusted=trusted)
    except (MetadataError, DialectError) as exc:
        error = exc
    if error is not None:
        assert error.source == "job_metadata"
        return
    assert parsed.dialect in BY_NAME
    flatten(parsed.document, source="job_metadata")


@PROPERTY_SETTINGS
@given(
    job=st.none() | DOCUMENTS,
    room=st.none() | DOCUMENTS,
    participant=st.none() | DOCUMENTS,
    attributes=st.dictionaries(ATTRIBUTE_KEYS, st.text(max_size=40), max_size=6),
    room_name=st.none() | st.text(max_size=40) | st.text(max_size=20).map(lambda s: "scaiwave-" + s),
)
def test_resolve_always_yields_a_valid_config(
    job: str | None, room: str | None, participant: str | None, attributes: dict[str, str], room_name: str | None
) -> None:
    errors = ErrorRecords()
    logger = logging.getLogger("webcall.config.resolve")
    logger.addHandler(errors)
    try:
        config = resolve_call(
            CallSources(
                job_metadata=job,
                room_metadata=room,
                caller_metadata=participant,
                caller_attributes=attributes,
                room_name=room_name,
            ),
            settings=SETTINGS,
        )
    finally:
        logger.removeHandler(errors)
    # The last-resort fallback in resolve_call is for bugs: no input may reach it.
    assert errors.records == []
    assert isinstance(config, CallConfig)
    text = config.model_dump_json()
    text.encode("utf-8")
    assert CallConfig.model_validate_json(text) == config
    assert set(config.provenance) >= {"tts.speed", "stt.language", "instructions"}
