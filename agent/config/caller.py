"""What the caller may set: participant attributes and participant metadata, cut down to an allowlist.

The browser can set its own participant's attributes and metadata, so nothing from there is trusted. Two inputs:

- **Attributes** (LiveKit attributes are ``str -> str``). Only keys under ``webcall.`` are read; the rest belong
  to the application or LiveKit and are left alone. After the prefix comes the canonical dotted field:
  ``webcall.variables.<name>``, ``webcall.language`` (= ``language.primary``), ``webcall.language.secondary``,
  ``webcall.tts.speed``... Values are strings and are converted to the field's type (``"1.2"``, ``"true"``).
- **Participant metadata**: a JSON document in any dialect, read like room and dispatch metadata (but without
  Vaani's defaults), e.g. ``{"promptVariables": {"customer_name": "Ada"}}``.

Both become leaves with source ``caller``; attributes win over participant metadata. A leaf is kept only when its
field is on ``WEBCALL_CALLER_ALLOWED_FIELDS`` (default ``language,tts.speed``); an entry allows the field itself
and everything under it (``language`` allows ``language.primary`` and ``language.secondary``). Variables are named
one by one (``variables.customer_name``): no entry covers every variable, so the caller sets none by default.
Everything else is dropped with ``caller_not_allowed``: instructions, models, voices, the agent id.

A kept leaf only fills a field that no trusted source (profile, room name, room or dispatch metadata) sets; where
one does, the caller's value is dropped with ``caller_overridden`` (`overridden_leaves`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from agent.config.call_config import ConfigWarning
from agent.config.diagnostics import warn
from agent.config.fields import Leaves

ATTRIBUTE_PREFIX = "webcall."
_SHORTHANDS = {"language": "language.primary"}


def attributes_document(attributes: Mapping[str, str]) -> tuple[dict[str, object], list[ConfigWarning]]:
    """The ``webcall.*`` attributes as a partial native document (string values)."""
    document: dict[str, object] = {}
    warnings: list[ConfigWarning] = []
    for key in sorted(attributes):
        if not key.startswith(ATTRIBUTE_PREFIX):
            continue
        path = key[len(ATTRIBUTE_PREFIX) :]
        path = _SHORTHANDS.get(path, path)
        parts = ["variables", path[len("variables.") :]] if path.startswith("variables.") else path.split(".")
        if not _place(document, parts, attributes[key]):
            warnings.append(warn("invalid_value", path, source="caller"))
    return document, warnings


def _place(document: dict[str, object], parts: list[str], value: str) -> bool:
    """Put `value` at `parts`; False when the path runs into a value already placed (``tts`` and ``tts.speed``)."""
    node = document
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict) or not part:
            return False
        node = child
    if parts[-1] in node or not parts[-1]:
        return False
    node[parts[-1]] = value
    return True


def is_allowed(path: str, allowed: Iterable[str]) -> bool:
    """Whether the dotted field `path` is covered by an allowlist entry (the field itself or a parent group).

    A variable is covered only by its own entry (``variables.<name>``), never by a group.
    """
    if path.startswith("variables."):
        return path in tuple(allowed)
    return any(path == entry or path.startswith(entry + ".") for entry in allowed)


def allowed_leaves(leaves: Leaves, *, allowed: Iterable[str]) -> tuple[Leaves, list[ConfigWarning]]:
    """The caller's leaves that the allowlist covers, and a ``caller_not_allowed`` warning for each of the others."""
    allowed = tuple(allowed)
    kept = {path: value for path, value in leaves.items() if is_allowed(path, allowed)}
    refused = [warn("caller_not_allowed", path, source="caller") for path in leaves if path not in kept]
    return kept, refused


def overridden_leaves(leaves: Leaves, *, trusted: Iterable[Leaves]) -> tuple[Leaves, list[ConfigWarning]]:
    """The caller's leaves that no trusted source sets, and a ``caller_overridden`` warning for each of the others."""
    taken = set().union(*(set(layer) for layer in trusted))
    kept = {path: value for path, value in leaves.items() if path not in taken}
    overridden = [warn("caller_overridden", path, source="caller") for path in leaves if path in taken]
    return kept, overridden
