"""Agent profiles: ``<config_dir>/agents/<agent_id>.yaml`` native documents, plus ``default.yaml``.

The directory is read once per process (per directory) and kept. An agent id is looked up among the file names
found there, never joined into a path, so no id can reach outside the directory. A named profile is layered on
the default profile (it lists only what differs). A profile file that is not a YAML mapping is skipped with a
``ProfileError`` recorded for it; the resolver turns that into a warning. Profiles may carry a ``description``
for people; they cannot choose an ``agent_id`` or a ``dialect``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from agent.config.call_config import ConfigWarning
from agent.config.diagnostics import warn
from agent.config.fields import Leaves, flatten
from agent.errors import ProfileError

DEFAULT_PROFILE = "default"
_NOT_SETTABLE = ("dialect", "agent_id")


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    leaves: Leaves
    warnings: tuple[ConfigWarning, ...]


EMPTY_DEFAULT = Profile(name=DEFAULT_PROFILE, leaves={}, warnings=())


@lru_cache(maxsize=8)
def load_profiles(agents_dir: Path) -> Mapping[str, Profile | ProfileError]:
    """Every profile in `agents_dir`, by file stem; read once per directory and process."""
    if not agents_dir.is_dir():
        return {}
    found: dict[str, Profile | ProfileError] = {}
    for path in sorted(agents_dir.iterdir()):
        if path.suffix in (".yaml", ".yml") and path.is_file():
            found[path.stem] = _read(path)
    return found


def _read(path: Path) -> Profile | ProfileError:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ProfileError("unreadable_profile", source="profile")
    if document is None:
        document = {}
    if not isinstance(document, dict) or not all(isinstance(key, str) for key in document):
        return ProfileError("not_a_mapping", source="profile")
    document.pop("description", None)
    warnings = [warn("ignored_field", key, source="profile") for key in _NOT_SETTABLE if key in document]
    leaves, field_warnings = flatten({k: v for k, v in document.items() if k not in _NOT_SETTABLE}, source="profile")
    return Profile(name=path.stem, leaves=leaves, warnings=tuple(warnings + field_warnings))


def select_profile(agent_id: str | None, *, config_dir: Path) -> tuple[list[Profile], list[ConfigWarning]]:
    """The profiles to layer for `agent_id` (default first, then the agent's own) and any warnings.

    An unknown agent id gets the default profile and ``unknown_agent``; a broken profile file gets
    ``invalid_value`` on ``profile`` and is left out.
    """
    profiles = load_profiles((config_dir / "agents").resolve())
    warnings: list[ConfigWarning] = []
    chosen: list[Profile] = []
    names = [DEFAULT_PROFILE]
    if agent_id is not None and agent_id != DEFAULT_PROFILE:
        if agent_id in profiles:
            names.append(agent_id)
        else:
            warnings.append(warn("unknown_agent", "agent_id"))
    for name in names:
        profile = profiles.get(name)
        if isinstance(profile, ProfileError):
            warnings.append(warn("invalid_value", "profile"))
        elif profile is not None:
            chosen.append(profile)
            warnings.extend(profile.warnings)
    return chosen or [EMPTY_DEFAULT], warnings
