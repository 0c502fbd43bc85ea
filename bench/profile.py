"""Where the project's worker spends its time: py-spy profiles of its job processes during starts and a steady call.

    .venv/bin/python -m sandbox netns -- .venv/bin/python -m bench.profile [--starts 6] [--seconds 30]
        [--out docs/bench/profile] [--project-env KEY=VALUE]

The same stack as `bench.compare` (sandbox server, fixed-latency fake OpenAI, `rtc.Room` callers speaking espeak-ng)
and the project's worker alone. Two phases, each under ``py-spy record --subprocesses`` on the worker's main process
(every job process is sampled; idle threads are left out, so the samples are CPU on Python threads):

- ``start``: ``--starts`` warm starts (dispatch -> first audible welcome frame at the caller), each with the worker's
  own ``timeline_ms`` from its ``call started`` record (entrypoint -> prefetch started, connected, caller found,
  built, session started);
- ``call``: one call, the caller saying a sentence after each reply, for ``--seconds``; the job process's CPU per
  thread name over the window from ``/proc`` (native threads such as libwebrtc's are invisible to py-spy).

Writes ``OUT-start.svg``/``OUT-call.svg`` (flame graphs), ``OUT-*.collapsed`` (py-spy's raw stacks) and
``OUT-start.txt``/``OUT-call.txt`` (busy samples per process and per category, framework or ours, and the busiest
functions; ``--summarize FILE.collapsed`` prints that again), and prints the timelines, the thread breakdown and the
memory of each process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from livekit import api

from bench import phases
from bench.callers import Utterance, utterances
from bench.fakes import FixedOpenAI, Latencies
from bench.worker_footprint import descendants, memory_kb, thread_cpu, thread_groups
from bench.workers import Worker, environment
from sandbox.server.process import start_server_process

PY_SPY = Path(sys.executable).with_name("py-spy")
TOP = 40


class Recording:
    """``py-spy record`` of a process tree, as a flame graph and as collapsed stacks."""

    def __init__(self, pid: int, out: Path, *, rate: int = 100) -> None:
        self.out = out
        common = [str(PY_SPY), "record", "--subprocesses", "--rate", str(rate), "--pid", str(pid), "--nonblocking"]
        self._raw = out.with_suffix(".collapsed")
        self._procs = [
            subprocess.Popen([*common, "--format", fmt, "--output", str(path)], stdout=subprocess.DEVNULL)
            for fmt, path in (("raw", self._raw), ("flamegraph", out.with_suffix(".svg")))
        ]

    async def stop(self) -> Counter[str]:
        for proc in self._procs:
            proc.send_signal(2)  # SIGINT: py-spy writes what it has
        for proc in self._procs:
            await asyncio.to_thread(proc.wait, 30)
        with contextlib.suppress(OSError):
            return read_collapsed(self._raw)
        return Counter()


# A sample whose top frame is one of these is a thread waiting (py-spy counts some waits as active).
WAITING = (
    "EpollSelector.select",
    "Condition.wait",
    "Event.wait",
    "_worker (concurrent/futures/thread.py:81)",
    "_read_exactly",
    "Thread.join",
)
# What a busy sample is spent on: the first pattern found anywhere in its stack names it.
CATEGORIES = (
    ("VAD, native (framework: livekit-local-inference)", "inference/vad"),
    ("VAD, Silero in onnxruntime (plugin)", "silero/"),
    ("transcript synchronizer's speaking-rate estimate (framework)", "_speaking_rate"),
    ("job prewarm (ours: agent.worker.prewarm)", "prewarm (agent/worker.py"),
    ("event loop monitor (framework)", "loop_monitor"),
    ("job memory sampling, main process (framework)", "_sample_memory_mb"),
    ("child process count for Prometheus, main process (framework)", "_update_child_proc_count"),
    ("imports", "_find_and_load"),
    ("WebRTC events in (SDK: ffi_event_callback)", "ffi_event_callback"),
    ("WebRTC requests out (SDK: capture_frame, APM, resampler)", "FfiClient.request"),
    ("OpenAI TTS stream (plugin, via agent.openai_tts)", "ChunkedStream._run"),
    ("our code (agent/)", "(agent/"),
    ("STT stream adapter (framework)", "stt/stream_adapter"),
    ("RoomIO (framework)", "room_io"),
    ("audio recognition (framework)", "audio_recognition"),
    ("agent activity (framework)", "agent_activity"),
    ("OpenAI SDK / httpx", "openai/"),
    ("transcript synchronizer (framework)", "synchronizer.py"),
    ("WebRTC audio frames in (SDK: AudioStream)", "AudioStream._run"),
    ("logging", "log_queue"),
    ("executor threads' work", "_WorkItem.run"),
)


def category(stack: str, frames: list[str]) -> str:
    # the frames that start a process's event loop (ours in the main process) are in every sample: they name nothing
    loop = next((i for i, f in enumerate(frames) if f.startswith("BaseEventLoop.run_forever")), 0)
    stack = ";".join(frames[loop:])
    found = next((name for name, pattern in CATEGORIES if pattern in stack), None)
    if found is not None:
        return found
    if "asyncio/" in frames[-1]:
        return "asyncio's loop itself (wake-ups, callbacks)"
    if len(frames) <= 2:
        return "no Python frame below the process's entry (native code)"
    return "other"


def _process(stack: str) -> str:
    """The innermost process of a py-spy ``--subprocesses`` stack, by role."""
    processes = [f for f in stack.split(";") if f.startswith("process ")]
    last = processes[-1] if processes else ""
    pid = last.split(":", 1)[0].removeprefix("process ")
    return f"main {pid}" if len(processes) == 1 else f"job {pid}"


def summary(stacks: Counter[str], *, title: str) -> str:
    """Busy samples (waiting threads left out) per process and per category, then the busiest functions."""
    busy: Counter[str] = Counter()
    waiting = 0
    by_process: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].startswith(WAITING):
            waiting += count
            continue
        busy[stack] += count
        by_process[_process(stack)] += count
        by_category[category(stack, frames)] += count
        own[frames[-1]] += count
    total = sum(busy.values()) or 1
    lines = [f"# {title}", "", f"{total} busy samples at 100 Hz ({waiting} waiting left out)", "", "## per process"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in by_process.most_common()]
    lines += ["", "## per category (every process)"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in by_category.most_common()]
    busiest = by_process.most_common(1)[0][0] if by_process else ""
    in_busiest: Counter[str] = Counter()
    for stack, count in busy.items():
        if _process(stack) == busiest:
            frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            in_busiest[category(stack, frames)] += count
    share = sum(in_busiest.values()) or 1
    lines += ["", f"## per category, the busiest process ({busiest})"]
    lines += [f"{100 * n / share:5.1f}%  {name}" for name, n in in_busiest.most_common()]
    lines += ["", "## busiest functions (top of stack)"]
    lines += [f"{100 * n / total:5.1f}%  {f[:160]}" for f, n in own.most_common(TOP)]
    return "\n".join(lines) + "\n"


def read_collapsed(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks[stack] += int(count)
    return stacks


async def warm_starts(stack: phases.Stack, worker: Worker, *, runs: int) -> list[tuple[float, dict[str, int]]]:
    found: list[tuple[float, dict[str, int]]] = []
    for _ in range(runs):
        call = await phases.open_call(stack, worker)
        try:
            await phases.dispatch(stack, worker, call)
            seconds = await phases.await_welcome(call)
        finally:
            await phases.close_call(stack, call)
        await asyncio.sleep(1.0)
        records = worker.running.room_records(call.room)
        timeline: dict[str, int] = next((r["timeline_ms"] for r in records if r.get("timeline_ms")), {})
        found.append((seconds, timeline))
        print(f"warm start {seconds:.3f} s, worker timeline {json.dumps(timeline)}", file=sys.stderr)
        await asyncio.sleep(2.5)
    return found


@dataclass(frozen=True)
class Steady:
    """A talking call: the job processes' CPU per thread name (cores), each process's memory at its end and the call
    job's largest private mappings (kB of private pages by mapping name)."""

    threads: dict[str, float]
    memory_kib: dict[str, tuple[int, int, int]]
    private_kib: dict[str, int]


def private_mappings(pid: int, *, top: int = 12) -> dict[str, int]:
    """The process's private pages (clean + dirty, kB) per mapping name (``[anon]`` for anonymous memory)."""
    found: Counter[str] = Counter()
    name = "[anon]"
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and not head[0].endswith(":"):
                name = head[5] if len(head) > 5 else "[anon]"
                name = name.rsplit("/site-packages/", 1)[-1]
            elif head[0] in ("Private_Clean:", "Private_Dirty:"):
                found[name] += int(head[1])
    return dict(found.most_common(top))


def memory_by_role(pids: set[int], *, busy: int) -> dict[str, tuple[int, int, int]]:
    """RSS, PSS and USS of each process of the tree, named by its role (the call's job process is `busy`)."""
    found: dict[str, tuple[int, int, int]] = {}
    for pid in sorted(pids):
        with contextlib.suppress(OSError, KeyError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            role = "call job" if pid == busy else "forkserver or job" if "forkserver" in cmd else cmd[-40:]
            found[f"{role} ({pid})"] = memory_kb(pid)
    return found


async def steady_call(stack: phases.Stack, worker: Worker, *, seconds: float, spoken: Sequence[Utterance]) -> Steady:
    """One talking call for `seconds`; CPU seconds per thread name of the job processes over the window."""
    call = await phases.open_call(stack, worker, prefix="profile")
    try:
        await phases.dispatch(stack, worker, call)
        await phases.await_welcome(call)
        await asyncio.sleep(2.0)
        pids = set(descendants(worker.running.process.pid))
        before = thread_cpu(pids)
        began = time.monotonic()
        until = began + seconds
        i = 0
        while time.monotonic() < until:
            await phases.voice_turn(stack, call, spoken[i % len(spoken)])
            i += 1
        after = thread_cpu(pids)
        wall = time.monotonic() - began
        per_pid: dict[int, float] = {}
        for (pid, tid), (_, cpu) in after.items():
            per_pid[pid] = per_pid.get(pid, 0.0) + cpu - before.get((pid, tid), ("", 0.0))[1]
        per_pid.pop(worker.running.process.pid, None)
        busy = max(per_pid, key=lambda pid: per_pid[pid])
        memory = memory_by_role(pids, busy=busy)
        private = private_mappings(busy)
    finally:
        await phases.close_call(stack, call)
    # only the threads that used CPU: the busy job process, not the idle ones
    used = thread_groups(before, after, pids)
    threads = {name: s / wall for name, s in sorted(used.items(), key=lambda kv: -kv[1]) if s / wall >= 0.001}
    return Steady(threads=threads, memory_kib=memory, private_kib=private)


async def run(args: argparse.Namespace) -> int:
    spoken = await asyncio.to_thread(utterances)
    server = await start_server_process(port=0, extra_args=["--log-level", "WARNING"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with (
            FixedOpenAI(latencies=Latencies(stt=0.1, llm_first_token=0.2, tts_first_byte=0.1)) as openai,
            api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk,
        ):
            await openai.warm(phases.WELCOME_TEXT)
            stack = phases.Stack(server=server, lk=lk, openai=openai)
            extra = dict(item.split("=", 1) for item in args.project_env)
            worker = await Worker.start(
                "project", env=environment("project", server=server, openai_url=openai.base_url, extra=extra)
            )
            try:
                await phases.start_once(stack, worker)  # the cold start, not profiled
                await asyncio.sleep(8.0)
                recording = Recording(worker.running.process.pid, args.out.with_name(args.out.name + "-start"))
                starts = await warm_starts(stack, worker, runs=args.starts)
                stacks = await recording.stop()
                write(stacks, args.out, "start", title=f"{args.starts} warm starts, every job process")
                recording = Recording(worker.running.process.pid, args.out.with_name(args.out.name + "-call"))
                steady = await steady_call(stack, worker, seconds=args.seconds, spoken=spoken)
                stacks = await recording.stop()
                write(stacks, args.out, "call", title=f"one talking call, {args.seconds:.0f} s")
            finally:
                await worker.aclose()
    finally:
        await server.aclose()
    print_starts(starts)
    print("job processes' CPU per thread name during the call (cores):")
    for name, cores in steady.threads.items():
        print(f"  {name:24s} {cores:.3f}")
    print(f"  {'total':24s} {sum(steady.threads.values()):.3f}")
    print("memory of the worker's processes at the end of the call (MiB): RSS, PSS, USS")
    for role, (rss, pss, uss) in steady.memory_kib.items():
        print(f"  {role:40s} {rss / 1024:7.1f} {pss / 1024:7.1f} {uss / 1024:7.1f}")
    print("the call job's private memory by mapping (MiB):")
    for mapping, kib in steady.private_kib.items():
        print(f"  {kib / 1024:7.1f}  {mapping}")
    return 0


def write(stacks: Counter[str], out: Path, phase: str, *, title: str) -> None:
    base = out.with_name(f"{out.name}-{phase}")
    base.with_suffix(".txt").write_text(summary(stacks, title=title))


def print_starts(starts: list[tuple[float, dict[str, int]]]) -> None:
    print(f"warm start p50 {statistics.median(s for s, _ in starts):.3f} s over {len(starts)}")
    steps = sorted({k for _, t in starts for k in t}, key=lambda k: statistics.median(t.get(k, 0) for _, t in starts))
    for step in steps:
        values = [t[step] for _, t in starts if step in t]
        print(f"  entrypoint -> {step}: p50 {statistics.median(values):.0f} ms ({min(values)}-{max(values)})")


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    cli = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    cli.add_argument("--starts", type=int, default=6)
    cli.add_argument("--seconds", type=float, default=30.0)
    cli.add_argument("--out", type=Path, default=Path("docs/bench/profile"))
    cli.add_argument("--project-env", action="append", default=[], metavar="KEY=VALUE")
    cli.add_argument("--summarize", type=Path, default=None, help="only print the summary of a .collapsed file")
    args = cli.parse_args(argv)
    if args.summarize is not None:
        print(summary(read_collapsed(args.summarize), title=str(args.summarize)), end="")
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
