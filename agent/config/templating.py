"""Prompt templates: ``{{name}}`` and ``{{name | fallback}}`` over a call's variables.

One pass of one regular expression over the template: a value is inserted as data and never read as a template
itself (no recursion), nothing is evaluated, and text that is not a well-formed tag (``{``, ``{}``, ``{{ a b }}``,
JSON examples) is left exactly as written. Inserted values lose control characters and are cut to
`MAX_VALUE_CHARS`. A name with no value renders its fallback; with no fallback either it renders empty and is
reported back to the caller, who turns it into a ``missing_variable`` warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

MAX_VALUE_CHARS: Final = 1_000
TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]{0,63})\s*(?:\|([^{}]*?))?\s*\}\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]


def render(template: str, variables: Mapping[str, str]) -> Rendered:
    """`template` with every tag replaced by its variable's value, its fallback, or nothing."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        value = variables.get(name)
        if value:
            return _CONTROL.sub(" ", value)[:MAX_VALUE_CHARS]
        if fallback is not None:
            return fallback.strip()
        if value is None:
            missing.append(name)
        return ""

    text = TAG.sub(substitute, template)
    return Rendered(text=text, missing=tuple(dict.fromkeys(missing)))
