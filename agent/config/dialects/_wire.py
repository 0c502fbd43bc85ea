"""What every dialect module shares: the lenient wire model, its parse, and the native document it builds.

`parse_wire` validates a vendor document against a `WireModel` and never fails: each value pydantic rejects is
removed (with an ``invalid_value`` warning at its vendor path) and the rest is validated again, so one bad field
never costs the call the others. Keys the model does not know are reported as ``ignored_field``; pydantic itself
ignores them (``extra="ignore"``). Locations are kept from pydantic's errors, never inputs or messages.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.config.call_config import ConfigWarning
from agent.config.diagnostics import warn
from agent.config.documents import nested_object
from agent.config.fields import VARIABLE_NAME
from agent.errors import MetadataError
from agent.settings import Dialect

NativeDocument = dict[str, object]
Converted = tuple[NativeDocument, list[ConfigWarning]]
M = TypeVar("M", bound="WireModel")
# Each pass removes at least one rejected value; a document has only so many levels to peel.
_MAX_PASSES = 8


class WireModel(BaseModel):
    """A vendor's shape: every field optional, vendor spellings as aliases, unknown keys ignored (and reported)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class Convert(Protocol):
    """A dialect's pure conversion of one document (its ``dialect`` hint removed) to a partial native document.

    ``trusted`` is true for room and dispatch metadata (set by the platform's server) and false for the caller's
    participant metadata.
    """

    def __call__(self, document: Mapping[str, object], *, source: str, trusted: bool) -> Converted: ...


@dataclass(frozen=True, kw_only=True)
class DialectSpec:
    """One dialect: its name, its detection predicate and its conversion to a native document."""

    name: Dialect
    matches: Callable[[Mapping[str, object]], bool]
    convert: Convert


def parse_wire(model: type[M], data: Mapping[str, object], *, source: str) -> tuple[M, list[ConfigWarning]]:
    """Validate `data` as `model`, dropping (and reporting) what does not fit; never raises."""
    warnings = [warn("ignored_field", path, source=source) for path in unknown_keys(model, data)]
    current: dict[str, object] = copy.deepcopy(dict(data))
    for _ in range(_MAX_PASSES):
        try:
            return model.model_validate(current), warnings
        except ValidationError as exc:
            for path in _removal_paths(current, exc):
                _remove(current, path)
                warnings.append(warn("invalid_value", path or ("document",), source=source))
    return model.model_validate({}), warnings


def unknown_keys(
    model: type[BaseModel], data: Mapping[str, object], prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Paths of the keys in `data` that `model` (and its nested wire models) do not declare."""
    known: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        known[info.alias or name] = _wire_submodel(info.annotation)
    found: list[tuple[str, ...]] = []
    for key, value in data.items():
        if key not in known:
            found.append((*prefix, key))
            continue
        sub = known[key]
        if sub is not None and isinstance(value, Mapping):
            found.extend(unknown_keys(sub, value, (*prefix, key)))
    return found


def _wire_submodel(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, WireModel):
            return candidate
    return None


def _removal_paths(data: dict[str, object], exc: ValidationError) -> list[tuple[str, ...]]:
    """For each error, the longest existing key path along its location (union tags and list indexes stop it)."""
    paths: set[tuple[str, ...]] = set()
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        node: object = data
        path: list[str] = []
        for part in error["loc"]:
            if not (isinstance(node, dict) and isinstance(part, str) and part in node):
                break
            path.append(part)
            node = node[part]
        paths.add(tuple(path))
    # Removing a key removes everything under it: keep only the shortest of nested paths.
    ordered = sorted(paths, key=len)
    return [p for i, p in enumerate(ordered) if not any(p[: len(q)] == q for q in ordered[:i])]


def _remove(data: dict[str, object], path: tuple[str, ...]) -> None:
    if not path:
        data.clear()
        return
    node: object = data
    for part in path[:-1]:
        assert isinstance(node, dict)
        node = node[part]
    assert isinstance(node, dict)
    node.pop(path[-1], None)


def decode_objects(
    data: Mapping[str, object], *, keys: Sequence[str], source: str
) -> tuple[dict[str, object], list[ConfigWarning]]:
    """`data` with each of `keys` that holds JSON in a string replaced by the object (or dropped, with a warning)."""
    decoded = dict(data)
    warnings: list[ConfigWarning] = []
    for key in keys:
        value = decoded.get(key)
        if isinstance(value, str):
            try:
                decoded[key] = nested_object(value, source=source)
            except MetadataError:
                del decoded[key]
                warnings.append(warn("invalid_value", key, source=source))
    return decoded, warnings


def put(document: NativeDocument, path: str, value: object) -> None:
    """Set a dotted path in a native document, creating the groups on the way; `None` values are skipped."""
    if value is not None:
        set_path(document, path, value)


def set_path(document: dict[str, object], path: str, value: object) -> None:
    """Set a dotted path in a nested document, creating the groups on the way (`None` is set too)."""
    *groups, leaf = path.split(".")
    node = document
    for group in groups:
        child = node.setdefault(group, {})
        assert isinstance(child, dict)
        node = child
    node[leaf] = value


def scalar_items(mapping: Mapping[str, object] | None) -> dict[str, object]:
    """The entries of a free-form object that can be template variables (well-named strings, numbers, booleans)."""
    if not mapping:
        return {}
    return {k: v for k, v in mapping.items() if isinstance(v, str | int | float) and VARIABLE_NAME.fullmatch(k)}
