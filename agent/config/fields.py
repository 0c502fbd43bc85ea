"""The canonical fields an input may set, and the flattening of a partial native document into validated leaves.

A *native document* is a (partial) nested JSON object in the shape of `CallConfig` (see `dialects/native.py`);
every dialect converts to one. `flatten` walks it against `CallConfig`'s own schema and returns *leaves*: dotted
field -> validated value, which the resolver layers by precedence. Variables are one leaf per name
(``variables.customer_name``) so that sources merge name by name; ``call.metadata``, ``call.pre_call_variables``,
``call.recorded`` and ``knowledge_base_ids`` are one leaf each. ``stt.language`` is derived (from ``language`` and
the STT provider), never set.

Two input-only keys stand for values the resolver completes later, when the winning source is known:
``instructions_file`` (a file in ``prompts/``, becomes `PromptFile`) and ``tts.voice_gender`` (``male`` |
``female``, becomes `VoiceByGender`, looked up in ``config/voices.yaml`` for the final provider and language).

Rules: a key the schema does not have -> ``ignored_field``; a value of the wrong type or form -> ``invalid_value``
(dropped; other fields stay); ``null`` clears a nullable field and is skipped elsewhere; strings lose control
characters (instructions and welcome keep newlines and tabs) and are cut to a per-field length with ``truncated``.
Ranges that depend on the provider (``llm.temperature``, ``tts.speed``, ``ambience.volume``) are only type-checked
here; `normalize` clamps them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from agent.config.call_config import CallConfig, ConfigWarning
from agent.config.diagnostics import warn

Leaves = dict[str, object]
Gender = Literal["male", "female"]


@dataclass(frozen=True)
class PromptFile:
    """Instructions to be read from ``prompts/<name>``."""

    name: str


@dataclass(frozen=True)
class VoiceByGender:
    """A voice to be chosen from the voice table for the call's final TTS provider and language."""

    gender: Gender


# Not settable from any input: chosen by the resolver or computed.
_COMPUTED: Final = frozenset({"dialect", "profile", "provenance", "warnings"})
# Derived by `normalize` from other fields (``stt.language`` from the languages and the STT provider).
DERIVED: Final = frozenset({"stt.language"})
# Range checked (and clamped with a warning) by `normalize`, per provider.
CLAMPED: Final = frozenset({"llm.temperature", "tts.speed", "ambience.volume"})
VARIABLE_MAPS: Final = frozenset({"variables", "call.pre_call_variables", "call.recorded"})
MULTILINE: Final = frozenset({"instructions", "welcome.text"})
MAX_CHARS: Final[dict[str, int]] = {
    "instructions": 32_000,
    "welcome.text": 2_000,
    "agent_id": 128,
    "call.user_ref": 128,
}
MAX_SHORT_CHARS: Final = 256
MAX_VARIABLE_CHARS: Final = 1_000
MAX_VARIABLES: Final = 128
MAX_KNOWLEDGE_BASES: Final = 32
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
PROMPT_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\.(md|txt)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _schema(model: type[BaseModel], prefix: str) -> tuple[dict[str, TypeAdapter[Any]], set[str]]:
    leaves: dict[str, TypeAdapter[Any]] = {}
    groups: set[str] = set()
    for name, info in model.model_fields.items():
        path = prefix + name
        if path in _COMPUTED:
            continue
        annotation: Any = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            groups.add(path)
            sub_leaves, sub_groups = _schema(annotation, path + ".")
            leaves.update(sub_leaves)
            groups.update(sub_groups)
        elif path in CLAMPED or not info.metadata:
            leaves[path] = TypeAdapter(annotation)
        else:
            leaves[path] = TypeAdapter(Annotated[annotation, *info.metadata])
    return leaves, groups


LEAF_TYPES, GROUPS = _schema(CallConfig, "")
# Every leaf field of the resolved config, in schema order: the keys of `provenance`.
LEAF_FIELDS: Final[tuple[str, ...]] = tuple(LEAF_TYPES)
# The paths of the schema itself: a warning's field that is not one names a key an input chose.
CANONICAL_FIELDS: Final = frozenset(LEAF_FIELDS) | GROUPS | VARIABLE_MAPS


def names_input_key(field: str) -> bool:
    """Whether a warning's `field` names a key an input chose (a variable's name, an unknown key), which may be
    caller data, rather than a path of the schema."""
    return field not in CANONICAL_FIELDS


def field_without_input_key(field: str) -> str:
    """`field` when it is a path of the schema; else the schema path it sits under with ``*`` for the key the input
    chose (``variables.*``, ``tts.*``), or ``*`` at the top level."""
    if not names_input_key(field):
        return field
    parts = field.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in GROUPS or prefix in VARIABLE_MAPS:
            return f"{prefix}.*"
    return "*"


@dataclass
class _Walk:
    source: str
    leaves: Leaves
    warnings: list[ConfigWarning]

    def invalid(self, path: str) -> None:
        self.warnings.append(warn("invalid_value", path, source=self.source))


def flatten(document: Mapping[str, object], *, source: str) -> tuple[Leaves, list[ConfigWarning]]:
    """Validated leaves of a partial native document, with a warning for everything not used as given."""
    walk = _Walk(source=source, leaves={}, warnings=[])
    if "instructions" in document and "instructions_file" in document:
        # Both in one document: the text given inline wins, whatever the key order.
        document = {key: value for key, value in document.items() if key != "instructions_file"}
        walk.warnings.append(warn("ignored_field", "instructions_file", source=source))
    _walk_group(document, prefix="", walk=walk)
    return walk.leaves, walk.warnings


def _walk_group(document: Mapping[str, object], *, prefix: str, walk: _Walk) -> None:
    for key, value in document.items():
        path = prefix + key
        if path in GROUPS:
            if isinstance(value, Mapping):
                _walk_group(value, prefix=path + ".", walk=walk)
            elif value is not None:
                walk.invalid(path)
        elif path in VARIABLE_MAPS:
            _walk_variables(value, path=path, walk=walk)
        elif path in LEAF_TYPES and path not in DERIVED:
            _walk_leaf(value, path=path, walk=walk)
        elif path == "instructions_file":
            _walk_prompt_file(value, walk=walk)
        elif path == "tts.voice_gender":
            if "voice" in document:
                # A named voice in the same document wins, whatever the key order.
                walk.warnings.append(warn("ignored_field", path, source=walk.source))
            elif value in ("male", "female"):
                walk.leaves["tts.voice"] = VoiceByGender(gender="male" if value == "male" else "female")
            elif value is not None:
                walk.invalid(path)
        else:
            walk.warnings.append(warn("ignored_field", path, source=walk.source))


def _walk_leaf(value: object, *, path: str, walk: _Walk) -> None:
    adapter = LEAF_TYPES[path]
    if value is None:
        if _nullable(adapter):
            walk.leaves[path] = None
        return
    try:
        checked = adapter.validate_python(value)
    except ValidationError:
        walk.invalid(path)
        return
    if isinstance(checked, float) and not math.isfinite(checked):
        walk.invalid(path)
        return
    if isinstance(checked, str):
        cleaned = _clean_text(checked, path=path, walk=walk)
        if cleaned is None:
            return
        checked = cleaned
    elif path == "knowledge_base_ids":
        checked = _knowledge_base_ids(checked, walk=walk)
    walk.leaves[path] = checked


def _clean_text(text: str, *, path: str, walk: _Walk) -> str | None:
    if path in MULTILINE:
        text = _CONTROL_KEEP_LINES.sub("", text)
    else:
        text = _CONTROL.sub("", text).strip()
        if not text:
            walk.invalid(path)
            return None
    limit = MAX_CHARS.get(path, MAX_SHORT_CHARS)
    if len(text) > limit:
        walk.warnings.append(warn("truncated", path, source=walk.source))
        text = text[:limit]
    return text


def _knowledge_base_ids(ids: tuple[str, ...], *, walk: _Walk) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(kb for kb in (_CONTROL.sub("", i).strip() for i in ids) if kb))
    if len(cleaned) > MAX_KNOWLEDGE_BASES or any(len(kb) > MAX_SHORT_CHARS for kb in cleaned):
        walk.warnings.append(warn("truncated", "knowledge_base_ids", source=walk.source))
    return tuple(kb[:MAX_SHORT_CHARS] for kb in cleaned[:MAX_KNOWLEDGE_BASES])


def _walk_variables(value: object, *, path: str, walk: _Walk) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        walk.invalid(path)
        return
    accepted: dict[str, str] = {}
    for name, raw in value.items():
        text = variable_text(raw)
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name) or text is None:
            if raw is not None:
                walk.invalid(f"{path}.{name}")
            continue
        if len(accepted) == MAX_VARIABLES:
            walk.warnings.append(warn("truncated", path, source=walk.source))
            break
        if len(text) > MAX_VARIABLE_CHARS:
            walk.warnings.append(warn("truncated", f"{path}.{name}", source=walk.source))
            text = text[:MAX_VARIABLE_CHARS]
        accepted[name] = text
    if path == "variables":
        walk.leaves.update({f"variables.{name}": text for name, text in accepted.items()})
    elif accepted or not value:
        walk.leaves[path] = accepted


def variable_text(value: object) -> str | None:
    """A variable's text: strings (control characters become spaces), numbers and booleans; else None."""
    if isinstance(value, str):
        return " ".join(_CONTROL.sub(" ", value).split())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def _walk_prompt_file(value: object, *, walk: _Walk) -> None:
    if isinstance(value, str) and PROMPT_FILE_NAME.fullmatch(value) and ".." not in value:
        walk.leaves["instructions"] = PromptFile(name=value)
    elif value is not None:
        walk.invalid("instructions_file")


def _nullable(adapter: TypeAdapter[Any]) -> bool:
    try:
        adapter.validate_python(None)
    except ValidationError:
        return False
    return True
