"""The dialects: one module per platform plus native, an ordered registry, and detection.

`parse_document` is the parsing layer: text in, a partial native document out, or a typed error
(`MetadataError` for unusable JSON, `DialectError` for an unknown hint or conflicting markers). It is pure and
synchronous. Detection, in order:

1. an explicit top-level ``"dialect"`` hint wins (removed before conversion); an unknown name is a
   `DialectError` ``unknown_dialect``;
2. otherwise every dialect's ``matches()`` is asked: exactly one match is the dialect; several are a
   `DialectError` ``conflicting_dialect`` listing them (in registry order) as ``candidates``;
3. no match (the shared ``{agent_id, metadata}`` shape, or a bare metadata object) is read as the deployment's
   ``WEBCALL_DIALECT``, else as native.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agent.config.call_config import ConfigWarning
from agent.config.dialects import convoi, native, sawt, scaiwave, vaani, vyom
from agent.config.dialects._wire import DialectSpec, NativeDocument
from agent.config.documents import load_document
from agent.errors import DialectError
from agent.settings import Dialect

REGISTRY: tuple[DialectSpec, ...] = (sawt.SPEC, convoi.SPEC, vaani.SPEC, vyom.SPEC, scaiwave.SPEC, native.SPEC)
BY_NAME: dict[str, DialectSpec] = {spec.name: spec for spec in REGISTRY}
HINT_KEY = "dialect"


@dataclass(frozen=True, kw_only=True)
class ParsedDocument:
    """One metadata document, read: its dialect, its partial native form and what was not used as given."""

    dialect: Dialect
    document: NativeDocument
    warnings: tuple[ConfigWarning, ...]


def detect(document: Mapping[str, object], *, source: str, default: Dialect | None = None) -> DialectSpec:
    """The dialect of a document (see the module docstring for the order), or a `DialectError`."""
    if HINT_KEY in document:
        hint = document[HINT_KEY]
        spec = BY_NAME.get(hint.strip().lower()) if isinstance(hint, str) else None
        if spec is None:
            raise DialectError("unknown_dialect", source=source)
        return spec
    found = tuple(spec for spec in REGISTRY if spec.matches(document))
    if len(found) > 1:
        raise DialectError("conflicting_dialect", source=source, candidates=tuple(spec.name for spec in found))
    if found:
        return found[0]
    return BY_NAME[default or "native"]


def parse_document(
    text: str | bytes, *, source: str, default_dialect: Dialect | None = None, trusted: bool = True
) -> ParsedDocument:
    """Read one metadata document of any dialect. Raises only `MetadataError` and `DialectError`."""
    document = load_document(text, source=source)
    spec = detect(document, source=source, default=default_dialect)
    body = {key: value for key, value in document.items() if key != HINT_KEY}
    converted, warnings = spec.convert(body, source=source, trusted=trusted)
    return ParsedDocument(dialect=spec.name, document=converted, warnings=tuple(warnings))
