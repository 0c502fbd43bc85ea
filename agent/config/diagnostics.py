"""Warnings about per-call inputs: one constructor, static messages, fields safe to print.

A `ConfigWarning` travels into the resolved config, the resolve command's output and call events, so it must never
carry an input value. The message is chosen from a fixed table by code (plus the name of the source, which is ours);
the field is a dotted path whose components are reduced to a safe alphabet and length, because a path can contain
key names taken from the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from agent.config.call_config import ConfigWarning, WarningCode

_MESSAGES: Final[dict[WarningCode, str]] = {
    "unknown_agent": "no profile has this agent id; the default profile is used",
    "missing_variable": "template variable has no value and no fallback; rendered empty",
    "clamped": "value outside the range the provider or the deployment accepts; clamped",
    "invalid_value": "value has the wrong type or form; ignored",
    "ignored_field": "field is not part of this dialect; ignored",
    "not_allowed": "value may not come from this source, or is not on the allowlist; ignored",
    "caller_not_allowed": "the caller may not set this field (WEBCALL_CALLER_ALLOWED_FIELDS); ignored",
    "caller_overridden": "a trusted source sets this field; the caller's value is ignored",
    "invalid_metadata": "document is not a usable JSON object; ignored",
    "unknown_dialect": "document names a dialect that does not exist; ignored",
    "conflicting_dialect": "document carries the markers of several dialects; ignored",
    "unknown_knowledge_base": "knowledge base id is not known; ignored",
    "unsupported_language": "the speech-to-text provider cannot hear this language here; the primary is used",
    "unsupported_voice": "the voice cannot speak the call's language; a voice (or TTS provider) that can is used",
    "truncated": "value longer than allowed; truncated",
    "provider_unavailable": "provider has no credentials or is not installed here; an available provider is used",
}

_UNSAFE = re.compile(r"[^A-Za-z0-9_:-]")
_MAX_COMPONENT = 64
_MAX_COMPONENTS = 8


def safe_field(path: str | Iterable[str | int]) -> str:
    """A dotted path with every component reduced to ``[A-Za-z0-9_:-]`` and at most 64 characters."""
    parts = path.split(".") if isinstance(path, str) else [str(part) for part in path]
    cleaned = [_UNSAFE.sub("_", part)[:_MAX_COMPONENT] or "_" for part in parts[:_MAX_COMPONENTS]]
    return ".".join(cleaned)


def warn(code: WarningCode, field: str | Iterable[str | int], *, source: str | None = None) -> ConfigWarning:
    """A warning with the static message for `code`; `source` (ours, never input) is appended when given."""
    message = _MESSAGES[code] if source is None else f"{_MESSAGES[code]} ({source})"
    return ConfigWarning(code=code, field=safe_field(field), message=message)
