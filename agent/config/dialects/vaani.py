"""Vaani (``POST /api/webrtc/token``): the request body, or only its free-form ``metadata`` object.

| Vaani field               | canonical field                  | notes                                         |
|---------------------------|----------------------------------|-----------------------------------------------|
| ``agent_id``              | ``agent_id``                     | selects the profile; wins over ``agent_name`` |
| ``agent_name``            | ``agent_id``                     | when there is no ``agent_id``                 |
| ``voice_gender``          | ``tts.voice``                    | via ``config/voices.yaml``; default female    |
| ``primary_language``      | ``language.primary``             | default ``hi``                                |
| ``secondary_language``    | ``language.secondary``           | default ``en``; see ``stt.language``          |
| ``welcome_message``       | ``welcome.text``                 | a template; sets ``welcome.mode`` "say"       |
| ``welcome_interruptible`` | ``welcome.interruptible``        | default true                                  |
| ``bg_noise_enabled``      | ``ambience.enabled``             | default false                                 |
| ``bg_noise_volume``       | ``ambience.volume``              | 0-100 (``clamped``) -> 0..1; default 60       |
| ``voice_speed``           | ``tts.speed``                    | 0.6-1.4 (``clamped``); default 1.0            |
| ``websocket_url``         | ``call.recorded.websocket_url``  | recorded, never obeyed                        |
| ``env_flag``              | ``call.recorded.env_flag``       | recorded, never obeyed                        |
| ``metadata``              | ``call.metadata``, ``variables`` | verbatim; scalar entries are variables too    |

``voice_gender`` picks the voice for the call's final TTS provider and primary language. ``voice_speed`` is then
also held to the provider's range. ``websocket_url`` is not obeyed: the worker's LiveKit URL is a process setting.

Vaani's documented defaults are applied as if sent, for a whole body (one with ``agent_id`` or ``agent_name``)
from room or dispatch metadata; partial documents and the caller's metadata set only what they contain.
Detected by any Vaani-only key (all of the above except ``agent_id`` and ``metadata``). The metadata object alone
has no markers: it is read as Vaani only with ``WEBCALL_DIALECT=vaani``. Example (Vaani's documented body)::

    {"agent_id": "d083374a-c167-4bda-b8bc-2a418ca85f35", "voice_gender": "female", "primary_language": "en",
     "welcome_message": "Hello! How can I help you today?"}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BeforeValidator

from agent.config.call_config import ConfigWarning
from agent.config.diagnostics import warn
from agent.config.dialects._wire import (
    Converted,
    DialectSpec,
    NativeDocument,
    WireModel,
    decode_objects,
    parse_wire,
    put,
    scalar_items,
)

MARKERS = frozenset(
    {
        "agent_name",
        "voice_gender",
        "primary_language",
        "secondary_language",
        "welcome_message",
        "welcome_interruptible",
        "bg_noise_enabled",
        "bg_noise_volume",
        "voice_speed",
        "websocket_url",
        "env_flag",
    }
)
SPEED_RANGE = (0.6, 1.4)
VOLUME_RANGE = (0.0, 100.0)
DEFAULTS: dict[str, object] = {
    "voice_gender": "female",
    "primary_language": "hi",
    "secondary_language": "en",
    "welcome_interruptible": True,
    "bg_noise_enabled": False,
    "bg_noise_volume": 60,
    "voice_speed": 1.0,
}


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


class VaaniBody(WireModel):
    agent_id: str | None = None
    agent_name: str | None = None
    voice_gender: Annotated[Literal["male", "female"], BeforeValidator(_lower)] | None = None
    primary_language: str | None = None
    secondary_language: str | None = None
    welcome_message: str | None = None
    welcome_interruptible: bool | None = None
    bg_noise_enabled: bool | None = None
    bg_noise_volume: float | None = None
    voice_speed: float | None = None
    websocket_url: str | None = None
    env_flag: str | None = None
    metadata: dict[str, object] | None = None


def matches(document: Mapping[str, object]) -> bool:
    return bool(MARKERS & document.keys())


def convert(document: Mapping[str, object], *, source: str, trusted: bool) -> Converted:
    if not (MARKERS | {"agent_id", "metadata"}) & document.keys():
        document = {"metadata": document}
    elif trusted and ("agent_id" in document or "agent_name" in document):
        document = {**DEFAULTS, **{k: v for k, v in document.items() if v is not None}}
    decoded, warnings = decode_objects(document, keys=("metadata",), source=source)
    body, wire_warnings = parse_wire(VaaniBody, decoded, source=source)
    warnings += wire_warnings
    native: NativeDocument = {}
    put(native, "agent_id", body.agent_id or body.agent_name)
    put(native, "tts.voice_gender", body.voice_gender)
    put(native, "language.primary", body.primary_language)
    put(native, "language.secondary", body.secondary_language)
    if body.welcome_message is not None:
        put(native, "welcome.text", body.welcome_message)
        put(native, "welcome.mode", "say")
    put(native, "welcome.interruptible", body.welcome_interruptible)
    put(native, "ambience.enabled", body.bg_noise_enabled)
    if body.bg_noise_volume is not None:
        volume = _clamp(body.bg_noise_volume, VOLUME_RANGE, field="bg_noise_volume", source=source, into=warnings)
        put(native, "ambience.volume", round(volume / 100.0, 4))
    if body.voice_speed is not None:
        put(
            native,
            "tts.speed",
            _clamp(body.voice_speed, SPEED_RANGE, field="voice_speed", source=source, into=warnings),
        )
    recorded = {"websocket_url": body.websocket_url, "env_flag": body.env_flag}
    put(native, "call.recorded", {k: v for k, v in recorded.items() if v is not None} or None)
    put(native, "call.metadata", body.metadata)
    put(native, "variables", scalar_items(body.metadata) or None)
    return native, warnings


def _clamp(value: float, bounds: tuple[float, float], *, field: str, source: str, into: list[ConfigWarning]) -> float:
    low, high = bounds
    if low <= value <= high:
        return value
    into.append(warn("clamped", field, source=source))
    return min(max(value, low), high)


SPEC = DialectSpec(name="vaani", matches=matches, convert=convert)
