"""Knowledge-base ids: which `config/knowledge/<id>/` collections exist. The one place an id becomes a path.

The resolver uses it to warn `unknown_knowledge_base` (the call goes on without that collection); the knowledge
module uses it to find what to index. Ids never escape the knowledge root: anything but a short name of letters,
digits, `_`, `.` and `-` (not starting with a dot) is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from agent.config.call_config import ConfigWarning

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def knowledge_root(config_dir: Path) -> Path:
    return config_dir / "knowledge"


def collection_dir(collection_id: str, *, root: Path) -> Path | None:
    """The collection's directory, or None for an unknown or malformed id."""
    if not _ID_PATTERN.match(collection_id):
        return None
    directory = root / collection_id
    return directory if directory.is_dir() else None


def unknown_collection_warnings(ids: Iterable[str], *, root: Path) -> tuple[ConfigWarning, ...]:
    """One `unknown_knowledge_base` warning per id with no collection (the message names no id)."""
    return tuple(
        ConfigWarning(
            code="unknown_knowledge_base",
            field=f"knowledge_base_ids[{i}]",
            message="knowledge base id is not known; ignored",
        )
        for i, kb in enumerate(ids)
        if collection_dir(kb, root=root) is None
    )
