"""The voice table, ``<config_dir>/voices.yaml``: provider -> language (or ``default``) -> gender -> voice.

Read once per process and kept. A malformed table, or a missing row, yields None: the caller then keeps the
voice it had (the profile's) rather than failing the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml

from agent.config.fields import Gender
from agent.providers import base_language

VoiceTable = Mapping[str, Mapping[str, Mapping[str, str]]]


@lru_cache(maxsize=4)
def load_voice_table(path: Path) -> VoiceTable:
    """The table at `path`, keeping only well-formed rows; empty when the file is missing or not YAML."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    if not isinstance(raw, dict):
        return {}
    table: dict[str, dict[str, dict[str, str]]] = {}
    for provider, rows in raw.items():
        if not isinstance(rows, dict):
            continue
        table[str(provider)] = {
            str(language): {str(g): v for g, v in row.items() if isinstance(v, str)}
            for language, row in rows.items()
            if isinstance(row, dict)
        }
    return table


def voice_for(table: VoiceTable, *, provider: str, language: str, gender: Gender) -> str | None:
    """The voice for a provider, language and gender: the language's row, its base language's, then ``default``."""
    rows = table.get(provider, {})
    for key in (language, base_language(language), "default"):
        voice = rows.get(key, {}).get(gender)
        if voice:
            return voice
    return None
