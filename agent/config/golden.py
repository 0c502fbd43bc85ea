"""Golden cases: the one reader of ``config/examples/<dialect>/<name>.json``.

A case holds a call's inputs as the platform sends them, the deployment's ``WEBCALL_*`` settings it needs, and the
config it must resolve to (``config/examples/README.md`` has the format)::

    {"description": "...", "env": {"WEBCALL_DIALECT": "vyom"},
     "job_metadata": {"assistant_id": "550e8400-..."}, "room_metadata": "{not json",
     "participant_metadata": {...}, "attributes": {"webcall.language": "es"}, "room_name": "scaiwave-c1",
     "expected": {"dialect": "vyom", ...}}

A document given as an object is sent as its JSON text, a string verbatim (broken JSON stays broken); an absent one
is ``None`` (not sent). What a LiveKit API needs instead of ``None`` (an empty metadata string) is the caller's
business (`GoldenCase.wire`). The config tests, the resolve command, the event tests, the e2e tests and
``python -m agent qa`` all read cases here. Pure: reads only the files it is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.config.resolve import CallSources
from agent.errors import ConfigError, GoldenCaseCode

INPUT_KEYS = frozenset({"job_metadata", "room_metadata", "participant_metadata", "attributes", "room_name"})
KEYS = INPUT_KEYS | {"description", "env", "expected"}
ENV_PREFIX = "WEBCALL_"
Document = Literal["job_metadata", "room_metadata", "participant_metadata"]


class GoldenCaseError(ConfigError):
    """A golden case file cannot be used; ``field`` names the key, the message never holds file contents."""

    code: GoldenCaseCode

    def __init__(self, code: GoldenCaseCode, *, field: str | None = None) -> None:
        super().__init__(code, source="golden_case", field=field)


@dataclass(frozen=True, kw_only=True)
class GoldenCase:
    """One golden case, read and checked; documents are the raw strings the worker would receive."""

    name: str
    """``<dialect>/<stem>``, the folder being the dialect (``native`` included)."""
    path: Path
    description: str = ""
    job_metadata: str | None = None
    room_metadata: str | None = None
    participant_metadata: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    room_name: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    expected: Mapping[str, object]
    """The resolved config as ``python -m agent resolve`` prints it."""

    @property
    def dialect(self) -> str:
        return self.path.parent.name

    def sources(self) -> CallSources:
        """The `CallSources` the worker would see for this call."""
        return CallSources(
            job_metadata=self.job_metadata,
            room_metadata=self.room_metadata,
            caller_metadata=self.participant_metadata,
            caller_attributes=dict(self.attributes),
            room_name=self.room_name,
        )

    def wire(self, document: Document) -> str:
        """A document as a LiveKit API field carries it: the text, or ``""`` when the case has none."""
        value: str | None = getattr(self, document)
        return value or ""

    def expected_welcome(self) -> str | None:
        welcome = self.expected.get("welcome")
        text = welcome.get("text") if isinstance(welcome, Mapping) else None
        return text if isinstance(text, str) else None


def read_case(path: Path) -> GoldenCase:
    """Read one case file. Raises `GoldenCaseError` when it is not JSON or not a case."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise GoldenCaseError("unreadable") from None
    return parse_case(data, path=path)


def parse_case(data: object, *, path: Path) -> GoldenCase:
    """A case from its parsed JSON (or YAML) ``data``; ``path`` names it. Raises `GoldenCaseError`."""
    if not isinstance(data, dict):
        raise GoldenCaseError("not_an_object")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise GoldenCaseError("unknown_key", field=unknown[0])
    if not INPUT_KEYS & set(data):
        raise GoldenCaseError("no_input")
    if "expected" not in data:
        raise GoldenCaseError("no_expected")
    expected = data["expected"]
    description = data.get("description", "")
    room_name = data.get("room_name")
    if not isinstance(expected, dict):
        raise GoldenCaseError("invalid_value", field="expected")
    if not isinstance(description, str):
        raise GoldenCaseError("invalid_value", field="description")
    if room_name is not None and not isinstance(room_name, str):
        raise GoldenCaseError("invalid_value", field="room_name")
    env = _strings(data.get("env", {}), key="env")
    if any(not name.startswith(ENV_PREFIX) for name in env):
        raise GoldenCaseError("invalid_value", field="env")
    return GoldenCase(
        name=f"{path.parent.name}/{path.stem}",
        path=path,
        description=description,
        job_metadata=_document(data, "job_metadata"),
        room_metadata=_document(data, "room_metadata"),
        participant_metadata=_document(data, "participant_metadata"),
        attributes=_strings(data.get("attributes", {}), key="attributes"),
        room_name=room_name,
        env=env,
        expected=expected,
    )


def read_cases(root: Path) -> list[GoldenCase]:
    """Every case under ``root`` (``<dialect>/<name>.json``), ordered by name."""
    return [read_case(path) for path in sorted(root.glob("*/*.json"))]


def _document(data: Mapping[str, object], key: Document) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _strings(value: object, *, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise GoldenCaseError("invalid_value", field=key)
    return {str(k): v for k, v in value.items()}
