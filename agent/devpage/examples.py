"""The ``config/examples`` cases as payloads the dev page can dispatch.

Each case becomes ``{"id": "<dialect>/<name>", "dialect", "description", "job_metadata", "room_metadata",
"participant_metadata", "attributes", "room_name", "env"}``: the metadata as the text the worker would receive
(an object indented, a string verbatim as the resolve command sends it, e.g. a case of broken JSON), ``env`` the
``WEBCALL_*`` settings the case assumes of the deployment (the page says so; it cannot set them on a running worker).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def list_examples(directory: Path) -> list[dict[str, object]]:
    """Every readable case under `directory`, sorted by id; a file that is not a usable case is left out."""
    cases = []
    for path in sorted(directory.glob("*/*.json")):
        case = _case(path, dialect=path.parent.name)
        if case is not None:
            cases.append(case)
    return cases


def _case(path: Path, *, dialect: str) -> dict[str, object] | None:
    try:
        example = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(example, dict):
        return None
    attributes, env = example.get("attributes", {}), example.get("env", {})
    if not (_strings(attributes) and _strings(env)):
        return None
    description, room_name = example.get("description"), example.get("room_name")
    return {
        "id": f"{dialect}/{path.stem}",
        "dialect": dialect,
        "description": description if isinstance(description, str) else "",
        "job_metadata": editable(example.get("job_metadata")),
        "room_metadata": editable(example.get("room_metadata")),
        "participant_metadata": editable(example.get("participant_metadata")),
        "attributes": attributes,
        "room_name": room_name if isinstance(room_name, str) else None,
        "env": env,
    }


def editable(value: object) -> str:
    """A case's metadata as editor text: an object indented, a string (sent verbatim, e.g. broken JSON) as it is."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _strings(value: object) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
