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

Writes ``OUT-start.svg``/``OUT-call.svg`` (flame graphs), ``OUT-start.txt``/``OUT-call.txt`` (the functions with the
most samples, own and total, from py-spy's collapsed stacks) and prints the timelines and the thread breakdown.
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
        stacks: Counter[str] = Counter()
        with contextlib.suppress(OSError):
            for line in self._raw.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if stack:
                    stacks[stack] += int(count)
        return stacks


def summary(stacks: Counter[str], *, title: str) -> str:
    """The functions with the most samples: own (the frame on top) and total (anywhere in the stack)."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    lines = [f"# {title}: {total} samples", "", "## own (top of stack)"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(TOP)]
    lines += ["", "## total (anywhere in the stack)"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in anywhere.most_common(TOP)]
    return "\n".join(lines) + "\n"


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
    return asyncio.run(run(cli.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
