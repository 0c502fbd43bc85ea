"""Sawt (``POST /api/v1/web-calls/connect``): the request body, or only its ``metadata`` object.

| Sawt field                    | canonical field             | notes                                          |
|-------------------------------|-----------------------------|------------------------------------------------|
| ``agentId``                   | ``agent_id``                | selects the profile                            |
| ``userRef``                   | ``call.user_ref``           | kept to ``[A-Za-z0-9._-]``, max 128            |
| ``metadata.promptVariables``  | ``variables``               | template variables                             |
| ``metadata.preCallVariables`` | ``call.pre_call_variables`` | apart for call events; templates use them too  |
| ``metadata.session_source``   | ``call.source``             |                                                |

Detected by ``agentId`` or ``userRef`` at the top, or by ``promptVariables`` / ``preCallVariables`` /
``session_source`` at the top (the metadata object alone) or inside ``metadata``. ``metadata`` may be JSON in a
string. Example (Sawt's documented body)::

    {"agentId": "e63355c6-cf51-40f3-b006-b615d9ab762d", "userRef": "user_12345",
     "metadata": {"promptVariables": {"customer_name": "Mohammed", "language": "Arabic"},
                  "preCallVariables": {"account_id": "ACC123"}, "session_source": "support_widget"}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import Field

from agent.config.diagnostics import warn
from agent.config.dialects._wire import (
    Converted,
    DialectSpec,
    NativeDocument,
    WireModel,
    decode_objects,
    parse_wire,
    put,
)

BODY_MARKERS = frozenset({"agentId", "userRef"})
METADATA_MARKERS = frozenset({"promptVariables", "preCallVariables", "session_source"})
MAX_USER_REF = 128
_USER_REF_DROP = re.compile(r"[^A-Za-z0-9._-]")


class SawtMetadata(WireModel):
    prompt_variables: dict[str, object] | None = Field(default=None, alias="promptVariables")
    pre_call_variables: dict[str, object] | None = Field(default=None, alias="preCallVariables")
    session_source: str | None = None


class SawtBody(WireModel):
    agent_id: str | None = Field(default=None, alias="agentId")
    user_ref: str | None = Field(default=None, alias="userRef")
    metadata: SawtMetadata | None = None


def matches(document: Mapping[str, object]) -> bool:
    if BODY_MARKERS & document.keys() or METADATA_MARKERS & document.keys():
        return True
    metadata = document.get("metadata")
    return isinstance(metadata, Mapping) and bool(METADATA_MARKERS & metadata.keys())


def convert(document: Mapping[str, object], *, source: str, trusted: bool) -> Converted:
    del trusted
    if "metadata" not in document and not BODY_MARKERS & document.keys():
        document = {"metadata": document}
    decoded, warnings = decode_objects(document, keys=("metadata",), source=source)
    body, wire_warnings = parse_wire(SawtBody, decoded, source=source)
    warnings += wire_warnings
    native: NativeDocument = {}
    put(native, "agent_id", body.agent_id)
    if body.user_ref is not None:
        user_ref = _USER_REF_DROP.sub("", body.user_ref)
        if len(user_ref) > MAX_USER_REF:
            warnings.append(warn("truncated", "userRef", source=source))
        put(native, "call.user_ref", user_ref[:MAX_USER_REF] or None)
    if body.metadata is not None:
        put(native, "variables", body.metadata.prompt_variables)
        put(native, "call.pre_call_variables", body.metadata.pre_call_variables)
        put(native, "call.source", body.metadata.session_source)
    return native, warnings


SPEC = DialectSpec(name="sawt", matches=matches, convert=convert)
