"""Vyom (``POST /web_call/get_token``): the request body, or only its ``metadata`` object.

| Vyom field       | canonical field                  | notes                                                     |
|------------------|----------------------------------|-----------------------------------------------------------|
| ``assistant_id`` | ``agent_id``                     | selects the profile                                       |
| ``metadata``     | ``variables``, ``call.metadata`` | each entry fills the prompt placeholder of its name; also |
|                  |                                  | kept verbatim for call events                             |

Vyom's metadata exists to fill placeholders, so an entry that cannot be a variable (an object, a list, a bad name)
is reported as ``invalid_value``. Detected by ``assistant_id``. The metadata object alone has no markers: it is read
as Vyom only with ``WEBCALL_DIALECT=vyom`` (a document without ``assistant_id`` and ``metadata`` is then taken as the
metadata object). ``metadata`` may be JSON in a string. Example (Vyom's documented body)::

    {"assistant_id": "550e8400-e29b-41d4-a716-446655440000", "metadata": {"name": "John Doe", "plan": "premium"}}
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.dialects._wire import (
    Converted,
    DialectSpec,
    NativeDocument,
    WireModel,
    decode_objects,
    parse_wire,
    put,
)


class VyomBody(WireModel):
    assistant_id: str | None = None
    metadata: dict[str, object] | None = None


def matches(document: Mapping[str, object]) -> bool:
    return "assistant_id" in document


def convert(document: Mapping[str, object], *, source: str, trusted: bool) -> Converted:
    del trusted
    if not {"assistant_id", "metadata"} & document.keys():
        document = {"metadata": document}
    decoded, warnings = decode_objects(document, keys=("metadata",), source=source)
    body, wire_warnings = parse_wire(VyomBody, decoded, source=source)
    warnings += wire_warnings
    native: NativeDocument = {}
    put(native, "agent_id", body.assistant_id)
    put(native, "variables", body.metadata)
    put(native, "call.metadata", body.metadata)
    return native, warnings


SPEC = DialectSpec(name="vyom", matches=matches, convert=convert)
