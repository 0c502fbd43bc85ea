"""The framework's private names this project relies on, in one place, pinned to one livekit-agents version.

livekit-agents has no public API for these, and a private name can change in any release without notice; each is
reached only through this module, and ``tests/worker/test_framework.py`` fails loudly when `FRAMEWORK_VERSION`
is not the installed version or a name moved, so an upgrade is a deliberate, reviewed step.

- `warm_rtc`: loads and starts the WebRTC library of this process now (livekit-rtc's ``FfiClient``, in a private
  module); otherwise the first room of a job process does, on the call's event loop.
- `warm_tls`: builds the TLS context of the framework's shared aiohttp session now (``http_context`` caches it per
  process); otherwise the first call of a job process pays for parsing the CA bundle on its event loop.
- `setup_logging`: the framework's log handler (JSON or colored), as its ``start``/``dev`` commands install it. The
  worker runs its own loop and signals (`agent.drain`): the framework's runner exits at the second signal with no
  goodbye, and the public `cli.run_app` parses its own command line, which would hide our subcommands.
- `job_process_ids`: the process ids of the job processes running a call, which `agent.drain` signals to say goodbye;
  the server lists its processes only in its private pool.
- `fallback_members`: the providers of a ``FallbackAdapter`` chain, first the one it tries first. A mid-call voice or
  language change goes to that one; the adapter keeps its list private and has no ``update_options`` of its own.
- `strip_markup`: TTS markup removed exactly as the framework's transcript sinks remove it (its
  ``TranscriptMarkupStripper``), so a typed reply shows what a spoken one's transcript shows.
- `registered`, `gave_up`: whether the worker holds a registered connection to LiveKit now, and whether it stopped
  trying. The server emits ``worker_registered`` but no event when the connection drops or when it gives up; its
  health handler reads the same two flags.
- `job_processes`: the pool's job processes (pid, and whether one runs a call), for their memory (`agent.metrics`).
- `on_job_process_exit`: calls back in the main process when a job process that ran a call has exited (its job, pid
  and exit code), so the main process can end the call's record for a process that died (`agent.events.orphans`).
  The pool emits ``process_closed`` for it, but the server keeps its pool private and emits nothing of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from livekit.agents import AgentServer, llm, stt, tts
from livekit.agents.cli import log as framework_log
from livekit.agents.ipc.job_proc_executor import ProcJobExecutor
from livekit.agents.tts._provider_format import TranscriptMarkupStripper
from livekit.agents.utils import http_context
from livekit.rtc._ffi_client import FfiClient

FRAMEWORK_VERSION: Final = "1.8.9"


def warm_rtc() -> None:
    """Load and initialize this process's WebRTC FFI library (livekit-rtc makes it on first use otherwise)."""
    FfiClient.instance  # noqa: B018 - the property's side effect is the point


def warm_tls() -> None:
    """Build (and cache) the TLS context of the framework's per-process HTTP session."""
    http_context._create_ssl_context()


def setup_logging(*, log_level: str, log_format: Literal["json", "colored"]) -> None:
    """The root log handler on stdout, as ``livekit.agents start`` (JSON) or ``dev`` (colored) sets it up."""
    framework_log.setup_logging(log_level, devmode=log_format == "colored", console=False)


def job_process_ids(server: AgentServer) -> list[int]:
    """The process ids of the job processes running a call (console and simulated jobs left out)."""
    return [process.pid for process in job_processes(server) if process.running_job]


def fallback_members(adapter: tts.FallbackAdapter | stt.FallbackAdapter | llm.FallbackAdapter) -> tuple[Any, ...]:
    """The providers of a fallback chain in the order it tries them (``tts.TTS``, ``stt.STT`` or ``llm.LLM``)."""
    if isinstance(adapter, tts.FallbackAdapter):
        return tuple(adapter._tts_instances)
    if isinstance(adapter, llm.FallbackAdapter):
        return tuple(adapter._llm_instances)
    return tuple(adapter._stt_instances)


def strip_markup(text: str) -> str:
    """The visible text of a reply: TTS markup removed as the framework's transcript sinks remove it."""
    stripper = TranscriptMarkupStripper()
    return (stripper.push(text) + stripper.flush()).strip()


def registered(server: AgentServer) -> bool:
    """True while `server` is registered with LiveKit: registered once, and not reconnecting, closed or given up."""
    return (
        server.id != "unregistered" and not server._connecting and not server._connection_failed and not server._closed
    )


def gave_up(server: AgentServer) -> bool:
    """True once `server` stopped reconnecting to LiveKit (after ``max_retry`` failed attempts in a row)."""
    return bool(server._connection_failed)


@dataclass(frozen=True, kw_only=True)
class JobProcess:
    """One process of the framework's job pool; `running_job` for a real call (console and simulated jobs left out)."""

    pid: int
    running_job: bool


def job_processes(server: AgentServer) -> list[JobProcess]:
    """The started job processes of a running `server` (an unstarted one has no pid yet)."""
    pool = getattr(server, "_proc_pool", None)  # made when the server starts running
    if pool is None:
        return []
    return [
        JobProcess(pid=proc.pid, running_job=proc.running_job is not None and not proc.running_job.fake_job)
        for proc in pool.processes
        if isinstance(proc, ProcJobExecutor) and proc.pid is not None
    ]


@dataclass(frozen=True, kw_only=True)
class ExitedJob:
    """A job process that ran a call and has exited: the job it ran, its pid, and its exit code (negative: the
    signal that killed it)."""

    job_id: str
    room: str
    job_metadata: str
    room_metadata: str
    pid: int | None
    exit_code: int | None


def on_job_process_exit(server: AgentServer, callback: Callable[[ExitedJob], None]) -> None:
    """Call `callback` on the main process's loop each time a job process of a running `server` that ran a real call
    exits, whatever the reason (the call ended, the process crashed or was killed). Call it from ``worker_started``:
    the pool is made when the server starts running."""
    pool = server._proc_pool

    def closed(proc: Any) -> None:
        if not isinstance(proc, ProcJobExecutor):
            return
        info = proc.running_job
        if info is None or info.fake_job:
            return
        callback(
            ExitedJob(
                job_id=info.job.id,
                room=info.job.room.name,
                job_metadata=info.job.metadata,
                room_metadata=info.job.room.metadata,
                pid=proc.pid,
                exit_code=proc.exitcode,
            )
        )

    pool.on("process_closed", closed)
