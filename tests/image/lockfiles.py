"""Reading the two lock files and the runtime dependency closure the image needs, for the image tests."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
# The wheels of the runtime lock (`make setup` downloads them): the image's venv is built from them here, offline.
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
# Never in the image, whatever else changes (the list); the dev extra is added to it.
DEV_PACKAGES = frozenset({"pytest", "mypy", "ruff", "hypothesis", "aiortc", "playwright"})
# In the dev extra, and also required by livekit, livekit-api and livekit-protocol themselves (a stub package).
RUNTIME_TOO = frozenset({"types-protobuf"})


def pins(path: Path) -> dict[str, str]:
    """Canonical package name -> pinned version, from a requirements file (with or without hashes)."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def hashes(path: Path) -> dict[str, list[str]]:
    """Canonical package name -> its ``--hash`` values, from a hash-pinned requirements file."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        pinned = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if pinned:
            current = canonicalize_name(pinned.group(1))
            found[current] = []
        elif digest := re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", line):
            found[current].append(digest.group(1))
    return found


def project() -> dict[str, object]:
    table: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return table


def extra(name: str) -> list[str]:
    extras = project()["optional-dependencies"]
    assert isinstance(extras, dict)
    return list(extras[name])


def runtime_closure() -> set[str]:
    """Every package the runtime dependencies and the offline extra need on this platform (the image's), from the
    installed packages' metadata."""
    dependencies = project()["dependencies"]
    assert isinstance(dependencies, list)
    todo = [Requirement(raw) for raw in [*dependencies, *extra("offline")]]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for raw in distribution(requirement.name).requires or []:
            needed = Requirement(raw)
            wanted = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": name}) for name in wanted):
                todo.append(needed)
    return {name for name, _ in seen}


def dev_packages() -> set[str]:
    return {canonicalize_name(Requirement(raw).name) for raw in extra("dev")} - RUNTIME_TOO | DEV_PACKAGES
