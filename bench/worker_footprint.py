"""What one worker pod and each call cost in CPU and memory, measured from ``/proc``, so pods can be sized.

    .venv/bin/python -m sandbox netns -- .venv/bin/python -m bench.worker_footprint [--calls 1 2 4] [--seconds 20]

Starts ``python -m sandbox`` and one ``python -m agent start`` as child processes and the fake OpenAI/Deepgram
servers in this process (the e2e stack's environment: Deepgram STT, OpenAI LLM and TTS, all on 127.0.0.1). The
worker's process tree is everything under its main process: the main process, the multiprocessing forkserver and
resource tracker, and the job processes the forkserver forks (idle ones kept warm, and one per running call; a
job process is a call's when its log records name that call's room).

- Idle: after the prewarmed pool has settled, RSS, PSS and USS of each process (``/proc/<pid>/smaps_rollup``;
  PSS divides shared pages among the processes sharing them, so PSS sums to what the pod uses) and the tree's
  CPU over ``--idle-seconds``.
- N concurrent calls: each call creates a room, a caller joins and publishes a microphone that sends audio without
  a break (silence between sentences, as a browser does), ``webcall-agent`` is dispatched and the welcome plays;
  then each caller speaks an espeak-ng sentence every ``--every`` seconds (staggered between calls) for
  ``--seconds``, so Deepgram STT, the LLM and TTS all run. CPU is utime+stime (children included) of every
  process in the tree, sampled before and after the window, in CPU seconds per wall second (cores); memory is
  sampled every 2 s and the sample with the largest tree PSS is shown.
- The sandbox server's CPU and this process's (the fakes, whose STT and TTS are local whisper and piper, plus the
  callers' own WebRTC) are shown apart, so what is the worker's is clear.

Measured 2026-11-22 on the 2-vCPU box (cgroup v1, no CPU quota: the framework counts 2 CPUs), with the lead's and
another helper's test runs on the same cores (load average 2-5 during the calls). Default run, a caller sentence
every 6 s (``--calls 1 2 4 --seconds 20``); memory in MiB; cores are CPU seconds per wall second:

    idle pod: main 132 + forkserver 173 + resource tracker 7 + 2 idle job processes 153 each = 619 MiB PSS
              (RSS summed 1389 MiB: shared pages counted once per process); 0.04 cores; starting one job
              process (fork + prewarm) costs 0.30 s of CPU
    calls  tree PSS  PSS/call job  USS/call job  worker tree/call  call job/call  sandbox server  bench process
      1      689        150            63             0.184            0.147          0.096          0.452
      2      746        131            63             0.167            0.148          0.143          0.780
      4      884        112            63             0.152            0.142          0.249          0.977

Each call adds one job process to the tree (the pool refills its idle ones), about 66 MiB of pod memory
((884 - 619) / 4; the USS of a call's job process is 63 MiB). A call's job process spends about 0.075 cores in
Python threads (event loop, Silero VAD, executors) and 0.07 in libwebrtc's native threads (audio encoder queue 0.02,
tokio 0.017, network 0.01, synthetic audio device 0.01). Silent callers (``--every 0``): 0.142, 0.128, 0.123 cores
per call job at 1, 2, 4 calls: most of a call's cost is receiving, resampling, VAD-ing and streaming the caller's
audio, whether anyone speaks or not. At 4 calls the fakes' local whisper and piper saturate the box: 6 of 14
sentences were answered (1 call: 3 of 4, the fourth starts 18 s into the 20 s window; 2 calls: 6 of 7), and the
median welcome came 1.44 s after dispatch: four simultaneous dispatches find two warm processes, and the other two
calls wait for a process to start (two more 4-call runs at load 2-8: 0.91-1.28 s in a warm process, 2.05-2.88 s in a
new one).

With the offline extra doing speech inside the worker (``--worker-env WEBCALL_STT_PROVIDER=whisper --worker-env
WEBCALL_TTS_PROVIDER=piper --calls 1 2``): idle pod 926 MiB PSS, a call's job process 401-413 MiB PSS (317-339 MiB
USS), 0.29-0.32 cores per call, 2.56 s of CPU to start a job process. ``--num-cpus 4 --calls`` (idle only): 4 idle
job processes, 702 MiB PSS, so each idle process kept warm costs about 40 MiB. One 3-minute call (``--calls 1
--seconds 180``, load 2-3.6): 30 sentences, all answered; the call's job process 0.148 cores (tree 0.184), its USS
63 MiB at the start of the window and 66 MiB at the end.

The fakes here answer over plain HTTP on loopback; cloud endpoints add TLS, not measured. The bench process's CPU is
the fakes' speech (about 0.27-0.28 cores per talking call: the default run's figures less the silent run's) plus the
callers' WebRTC and the fakes' handling of audio (0.175, 0.237, 0.389 cores for 1, 2, 4 silent calls): load this box
carries that a production worker does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from livekit import api, rtc
from livekit.agents.utils.hw import get_cpu_monitor

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import Caller, WorkerProcess, dispatch, providers, room_name, until, worker_env

WELCOME = {"welcome": {"text": "Hello! Thanks for calling. How can I help you today?", "interruptible": True}}
SENTENCES = (
    "Do you have a table for four tonight?",
    "What time do you open tomorrow morning?",
    "Can I bring my dog to the terrace?",
    "Please book it under the name Smith.",
)
MIC_RATE = 16000
FRAME_SAMPLES = MIC_RATE // 50  # 20 ms
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024.0  # smaps_rollup reports kB (KiB)
ROLES = ("main", "forkserver", "resource_tracker", "idle job", "call job", "other")


# --- /proc --------------------------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime: the process and its reaped children."""
    fields = _stat(pid)
    return sum(int(value) for value in fields[11:15]) / TICK


def memory_kb(pid: int) -> tuple[int, int, int]:
    """RSS, PSS and USS (private clean + dirty) in kB from ``smaps_rollup``."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0])
    return values["Rss"], values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                children[int(_stat(int(entry))[1])].append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode(errors="replace")


@dataclass(frozen=True)
class Proc:
    pid: int
    role: str
    rss_kb: int
    pss_kb: int
    uss_kb: int
    cpu_s: float


@dataclass
class Tree:
    """The worker's process tree; job processes are told apart by the rooms their log records name."""

    worker: WorkerProcess

    def call_pids(self) -> set[int]:
        return {int(r["pid"]) for r in self.worker.records() if r.get("room") and isinstance(r.get("pid"), int)}

    def role(self, pid: int, *, forkserver: int | None, calls: set[int]) -> str:
        if pid == self.worker.process.pid:
            return "main"
        command = _cmdline(pid)
        if "multiprocessing.forkserver" in command and pid == forkserver:
            return "forkserver"
        if "multiprocessing.resource_tracker" in command:
            return "resource_tracker"
        if "multiprocessing.forkserver" in command:
            return "call job" if pid in calls else "idle job"
        return "other"

    def snapshot(self) -> list[Proc]:
        root = self.worker.process.pid
        calls = self.call_pids()
        found: list[Proc] = []
        forkserver: int | None = None
        for pid in descendants(root):
            with contextlib.suppress(OSError, KeyError, IndexError):
                if forkserver is None and int(_stat(pid)[1]) == root and "multiprocessing.forkserver" in _cmdline(pid):
                    forkserver = pid
                role = self.role(pid, forkserver=forkserver, calls=calls)
                found.append(Proc(pid, role, *memory_kb(pid), cpu_seconds(pid)))
        return found


def cpu_delta(before: Iterable[Proc], after: Iterable[Proc]) -> dict[str, float]:
    """CPU seconds per role between two snapshots; a process born in between counts from zero."""
    start = {proc.pid: proc.cpu_s for proc in before}
    used: dict[str, float] = defaultdict(float)
    for proc in after:
        used[proc.role] += proc.cpu_s - start.get(proc.pid, 0.0)
    return used


def thread_cpu(pids: Iterable[int]) -> dict[tuple[int, int], tuple[str, float]]:
    """CPU seconds (utime + stime) of every thread of ``pids``, keyed by (pid, tid), with the thread's name."""
    found: dict[tuple[int, int], tuple[str, float]] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/task/{tid}/stat") as stat:
                    text = stat.read()
                    name = text[text.index("(") + 1 : text.rindex(")")]
                    fields = text.rsplit(")", 1)[1].split()
                    found[(pid, int(tid))] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def thread_groups(
    before: dict[tuple[int, int], tuple[str, float]], after: dict[tuple[int, int], tuple[str, float]], pids: set[int]
) -> dict[str, float]:
    """CPU seconds per thread name (digits dropped: ``tokio-runtime-w``, ``python``...) of the threads of ``pids``."""
    used: dict[str, float] = defaultdict(float)
    for key, (name, seconds) in after.items():
        if key[0] in pids:
            used[name.rstrip("0123456789-_ ") or name] += seconds - before.get(key, (name, 0.0))[1]
    return used


def own_cpu_seconds() -> float:
    fields = _stat(os.getpid())
    return (int(fields[11]) + int(fields[12])) / TICK


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds used during a wall-clock window by the worker tree (per role), the server and this process."""

    seconds: float
    worker: dict[str, float]
    server: float
    bench: float
    call_threads: dict[str, float]

    def cores(self, cpu_s: float) -> float:
        return cpu_s / self.seconds


class CpuMeter:
    def __init__(self, *, tree: Tree, server: ServerProcess) -> None:
        self.tree, self.server = tree, server
        self._start: tuple[float, list[Proc], float, float] | None = None
        self._threads: dict[tuple[int, int], tuple[str, float]] = {}

    def start(self) -> None:
        before = self.tree.snapshot()
        self._threads = thread_cpu(p.pid for p in before)
        self._start = (time.monotonic(), before, cpu_seconds(self.server.process.pid), own_cpu_seconds())

    def stop(self) -> tuple[CpuWindow, list[Proc]]:
        assert self._start is not None
        began, before, server, bench = self._start
        after = self.tree.snapshot()
        threads = thread_cpu(p.pid for p in after)
        window = CpuWindow(
            seconds=time.monotonic() - began,
            worker=cpu_delta(before, after),
            server=cpu_seconds(self.server.process.pid) - server,
            bench=own_cpu_seconds() - bench,
            call_threads=thread_groups(self._threads, threads, {p.pid for p in after if p.role == "call job"}),
        )
        return window, after


# --- callers ------------------------------------------------------------------------------------------------------
class Microphone:
    """A caller's microphone that never stops sending: queued speech, else silence, paced by the SDK's source."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.source = rtc.AudioSource(MIC_RATE, 1)
        self.pending: list[bytes] = []
        self.spoken = 0
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self._task = asyncio.create_task(self._run())

    def say(self, pcm: bytes) -> None:
        self.pending.append(pcm)
        self.spoken += 1

    async def _run(self) -> None:
        silence = b"\0" * (FRAME_SAMPLES * 2)
        playing = b""
        while True:
            if not playing and self.pending:
                playing = self.pending.pop(0)
            chunk, playing = playing[: FRAME_SAMPLES * 2], playing[FRAME_SAMPLES * 2 :]
            frame = chunk.ljust(FRAME_SAMPLES * 2, b"\0") if chunk else silence
            await self.source.capture_frame(rtc.AudioFrame(frame, MIC_RATE, 1, FRAME_SAMPLES))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.source.aclose()


@dataclass
class Call:
    room: str
    caller: Caller
    microphone: Microphone
    welcome_at: float = 0.0


async def start_call(*, lk: api.LiveKitAPI, server: ServerProcess) -> Call:
    """Room, caller with a live microphone, dispatch; returns once the welcome is heard."""
    room = room_name("footprint")
    await lk.room.create_room(api.CreateRoomRequest(name=room))
    caller = await Caller.join(server, room=room)
    microphone = Microphone(caller.room)
    await microphone.open()
    started = time.monotonic()
    await dispatch(lk, room=room, metadata=json.dumps(WELCOME))
    await until(lambda: caller.first_loud_at(started), within_s=60, what="welcome audio")
    return Call(room=room, caller=caller, microphone=microphone, welcome_at=time.monotonic() - started)


async def end_call(call: Call, *, lk: api.LiveKitAPI) -> None:
    await call.microphone.aclose()
    await call.caller.leave()
    with contextlib.suppress(api.TwirpError):
        await lk.room.delete_room(api.DeleteRoomRequest(room=call.room))


async def converse(calls: Sequence[Call], *, utterances: Sequence[bytes], seconds: float, every: float) -> None:
    """Each caller says a sentence every ``every`` seconds, the callers staggered evenly, for ``seconds``.

    With ``every`` 0 the callers stay silent (their microphones still send): the cost of a call that only listens.
    """
    began = time.monotonic()
    if every <= 0:
        await asyncio.sleep(seconds)
        return
    next_at = [began + every * i / len(calls) for i in range(len(calls))]
    said = 0
    while (now := time.monotonic()) < began + seconds:
        for i, call in enumerate(calls):
            if now >= next_at[i]:
                call.microphone.say(utterances[said % len(utterances)])
                said += 1
                next_at[i] += every
        await asyncio.sleep(0.05)


# --- report -------------------------------------------------------------------------------------------------------
def by_role(procs: Sequence[Proc]) -> dict[str, list[Proc]]:
    grouped: dict[str, list[Proc]] = defaultdict(list)
    for proc in procs:
        grouped[proc.role].append(proc)
    return grouped


def print_memory(procs: Sequence[Proc], *, cpu: CpuWindow | None = None) -> None:
    print(f"  {'role':<17}{'procs':>6}{'RSS MiB':>10}{'PSS MiB':>10}{'USS MiB':>10}{'PSS/proc':>10}{'cores':>8}")
    grouped = by_role(procs)
    for role in ROLES:
        members = grouped.get(role, [])
        if not members and not (cpu and cpu.worker.get(role)):
            continue
        pss = sum(p.pss_kb for p in members) / MIB
        per = f"{pss / len(members):10.0f}" if members else f"{'-':>10}"
        cores = f"{cpu.cores(cpu.worker.get(role, 0.0)):8.3f}" if cpu else ""
        rss, uss = sum(p.rss_kb for p in members) / MIB, sum(p.uss_kb for p in members) / MIB
        print(f"  {role:<17}{len(members):>6}{rss:10.0f}{pss:10.0f}{uss:10.0f}{per}{cores}")
    total_cores = f"{cpu.cores(sum(cpu.worker.values())):8.3f}" if cpu else ""
    rss, pss = sum(p.rss_kb for p in procs) / MIB, sum(p.pss_kb for p in procs) / MIB
    uss = sum(p.uss_kb for p in procs) / MIB
    print(f"  {'worker tree':<17}{len(procs):>6}{rss:10.0f}{pss:10.0f}{uss:10.0f}{'':>10}{total_cores}")


def print_cpu_others(cpu: CpuWindow) -> None:
    print(
        f"  outside the worker: sandbox server {cpu.cores(cpu.server):.3f} cores, "
        f"bench process (fake providers with local whisper/piper + callers' WebRTC) {cpu.cores(cpu.bench):.3f} cores"
    )


@dataclass
class Traffic:
    """What the fakes were asked during a window: evidence that STT, LLM and TTS ran."""

    listen_streams: int
    llm_requests: int
    heard_user_turns: int
    tts_requests: int

    @classmethod
    def since(cls, began: float, *, openai: FakeOpenAI, deepgram: FakeDeepgram) -> Traffic:
        chats = [r for r in openai.requests_to("/v1/chat/completions") if r.started >= began]
        return cls(
            listen_streams=sum(1 for r in deepgram.requests_to("/v1/listen") if not r.done),
            llm_requests=len(chats),
            heard_user_turns=sum(1 for r in chats if _last_user_text(r.json)),
            tts_requests=sum(1 for r in openai.requests_to("/v1/audio/speech") if r.started >= began),
        )


def _last_user_text(body: object) -> str:
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


# --- phases -------------------------------------------------------------------------------------------------------
async def settle_pool(tree: Tree, *, expected_idle: int, within_s: float = 90.0) -> None:
    """Wait until the pool holds its idle job processes, all initialized, then let their start-up CPU fade."""

    def ready() -> bool:
        idle = {p.pid for p in tree.snapshot() if p.role == "idle job"}
        initialized = {r.get("pid") for r in tree.worker.records() if r.get("message") == "process initialized"}
        return len(idle) >= expected_idle and idle <= initialized

    await until(ready, within_s=within_s, what="the idle process pool")
    await asyncio.sleep(5.0)


async def measure_idle(meter: CpuMeter, *, seconds: float, expected_idle: int) -> None:
    meter.start()
    await asyncio.sleep(seconds)
    cpu, procs = meter.stop()
    idle = sum(1 for p in procs if p.role == "idle job")
    print(f"\nidle pod, pool settled ({idle} idle job processes; framework default num_idle_processes {expected_idle})")
    print(f"  load average {loadavg()}, CPU over {cpu.seconds:.1f} s")
    print_memory(procs, cpu=cpu)
    print_cpu_others(cpu)
    started = [p.cpu_s for p in procs if p.role == "idle job"]
    if started:
        print(f"  CPU a job process used to start (fork + prewarm), mean: {statistics.mean(started):.2f} s")


@dataclass(frozen=True)
class Stack:
    lk: api.LiveKitAPI
    server: ServerProcess
    tree: Tree
    meter: CpuMeter
    openai: FakeOpenAI
    deepgram: FakeDeepgram


async def measure_calls(stack: Stack, *, count: int, seconds: float, every: float, utterances: Sequence[bytes]) -> None:
    load_before = loadavg()
    warm = {p.pid for p in stack.tree.snapshot() if p.role == "idle job"}
    calls = list(await asyncio.gather(*(start_call(lk=stack.lk, server=stack.server) for _ in range(count))))
    try:
        await asyncio.sleep(4.0)  # the welcome ends and the pool refills its idle processes
        samples: list[list[Proc]] = []
        began = time.monotonic()
        stack.meter.start()
        talk = asyncio.create_task(converse(calls, utterances=utterances, seconds=seconds, every=every))
        while not talk.done():
            samples.append(stack.tree.snapshot())
            await asyncio.wait({talk}, timeout=2.0)
        await talk
        cpu, last = stack.meter.stop()
        samples.append(last)
        heard = sum(c.caller.loud_since(began) for c in calls)
        traffic = Traffic.since(began, openai=stack.openai, deepgram=stack.deepgram)
    finally:
        await asyncio.gather(*(end_call(c, lk=stack.lk) for c in calls))
    peak = max(samples, key=lambda procs: sum(p.pss_kb for p in procs))
    call_procs = [p for p in peak if p.role == "call job"]
    call_cores = cpu.cores(cpu.worker.get("call job", 0.0))
    tree_cores = cpu.cores(sum(cpu.worker.values()))
    print(f"\n{count} concurrent call(s), {cpu.seconds:.1f} s window, load average {load_before} -> {loadavg()}")
    print("  welcome heard after dispatch: " + ", ".join(welcome_line(c, stack.tree, warm=warm) for c in calls))
    print(
        f"  caller sentences {sum(c.microphone.spoken for c in calls)},"
        f" Deepgram listen streams {traffic.listen_streams},"
        f" LLM requests {traffic.llm_requests} ({traffic.heard_user_turns} with a transcript),"
        f" TTS requests {traffic.tts_requests}, agent audio heard {heard:.1f} s"
    )
    print_memory(peak, cpu=cpu)
    print_cpu_others(cpu)
    first, last_uss = (
        sum(p.uss_kb for p in s if p.role == "call job") / MIB / count for s in (samples[0], samples[-1])
    )
    print(f"  call job USS per call, first -> last sample of the window: {first:.0f} -> {last_uss:.0f} MiB")
    threads = sorted(cpu.call_threads.items(), key=lambda kv: -kv[1])[:6]
    print("  call job threads, cores per call: " + ", ".join(f"{n} {cpu.cores(v) / count:.3f}" for n, v in threads))
    print(
        f"  per call: worker tree {tree_cores / count:.3f} cores, its job process {call_cores / count:.3f} cores, "
        f"job process PSS {sum(p.pss_kb for p in call_procs) / MIB / max(1, len(call_procs)):.0f} MiB"
    )


def welcome_line(call: Call, tree: Tree, *, warm: set[int]) -> str:
    """The call's welcome delay, and whether its job ran in a process that was already warm at dispatch."""
    pids = {r.get("pid") for r in tree.worker.room_records(call.room)}
    kind = "warm process" if pids & warm else "new process"
    return f"{call.welcome_at:.2f} s ({kind})"


async def wait_jobs_gone(tree: Tree, *, expected_idle: int) -> None:
    """After the calls: their job processes exit and the pool is back to its idle size."""
    try:
        await until(
            lambda: not any(p.role == "call job" for p in tree.snapshot()), within_s=60, what="call processes to exit"
        )
    except AssertionError:
        print("  warning: call job processes still alive 60 s after the calls; the next phase counts them as calls")
    await settle_pool(tree, expected_idle=expected_idle)


async def main(args: argparse.Namespace) -> int:
    expected_idle = math.ceil(float(args.num_cpus) if args.num_cpus else get_cpu_monitor().cpu_count())
    await asyncio.to_thread(speech.load_all)
    utterances = [speech.espeak_utterance(text, sample_rate=MIC_RATE) for text in SENTENCES]
    server = await start_server_process(port=0, extra_args=["--log-level", "WARNING"])
    try:
        async with providers() as (openai, deepgram):
            extra = dict(item.split("=", 1) for item in args.worker_env)
            if args.num_cpus:
                extra["NUM_CPUS"] = args.num_cpus
            worker = await WorkerProcess.start(worker_env(server, openai, deepgram, **extra))
            tree = Tree(worker)
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            stack = Stack(lk, server, tree, CpuMeter(tree=tree, server=server), openai, deepgram)
            try:
                await settle_pool(tree, expected_idle=expected_idle)
                await measure_idle(stack.meter, seconds=args.idle_seconds, expected_idle=expected_idle)
                for count in args.calls:
                    await measure_calls(
                        stack, count=count, seconds=args.seconds, every=args.every, utterances=utterances
                    )
                    await wait_jobs_gone(tree, expected_idle=expected_idle)
            finally:
                await lk.aclose()
                await worker.aclose()
    finally:
        await server.aclose()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.worker_footprint", description=__doc__)
    parser.add_argument(
        "--calls", type=int, nargs="*", default=[1, 2, 4], help="concurrent calls per phase (none: idle only)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured conversation per phase")
    parser.add_argument("--every", type=float, default=6.0, help="seconds between one caller's sentences (0: silent)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--num-cpus", default="", help="NUM_CPUS for the worker (the framework sizes its pool on it)")
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="KEY=VALUE", help="extra worker environment (repeatable)"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
