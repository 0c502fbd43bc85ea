"""The two workers `bench.compare` runs, as child processes, and what their process trees cost.

- ``project``: ``python -m agent start`` with OpenAI STT, LLM and TTS (``WEBCALL_STT_PROVIDER=openai``, no Deepgram
  key, so no fallback chain), as a platform would run it;
- ``baseline``: ``python -m livekit.agents start bench/baseline/agent.py --simulation``;
- ``floor-connect``, ``floor-audio``, ``floor-vad``: ``bench/baseline/floor.py`` at each level (``BENCH_FLOOR``).

Both point at the same sandbox server and fake OpenAI, each under its own agent name. A worker's tree is its main
process and everything below it (forkserver, resource tracker, job processes); CPU and PSS are read from ``/proc``
with `bench.worker_footprint`'s helpers.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.worker_footprint import cpu_seconds, descendants, memory_kb
from sandbox.server.process import ServerProcess
from tests.e2e.stack import WorkerProcess

WorkerName = Literal["project", "baseline", "floor-connect", "floor-audio", "floor-vad"]
WORKERS: tuple[WorkerName, ...] = ("project", "baseline")
FLOORS: tuple[WorkerName, ...] = ("floor-connect", "floor-audio", "floor-vad")
AGENT_NAMES: dict[WorkerName, str] = {
    "project": "webcall-agent",
    "baseline": "baseline-agent",
    **dict.fromkeys(FLOORS, "floor-agent"),
}
BASELINE_FILE = Path(__file__).parent / "baseline" / "agent.py"
FLOOR_FILE = Path(__file__).parent / "baseline" / "floor.py"


def command(name: WorkerName) -> list[str]:
    if name == "project":
        return [sys.executable, "-m", "agent", "start", "--health-port", "0"]
    agent_file = BASELINE_FILE if name == "baseline" else FLOOR_FILE
    return [sys.executable, "-m", "livekit.agents", "start", str(agent_file), "--simulation"]


def environment(name: WorkerName, *, server: ServerProcess, openai_url: str, extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    env = {
        **keep,
        "LIVEKIT_URL": server.url,
        "LIVEKIT_API_KEY": server.api_key,
        "LIVEKIT_API_SECRET": server.api_secret,
        "LIVEKIT_AGENT_NAME": AGENT_NAMES[name],
        "OPENAI_API_KEY": "sandbox",
        "OPENAI_BASE_URL": openai_url,
        "HF_HUB_OFFLINE": "1",
    }
    if name == "project":
        env["WEBCALL_STT_PROVIDER"] = "openai"
        env["WEBCALL_TTS_PROVIDER"] = "openai"
    if name in FLOORS:
        env["BENCH_FLOOR"] = name.removeprefix("floor-")
    return {**env, **extra}


@dataclass(frozen=True)
class TreeSample:
    """CPU seconds (children included) and PSS of a process tree at one moment."""

    at: float
    cpu_s: dict[int, float]
    pss_kib: int
    processes: int


@dataclass
class Worker:
    """One running worker (`tests.e2e.stack.WorkerProcess`: its JSON log lines are kept)."""

    name: WorkerName
    running: WorkerProcess

    @classmethod
    async def start(cls, name: WorkerName, *, env: dict[str, str]) -> Worker:
        return cls(name=name, running=await WorkerProcess.start(env, command=command(name)))

    def sample(self) -> TreeSample:
        cpu: dict[int, float] = {}
        pss = 0
        for pid in descendants(self.running.process.pid):
            with contextlib.suppress(OSError, KeyError, IndexError, ValueError):
                cpu[pid] = cpu_seconds(pid)
                pss += memory_kb(pid)[1]
        return TreeSample(at=time.monotonic(), cpu_s=cpu, pss_kib=pss, processes=len(cpu))

    async def aclose(self) -> None:
        await self.running.aclose()


def cores_between(before: TreeSample, after: TreeSample) -> float:
    """CPU seconds per wall second the tree used between two samples (a process born in between counts from 0).

    A job process that exited in between is lost from ``after``; its parent's ``cutime`` only counts it once reaped,
    so a window is measured while the calls it covers are still running.
    """
    used = sum(seconds - before.cpu_s.get(pid, 0.0) for pid, seconds in after.cpu_s.items())
    return used / max(after.at - before.at, 1e-6)
