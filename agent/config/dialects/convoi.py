"""Convoi (``POST /api/v1/public/calls``): the request body, or only its free-form ``metadata`` object.

| Convoi field                                | canonical field          | notes                                     |
|---------------------------------------------|--------------------------|-------------------------------------------|
| ``type``                                    | ``call.type``            | only ``"web"``                            |
| ``agent_id``                                | ``agent_id``             | selects the profile                       |
| ``participant_name``                        | ``call.participant_name``|                                           |
| ``agent_overrides.first_message``           | ``welcome.text``         | a template; sets ``welcome.mode`` "say"   |
| ``agent_overrides.system_prompt``           | ``instructions``         | a template                                |
| ``agent_overrides.llm.model``               | ``llm.model``            | allowlisted                               |
| ``agent_overrides.llm.temperature``         | ``llm.temperature``      | clamped to 0-2                            |
| ``agent_overrides.tts.voice_id``            | ``tts.voice``            | allowlisted                               |
| ``agent_overrides.tts.speed``               | ``tts.speed``            | clamped to the TTS provider's range       |
| ``agent_overrides.stt.language``            | ``language.primary``     | ``stt.language`` is derived from it       |
| ``agent_overrides.stt.model``               | ``stt.model``            | must fit the STT provider                 |
| ``agent_overrides.knowledge_base_ids``      | ``knowledge_base_ids``   |                                           |
| ``metadata``                                | ``call.metadata``        | verbatim, for call events                 |

Detected by ``agent_overrides`` or ``participant_name``, or ``"type": "web"``. The metadata object alone has no
markers: it is read as Convoi only with ``WEBCALL_DIALECT=convoi`` (a document with none of the body's keys is
then taken as the metadata object). ``agent_overrides`` and ``metadata`` may be JSON in a string. Example::

    {"type": "web", "agent_id": "agt_b88d642dd68747f28305c428b209xxxx", "participant_name": "xyz",
     "agent_overrides": {"first_message": "Hi, how can I help?", "system_prompt": "You are a concise support agent.",
                         "llm": {"model": "gpt-4o-mini", "temperature": 0.7}, "tts": {"voice_id": "rachel",
                         "speed": 1.0}, "stt": {"language": "en", "model": "nova-2"}, "knowledge_base_ids": ["kb_1"]},
     "metadata": {"source": "landing-page", "user_ref": "u_42"}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from agent.config.dialects._wire import (
    Converted,
    DialectSpec,
    NativeDocument,
    WireModel,
    decode_objects,
    parse_wire,
    put,
)

BODY_KEYS = frozenset({"type", "agent_id", "participant_name", "agent_overrides", "metadata"})


class ConvoiLlm(WireModel):
    model: str | None = None
    temperature: float | None = None


class ConvoiTts(WireModel):
    voice_id: str | None = None
    speed: float | None = None


class ConvoiStt(WireModel):
    language: str | None = None
    model: str | None = None


class ConvoiOverrides(WireModel):
    first_message: str | None = None
    system_prompt: str | None = None
    llm: ConvoiLlm | None = None
    tts: ConvoiTts | None = None
    stt: ConvoiStt | None = None
    knowledge_base_ids: list[str] | None = None


class ConvoiBody(WireModel):
    type: Literal["web"] | None = None
    agent_id: str | None = None
    participant_name: str | None = None
    agent_overrides: ConvoiOverrides | None = None
    metadata: dict[str, object] | None = None


def matches(document: Mapping[str, object]) -> bool:
    return "agent_overrides" in document or "participant_name" in document or document.get("type") == "web"


def convert(document: Mapping[str, object], *, source: str, trusted: bool) -> Converted:
    del trusted
    if not BODY_KEYS & document.keys():
        return {"call": {"metadata": dict(document)}}, []
    decoded, warnings = decode_objects(document, keys=("agent_overrides", "metadata"), source=source)
    body, wire_warnings = parse_wire(ConvoiBody, decoded, source=source)
    warnings += wire_warnings
    native: NativeDocument = {}
    put(native, "agent_id", body.agent_id)
    put(native, "call.type", body.type)
    put(native, "call.participant_name", body.participant_name)
    put(native, "call.metadata", body.metadata)
    overrides = body.agent_overrides or ConvoiOverrides()
    if overrides.first_message is not None:
        put(native, "welcome.text", overrides.first_message)
        put(native, "welcome.mode", "say")
    put(native, "instructions", overrides.system_prompt)
    put(native, "knowledge_base_ids", overrides.knowledge_base_ids)
    llm, tts, stt = overrides.llm or ConvoiLlm(), overrides.tts or ConvoiTts(), overrides.stt or ConvoiStt()
    put(native, "llm.model", llm.model)
    put(native, "llm.temperature", llm.temperature)
    put(native, "tts.voice", tts.voice_id)
    put(native, "tts.speed", tts.speed)
    put(native, "language.primary", stt.language)
    put(native, "stt.model", stt.model)
    return native, warnings


SPEC = DialectSpec(name="convoi", matches=matches, convert=convert)
