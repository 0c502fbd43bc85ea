"""ScaiWave (``POST /v1/calls/initiate`` and the recording options): the call the agent joins.

| ScaiWave field                  | canonical field        | notes                                            |
|---------------------------------|------------------------|--------------------------------------------------|
| ``call_id``                     | ``call.call_id``       | also from the room name, see below               |
| ``room_id``                     | ``call.room_id``       | the ScaiWave room, not the LiveKit one           |
| ``type``                        | ``call.type``          | ``audio`` or ``video``                           |
| ``recording.audio/video``       | ``call.recording.*``   | also at the top level (``recording/start`` body) |
| ``recording.transcript``        | ``call.recording.transcript``, ``call.transcript`` | true: the agent is the scribe |
| ``livekit_room``                | ``call.call_id``       | ``scaiwave-<call_id>``, when no ``call_id``      |
| ``agent_id``                    | ``agent_id``           | webcall-agent's addition (ScaiWave has none)     |

ScaiWave names its LiveKit rooms ``scaiwave-<call_id>``: with no metadata at all, or ScaiWave metadata, the
resolver takes ``call.call_id`` from the room name (source ``room_name``, below any metadata). Detected by
``call_id``, ``room_id``, ``recording`` or ``livekit_room``, or ``type`` ``audio``/``video``. Example::

    {"call_id": "call-7f3a", "room_id": "room-42", "type": "video",
     "recording": {"audio": true, "video": false, "transcript": true}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from agent.config.dialects._wire import Converted, DialectSpec, NativeDocument, WireModel, parse_wire, put

MARKERS = frozenset({"call_id", "room_id", "recording", "livekit_room"})
ROOM_PREFIX = "scaiwave-"
_CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class ScaiWaveRecording(WireModel):
    audio: bool | None = None
    video: bool | None = None
    transcript: bool | None = None


class ScaiWaveBody(ScaiWaveRecording):
    call_id: str | None = None
    room_id: str | None = None
    type: Literal["audio", "video"] | None = None
    recording: ScaiWaveRecording | None = None
    livekit_room: str | None = None
    agent_id: str | None = None


def matches(document: Mapping[str, object]) -> bool:
    return bool(MARKERS & document.keys()) or document.get("type") in ("audio", "video")


def call_id_from_room(room_name: str | None) -> str | None:
    """The call id in a ScaiWave room name (``scaiwave-<call_id>``), or None."""
    if room_name is None or not room_name.startswith(ROOM_PREFIX):
        return None
    call_id = room_name[len(ROOM_PREFIX) :]
    return call_id if _CALL_ID.fullmatch(call_id) else None


def convert(document: Mapping[str, object], *, source: str, trusted: bool) -> Converted:
    del trusted
    body, warnings = parse_wire(ScaiWaveBody, document, source=source)
    native: NativeDocument = {}
    put(native, "agent_id", body.agent_id)
    put(native, "call.call_id", body.call_id or call_id_from_room(body.livekit_room))
    put(native, "call.room_id", body.room_id)
    put(native, "call.type", body.type)
    nested = body.recording or ScaiWaveRecording()
    for flag in ("audio", "video", "transcript"):
        put(native, f"call.recording.{flag}", _first(getattr(nested, flag), getattr(body, flag)))
    put(native, "call.transcript", _first(nested.transcript, body.transcript))
    return native, warnings


def _first(*values: bool | None) -> bool | None:
    return next((value for value in values if value is not None), None)


SPEC = DialectSpec(name="scaiwave", matches=matches, convert=convert)
