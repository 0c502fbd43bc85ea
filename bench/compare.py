"""The project's worker against a plain starter-style agent, side by side in one run, every figure as a ratio.

    .venv/bin/python -m sandbox netns -- .venv/bin/python -m bench.compare [--rounds 2] [--turns 50] [--runs 10]
        [--calls 1 2 4] [--seconds 20] [--stt 0.1] [--llm 0.2] [--tts 0.1] [--json FILE] [--plots DIR] [--quick]

Starts ``python -m sandbox`` (a child process) and the fake OpenAI with fixed latencies in this process
(`bench.fakes`: STT ``--stt``, LLM first token ``--llm``, TTS first byte ``--tts``), then runs the project's worker
and the baseline (`bench.baseline`) alternately, one at a time, ``--rounds`` times each (A B A B). In each round a
worker is started and measured on:

- start: cold (the first dispatch after the worker registered), warm (an idle process is ready), burst (the second
  of two back-to-back dispatches); dispatch -> the welcome's first audible frame at the caller;
- voice turn: one call, the caller (an `rtc.Room` participant) says espeak-ng sentences in real time; caller's
  speech end -> the reply's first audible frame at the caller, with the stages read from the fakes' request times;
- text turn: a message on ``lk.chat`` -> the first reply text at the caller, less the LLM's first token;
- capacity: N concurrent calls (``--calls``), each caller speaking a sentence after each reply, for ``--seconds``;
  CPU seconds per wall second and peak PSS of the worker's process tree only, the idle tree's subtracted, per call;
  the knee is the largest N whose voice-turn p95 stays within 20 % of N=1's;
- floor (``--floor``): the same capacity steps on `bench.baseline.floor` workers that only connect, also read the
  caller's audio, also run it through the VAD: what a call costs before any agent work.

``--turns`` and ``--runs`` are totals per worker, split over the rounds. The sandbox's own one-way audio latency
is measured once (`bench.sandbox_server.audio_latency`), so the worker's own share of a voice turn can be given:
the total less the injected provider latencies, the endpointing wait in force (the VAD's silence: 0.55 s for the
baseline's Silero, the project's `agent.pipeline.SILENCE_WAIT_S` for its ``WEBCALL_VAD``) and
the transport (twice the one-way latency: the caller's speech up, the reply down). ``--quick`` is the smoke size.
Prints a table and writes the JSON report (``--json``) and the plots (``--plots``, `bench.plots`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit import api

from agent.pipeline import SILENCE_WAIT_S
from agent.settings import Settings
from bench import phases
from bench.callers import Utterance, utterances
from bench.fakes import FixedOpenAI, Latencies
from bench.sandbox_server import audio_latency
from bench.workers import FLOORS, WORKERS, Worker, WorkerName, environment
from sandbox.server.process import ServerProcess, start_server_process

BASELINE_WAIT_S = 0.55  # the baseline's Silero min_silence_duration (bench/baseline/agent.py)
KNEE_TOLERANCE = 1.2


@dataclass
class Samples:
    """Everything measured for one worker, over all its rounds."""

    start: dict[str, list[float]] = field(default_factory=lambda: {"cold": [], "warm": [], "burst": []})
    voice: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in phases.STAGES})
    missed_turns: int = 0
    text: list[float] = field(default_factory=list)
    idle_cores: list[float] = field(default_factory=list)
    idle_pss_mib: list[float] = field(default_factory=list)
    loads: list[phases.Load] = field(default_factory=list)
    loadavg: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    rounds: int
    turns: int
    typed: int
    runs: int
    calls: tuple[int, ...]
    seconds: float
    latencies: Latencies
    transport_probes: int
    # seconds a worker's pool is left to settle: after the cold start, before the idle window, between steps
    settle_s: float = 8.0
    workers: tuple[WorkerName, ...] = WORKERS
    worker_env: tuple[tuple[str, str], ...] = ()
    floor: bool = False


def plan_of(args: argparse.Namespace) -> Plan:
    latencies = Latencies(stt=args.stt, llm_first_token=args.llm, tts_first_byte=args.tts)
    workers = tuple(w for w in WORKERS if w in args.workers)
    env = tuple(tuple(item.split("=", 1)) for item in args.project_env)
    if args.quick:
        return Plan(
            1, 2, 1, 1, (1,), 4.0, latencies, 2, settle_s=4.0, workers=workers, worker_env=env, floor=args.floor
        )
    return Plan(
        args.rounds,
        args.turns,
        args.typed,
        args.runs,
        tuple(args.calls),
        args.seconds,
        latencies,
        10,
        workers=workers,
        worker_env=env,
        floor=args.floor,
    )


def share(total: int, rounds: int, index: int) -> int:
    """Round `index`'s part of `total` (the first rounds take the remainder)."""
    return total // rounds + (1 if index < total % rounds else 0)


async def one_round(
    stack: phases.Stack, name: WorkerName, *, plan: Plan, index: int, spoken: Sequence[Utterance], into: Samples
) -> None:
    extra = dict(plan.worker_env) if name != "baseline" else {}
    env = environment(name, server=stack.server, openai_url=stack.openai.base_url, extra=extra)
    worker = await Worker.start(name, env=env)
    try:
        into.loadavg.append(phases.loadavg())
        into.start["cold"].append(await phases.start_once(stack, worker))
        await asyncio.sleep(plan.settle_s)  # the pool settles: idle processes initialized, the cold job gone
        runs = share(plan.runs, plan.rounds, index)
        for kind, values in (await phases.starts(stack, worker, runs=max(1, runs))).items():
            into.start[kind].extend(values)
        conversation = await phases.converse(
            stack,
            worker,
            utterances=spoken,
            turns=max(1, share(plan.turns, plan.rounds, index)),
            typed=max(1, share(plan.typed, plan.rounds, index)),
        )
        record_conversation(conversation, into=into)
        await asyncio.sleep(plan.settle_s / 2)
        await capacity_steps(stack, worker, plan=plan, spoken=spoken, into=into)
    finally:
        await worker.aclose()


async def capacity_steps(
    stack: phases.Stack, worker: Worker, *, plan: Plan, spoken: Sequence[Utterance], into: Samples
) -> None:
    """The idle tree's cost, then each capacity step with it subtracted."""
    idle, sample = await phases.idle_cost(worker, seconds=plan.settle_s)
    into.idle_cores.append(idle)
    into.idle_pss_mib.append(sample.pss_kib / 1024)
    for calls in plan.calls:
        load = await phases.capacity(
            stack, worker, calls=calls, seconds=plan.seconds, utterances=spoken, idle=(idle, sample.pss_kib)
        )
        into.loads.append(load)
        await asyncio.sleep(plan.settle_s * 0.75)
    into.loadavg.append(phases.loadavg())


async def floor_round(
    stack: phases.Stack, name: WorkerName, *, plan: Plan, spoken: Sequence[Utterance], into: Samples
) -> None:
    """A floor worker (`bench.baseline.floor`): only the capacity steps."""
    env = environment(name, server=stack.server, openai_url=stack.openai.base_url, extra=dict(plan.worker_env))
    worker = await Worker.start(name, env=env)
    try:
        into.loadavg.append(phases.loadavg())
        await asyncio.sleep(plan.settle_s)
        await capacity_steps(stack, worker, plan=plan, spoken=spoken, into=into)
    finally:
        await worker.aclose()


def record_conversation(conversation: phases.Conversation, *, into: Samples) -> None:
    into.missed_turns += conversation.missed
    into.text.extend(conversation.text)
    for turn in conversation.voice:
        into.voice.append(turn.total)
        for stage, seconds in turn.stages.items():
            into.stages[stage].append(seconds)


# --- report ----------------------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None}
    return {"n": len(values), "p50": statistics.median(values), "p95": percentile(values, 0.95)}


def ratio(project: float | None, baseline: float | None) -> float | None:
    return project / baseline if project is not None and baseline else None


def figure(project: Sequence[float], baseline: Sequence[float]) -> dict[str, Any]:
    """One figure for both workers: median and p95 each, and the project/baseline ratio of each."""
    ours, theirs = summary(project), summary(baseline)
    return {
        "project": ours,
        "baseline": theirs,
        "ratio_p50": ratio(_num(ours["p50"]), _num(theirs["p50"])),
        "ratio_p95": ratio(_num(ours["p95"]), _num(theirs["p95"])),
    }


def _num(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def capacity_rows(samples: Samples) -> list[dict[str, Any]]:
    rows = []
    for calls in sorted({load.calls for load in samples.loads}):
        loads = [load for load in samples.loads if load.calls == calls]
        voice = [t for load in loads for t in load.voice]
        rows.append(
            {
                "calls": calls,
                "cores_per_call": statistics.median(load.cores_per_call for load in loads),
                "pss_per_call_mib": statistics.median(load.pss_per_call_mib for load in loads),
                "tree_cores": statistics.median(load.tree_cores for load in loads),
                "voice": summary(voice),
                "missed_turns": sum(load.missed for load in loads),
                "loadavg": [round(load.loadavg, 2) for load in loads],
            }
        )
    return rows


def knee(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The largest N whose voice-turn p95 stays within 20 % of N=1's, with its calls per worker core."""
    if not rows or rows[0]["voice"]["p95"] is None:
        return None
    limit = rows[0]["voice"]["p95"] * KNEE_TOLERANCE
    within = [row for row in rows if row["voice"]["p95"] is not None and row["voice"]["p95"] <= limit]
    best = within[-1] if within else rows[0]
    per_core = best["calls"] / best["tree_cores"] if best["tree_cores"] > 0 else None
    return {"calls": best["calls"], "calls_per_worker_core": per_core, "p95_limit_s": limit}


def endpointing_wait(name: WorkerName, *, plan: Plan) -> float:
    """The VAD silence that ends a turn for this worker: the project's follows its ``WEBCALL_VAD``."""
    if name != "project":
        return BASELINE_WAIT_S
    engine = dict(plan.worker_env).get("WEBCALL_VAD", Settings.model_fields["vad_engine"].default)
    return SILENCE_WAIT_S[engine]


def worker_share(voice: Sequence[float], *, latencies: Latencies, transport: float | None, wait: float) -> list[float]:
    """Each voice turn less the injected provider latencies, the endpointing wait and the round-trip transport."""
    injected = latencies.stt + latencies.llm_first_token + latencies.tts_first_byte
    return [t - injected - wait - 2 * (transport or 0.0) for t in voice]


def report(samples: dict[WorkerName, Samples], *, plan: Plan, transport: list[float]) -> dict[str, Any]:
    project, baseline = samples["project"], samples["baseline"]
    one_way = statistics.median(transport) if transport else None
    figures: dict[str, Any] = {
        "voice_turn": figure(project.voice, baseline.voice),
        "voice_turn_worker_share": figure(
            worker_share(
                project.voice,
                latencies=plan.latencies,
                transport=one_way,
                wait=endpointing_wait("project", plan=plan),
            ),
            worker_share(
                baseline.voice,
                latencies=plan.latencies,
                transport=one_way,
                wait=endpointing_wait("baseline", plan=plan),
            ),
        ),
        "text_turn": figure(project.text, baseline.text),
        **{f"start_{kind}": figure(project.start[kind], baseline.start[kind]) for kind in ("cold", "warm", "burst")},
    }
    rows = {name: capacity_rows(samples[name]) for name in WORKERS}
    first = {name: (rows[name][0] if rows[name] else None) for name in WORKERS}
    figures["cpu_per_call"] = _per_call(first, "cores_per_call")
    figures["pss_per_call_mib"] = _per_call(first, "pss_per_call_mib")
    return {
        "plan": {
            "rounds": plan.rounds,
            "turns": plan.turns,
            "runs": plan.runs,
            "calls": list(plan.calls),
            "seconds": plan.seconds,
            "latencies_s": vars(plan.latencies),
            "endpointing_wait_s": {name: endpointing_wait(name, plan=plan) for name in WORKERS},
        },
        "transport_one_way": summary(transport),
        "figures": figures,
        "stages": {name: {s: summary(v) for s, v in samples[name].stages.items()} for name in WORKERS},
        "capacity": rows,
        "knee": {name: knee(rows[name]) for name in WORKERS},
        "missed_turns": {name: samples[name].missed_turns for name in WORKERS},
        "idle": {name: {"cores": samples[name].idle_cores, "pss_mib": samples[name].idle_pss_mib} for name in WORKERS},
        "loadavg": {name: [round(v, 2) for v in samples[name].loadavg] for name in WORKERS},
        "samples": {
            name: {"voice": samples[name].voice, "text": samples[name].text, "start": samples[name].start}
            for name in WORKERS
        },
    }


def _per_call(first: dict[WorkerName, dict[str, Any] | None], key: str) -> dict[str, Any]:
    """A capacity figure at the smallest N, as a (single-valued) figure with its ratio."""
    values = {name: ([row[key]] if row else []) for name, row in first.items()}
    return figure(values["project"], values["baseline"])


def print_report(found: dict[str, Any]) -> None:
    print(f"\ntransport one way (sandbox): {_fmt(found['transport_one_way'])}")
    print(f"{'figure':<26}{'project p50/p95':>22}{'baseline p50/p95':>22}{'ratio p50':>11}{'ratio p95':>11}")
    for name, fig in found["figures"].items():
        print(
            f"{name:<26}{_pair(fig['project']):>22}{_pair(fig['baseline']):>22}"
            f"{_r(fig['ratio_p50']):>11}{_r(fig['ratio_p95']):>11}"
        )
    for worker in WORKERS:
        print(f"\n{worker}: load average {found['loadavg'][worker]}, missed turns {found['missed_turns'][worker]}")
        for stage, values in found["stages"][worker].items():
            print(f"  {stage:<28}{_fmt(values)}")
        for row in found["capacity"][worker]:
            print(
                f"  N={row['calls']}: {row['cores_per_call']:.3f} cores/call, {row['pss_per_call_mib']:.0f} MiB/call,"
                f" tree {row['tree_cores']:.2f} cores, voice {_fmt(row['voice'])}, missed {row['missed_turns']},"
                f" load {row['loadavg']}"
            )
        print(f"  knee: {found['knee'][worker]}")
    for name, rows in found.get("floor", {}).items():
        for row in rows:
            print(
                f"{name} N={row['calls']}: {row['cores_per_call']:.3f} cores/call,"
                f" {row['pss_per_call_mib']:.0f} MiB/call"
            )


def _fmt(values: dict[str, Any]) -> str:
    if not values["n"]:
        return "-"
    return f"p50 {values['p50']:.3f} p95 {values['p95']:.3f} (n={values['n']})"


def _pair(values: dict[str, Any]) -> str:
    return "-" if not values["n"] else f"{values['p50']:.3f}/{values['p95']:.3f}"


def _r(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


# --- main ------------------------------------------------------------------------------------------------------------
async def run(plan: Plan) -> dict[str, Any]:
    spoken = await asyncio.to_thread(utterances)
    server: ServerProcess = await start_server_process(port=0, extra_args=["--log-level", "WARNING"])
    try:
        async with (
            FixedOpenAI(latencies=plan.latencies) as openai,
            api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk,
        ):
            await openai.warm(phases.WELCOME_TEXT)
            stack = phases.Stack(server=server, lk=lk, openai=openai)
            transport = [await audio_latency(server.url, f"transport-{i}") for i in range(plan.transport_probes)]
            samples: dict[WorkerName, Samples] = {name: Samples() for name in WORKERS}
            for index in range(plan.rounds):
                for name in plan.workers:
                    began = time.monotonic()
                    await one_round(stack, name, plan=plan, index=index, spoken=spoken, into=samples[name])
                    print(f"round {index + 1} {name}: {time.monotonic() - began:.0f} s", file=sys.stderr)
            floors: dict[WorkerName, Samples] = {}
            for name in FLOORS if plan.floor else ():
                floors[name] = Samples()
                try:
                    await floor_round(stack, name, plan=plan, spoken=spoken, into=floors[name])
                except (RuntimeError, TimeoutError, AssertionError) as error:
                    # the main figures are measured by now; a floor that fails is reported empty
                    print(f"floor {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            found = report(samples, plan=plan, transport=transport)
            found["floor"] = {name: capacity_rows(floor) for name, floor in floors.items()}
            return found
    finally:
        await server.aclose()


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_argument("--rounds", type=int, default=2, help="rounds per worker, alternating (A B A B)")
    cli.add_argument("--turns", type=int, default=50, help="voice turns per worker, over all rounds")
    cli.add_argument("--typed", type=int, default=20, help="typed turns per worker, over all rounds")
    cli.add_argument("--runs", type=int, default=10, help="warm and burst starts per worker, over all rounds")
    cli.add_argument("--calls", type=int, nargs="*", default=[1, 2, 4], help="concurrent calls per capacity step")
    cli.add_argument("--seconds", type=float, default=20.0, help="length of each capacity step")
    cli.add_argument("--stt", type=float, default=0.1, help="fake STT latency, seconds")
    cli.add_argument("--llm", type=float, default=0.2, help="fake LLM first-token latency, seconds")
    cli.add_argument("--tts", type=float, default=0.1, help="fake TTS first-byte latency, seconds")
    cli.add_argument("--json", type=Path, default=None, help="write the report here")
    cli.add_argument("--plots", type=Path, default=None, help="write PNG plots into this directory")
    cli.add_argument("--workers", nargs="*", choices=WORKERS, default=list(WORKERS), help="which workers to run")
    cli.add_argument(
        "--project-env", action="append", default=[], metavar="KEY=VALUE", help="extra project worker setting"
    )
    cli.add_argument(
        "--floor", action="store_true", help="also the floor workers' capacity steps (bench.baseline.floor)"
    )
    cli.add_argument("--quick", action="store_true", help="the smallest run that produces every figure")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    # the sandbox signs tokens with livekit-server's documented dev secret, which PyJWT finds short
    warnings.filterwarnings("ignore", message=".*HMAC key.*")
    args = parser().parse_args(argv)
    found = asyncio.run(run(plan_of(args)))
    print_report(found)
    if args.json is not None:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    if args.plots is not None:
        from bench.plots import write_plots

        with contextlib.suppress(ImportError):
            write_plots(found, args.plots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
