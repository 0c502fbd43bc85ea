"""Sources + precedence + provenance + warnings -> one `CallConfig`. (Stub: the config work replaces the body.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.config.call_config import CallConfig
from agent.settings import Settings


@dataclass(frozen=True, kw_only=True)
class CallSources:
    """The raw per-call inputs, exactly as the worker found them (strings, unparsed)."""

    job_metadata: str | None = None
    room_metadata: str | None = None
    caller_attributes: Mapping[str, str] = field(default_factory=dict)
    caller_metadata: str | None = None
    room_name: str | None = None


def resolve_call(sources: CallSources, *, settings: Settings) -> CallConfig:
    """Resolve one call's config. Never raises: unusable input yields the profile's config with warnings."""
    del sources
    return CallConfig(
        llm={"model": settings.llm_model},
        stt={"provider": settings.stt_provider},
        tts={"provider": settings.tts_provider},
    )
