"""The framework's private names this project relies on, in one place, pinned to one livekit-agents version.

livekit-agents has no public API for these, and a private name can change in any release without notice; each is
reached only through this module, and ``tests/worker/test_framework.py`` fails loudly when `FRAMEWORK_VERSION`
is not the installed version or a name moved, so an upgrade is a deliberate, reviewed step.

- `warm_tls`: builds the TLS context of the framework's shared aiohttp session now (``http_context`` caches it per
  process); otherwise the first call of a job process pays for parsing the CA bundle on its event loop.
- `run_worker`: runs an `AgentServer` as ``livekit.agents`` ``start``/``dev`` do (logging, signals, drain). The
  public `cli.run_app` parses its own command line and discovers the server by module, which would hide our
  subcommands and settings check.
- `fallback_members`: the providers of a ``FallbackAdapter`` chain, first the one it tries first. A mid-call voice or
  language change goes to that one; the adapter keeps its list private and has no ``update_options`` of its own.
- `strip_markup`: TTS markup removed exactly as the framework's transcript sinks remove it (its
  ``TranscriptMarkupStripper``), so a typed reply shows what a spoken one's transcript shows.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from livekit.agents import AgentServer, stt, tts
from livekit.agents.cli import cli as framework_cli
from livekit.agents.cli import proto
from livekit.agents.tts._provider_format import TranscriptMarkupStripper
from livekit.agents.utils import http_context

FRAMEWORK_VERSION: Final = "1.8.9"


def warm_tls() -> None:
    """Build (and cache) the TLS context of the framework's per-process HTTP session."""
    http_context._create_ssl_context()


def run_worker(server: AgentServer, *, log_level: str, log_format: Literal["json", "colored"], dev: bool) -> None:
    """Run `server` until it is told to stop, as the framework's own ``start`` (or ``dev``) command does."""
    framework_cli._run_worker(server, proto.CliArgs(log_level=log_level, log_format=log_format, dev=dev))


def fallback_members(adapter: tts.FallbackAdapter | stt.FallbackAdapter) -> tuple[Any, ...]:
    """The providers of a fallback chain in the order it tries them (``tts.TTS`` or ``stt.STT`` objects)."""
    if isinstance(adapter, tts.FallbackAdapter):
        return tuple(adapter._tts_instances)
    return tuple(adapter._stt_instances)


def strip_markup(text: str) -> str:
    """The visible text of a reply: TTS markup removed as the framework's transcript sinks remove it."""
    stripper = TranscriptMarkupStripper()
    return (stripper.push(text) + stripper.flush()).strip()
