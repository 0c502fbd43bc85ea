"""Prompt files: ``<prompts_dir>/<name>`` (``.md`` or ``.txt``), read once per process and kept.

A name is a plain file name (no directories, no ``..``) checked against a pattern before it touches the file
system, and the resolved path must still lie in the prompts directory. A missing or unreadable file is a
`TemplateError` ``prompt_file_not_found`` whose message does not repeat the name.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from agent.config.fields import PROMPT_FILE_NAME
from agent.errors import TemplateError


def read_prompt(name: str, *, prompts_dir: Path) -> str:
    """The text of one prompt file, or `TemplateError`."""
    if not PROMPT_FILE_NAME.fullmatch(name) or ".." in name:
        raise TemplateError("invalid_prompt_file_name")
    return _read(prompts_dir.resolve(), name)


@lru_cache(maxsize=64)
def _read(prompts_dir: Path, name: str) -> str:
    path = (prompts_dir / name).resolve()
    if path.parent != prompts_dir:
        raise TemplateError("invalid_prompt_file_name")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise TemplateError("prompt_file_not_found") from None
