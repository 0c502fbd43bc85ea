"""The merged fields of one call while they are normalized: values with their sources, and the base to fall back to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from agent.config.call_config import ConfigWarning, Source, WarningCode
from agent.config.diagnostics import warn
from agent.config.fields import Gender

TRUSTED_AS_CONFIG: Final[frozenset[Source]] = frozenset({"default", "profile"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One field's value and the source that set it."""

    value: object
    source: Source


@dataclass
class Draft:
    """Merged fields and the base they fall back to, both as dotted field -> `Entry`."""

    fields: dict[str, Entry]
    base: dict[str, Entry]
    warnings: list[ConfigWarning] = field(default_factory=list)
    # The gender a ``tts.voice_gender`` asked for, once that is turned into a voice: a replacement voice keeps it.
    gender: Gender | None = None

    def value(self, path: str) -> object:
        return self.fields[path].value

    def text(self, path: str) -> str:
        return str(self.fields[path].value)

    def source(self, path: str) -> Source:
        return self.fields[path].source

    def trusted(self, path: str) -> bool:
        return self.source(path) in TRUSTED_AS_CONFIG

    def set(self, path: str, value: object, source: Source | None = None) -> None:
        self.fields[path] = Entry(value, self.source(path) if source is None else source)

    def fall_back(self, path: str) -> None:
        self.fields[path] = self.base[path]

    def refuse(self, path: str, code: WarningCode = "invalid_value") -> None:
        """Warn (unless the refused value is a built-in default) and fall back to the base value."""
        if self.source(path) != "default":
            self.warn(code, path)
        self.fall_back(path)

    def warn(self, code: WarningCode, path: str) -> None:
        self.warnings.append(warn(code, path, source=self.source(path)))
