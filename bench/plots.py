"""The PNG plots of a `bench.compare` report (matplotlib, no display needed).

- ``latency.png``: the voice-turn distribution (empirical CDF), text turns and starts of both workers;
- ``capacity.png``: CPU cores and PSS per call against the number of concurrent calls;
- ``stages.png``: the voice turn's stage medians as a stacked bar per worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

WORKERS = ("project", "baseline")
COLORS = {"project": "tab:blue", "baseline": "tab:orange"}


def write_plots(report: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = [
        _latency(report, directory / "latency.png"),
        _capacity(report, directory / "capacity.png"),
        _stages(report, directory / "stages.png"),
    ]
    plt.close("all")
    return written


def _latency(report: dict[str, Any], path: Path) -> Path:
    samples = report["samples"]
    fig, (voice, text, start) = plt.subplots(1, 3, figsize=(14, 4))
    for name in WORKERS:
        values = sorted(samples[name]["voice"])
        if values:
            fractions = [(i + 1) / len(values) for i in range(len(values))]
            voice.step(values, fractions, where="post", label=name, color=COLORS[name])
    voice.set(title="voice turn: speech end -> first audible reply", xlabel="seconds", ylabel="fraction of turns")
    voice.legend()
    text.boxplot([samples[name]["text"] or [0.0] for name in WORKERS], tick_labels=list(WORKERS))
    text.set(title="text turn: first reply text - LLM first token", ylabel="seconds")
    kinds = ("cold", "warm", "burst")
    data = [samples[name]["start"][kind] or [0.0] for kind in kinds for name in WORKERS]
    labels = [f"{kind}\n{name}" for kind in kinds for name in WORKERS]
    start.boxplot(data, tick_labels=labels)
    start.set(title="start: dispatch -> first welcome audio", ylabel="seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _capacity(report: dict[str, Any], path: Path) -> Path:
    fig, (cpu, pss) = plt.subplots(1, 2, figsize=(10, 4))
    for name in WORKERS:
        rows = report["capacity"][name]
        calls = [row["calls"] for row in rows]
        cpu.plot(calls, [row["cores_per_call"] for row in rows], "o-", label=name, color=COLORS[name])
        pss.plot(calls, [row["pss_per_call_mib"] for row in rows], "o-", label=name, color=COLORS[name])
    cpu.set(title="CPU per talking call (idle subtracted)", xlabel="concurrent calls", ylabel="cores")
    pss.set(title="PSS per call (idle subtracted)", xlabel="concurrent calls", ylabel="MiB")
    for axis in (cpu, pss):
        axis.set_ylim(bottom=0)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _stages(report: dict[str, Any], path: Path) -> Path:
    fig, axis = plt.subplots(figsize=(9, 4))
    stages = list(report["stages"]["project"])
    colors = plt.get_cmap("tab10")
    for index, name in enumerate(WORKERS):
        left = 0.0
        for s, stage in enumerate(stages):
            width = report["stages"][name][stage]["p50"] or 0.0
            axis.barh(index, width, left=left, color=colors(s), label=stage if index == 0 else None)
            left += width
    axis.set_yticks(range(len(WORKERS)), list(WORKERS))
    axis.set(title="voice turn stages (medians)", xlabel="seconds")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
