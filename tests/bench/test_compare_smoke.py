"""`python -m bench.compare --quick` runs both workers end to end and produces every figure of its report.

Nothing here asserts a time: the benchmark's numbers live in BENCHMARKS.md. This only keeps the benchmark from
rotting: each figure is measured on both sides and its ratio is computed from the two.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.phases import STAGES

FIGURES = (
    "voice_turn",
    "voice_turn_worker_share",
    "text_turn",
    "start_cold",
    "start_warm",
    "start_burst",
    "cpu_per_call",
    "pss_per_call_mib",
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("compare")
    subprocess.run(
        [sys.executable, "-m", "bench.compare", "--quick", "--json", str(out / "report.json"), "--plots", str(out)],
        check=True,
        timeout=540,
        capture_output=True,
    )
    return json.loads((out / "report.json").read_text()), out


def test_every_figure_is_measured_on_both_workers_with_its_ratio(quick_report: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_report
    for name in FIGURES:
        figure = report["figures"][name]
        project, baseline = figure["project"], figure["baseline"]
        assert project["n"] > 0, name
        assert baseline["n"] > 0, name
        assert figure["ratio_p50"] == pytest.approx(project["p50"] / baseline["p50"]), name
        assert figure["ratio_p95"] == pytest.approx(project["p95"] / baseline["p95"]), name


def test_the_voice_turn_is_broken_down_into_every_stage_for_both_workers(
    quick_report: tuple[dict[str, Any], Path],
) -> None:
    report, _ = quick_report
    for worker in ("project", "baseline"):
        assert tuple(report["stages"][worker]) == STAGES
        assert len(STAGES) == 7
        assert all(report["stages"][worker][stage]["n"] > 0 for stage in STAGES), worker


def test_capacity_rows_knee_transport_and_load_are_reported(quick_report: tuple[dict[str, Any], Path]) -> None:
    report, _ = quick_report
    assert report["transport_one_way"]["n"] > 0
    for worker in ("project", "baseline"):
        rows = report["capacity"][worker]
        assert [row["calls"] for row in rows] == [1]
        assert rows[0]["voice"]["n"] > 0
        assert report["knee"][worker]["calls"] == 1
        assert len(report["loadavg"][worker]) == 2


def test_the_three_plots_are_written(quick_report: tuple[dict[str, Any], Path]) -> None:
    _, out = quick_report
    for name in ("latency.png", "capacity.png", "stages.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
