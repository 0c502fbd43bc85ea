"""``make run`` is all a developer with no keys needs: it sets up the venv (nothing else: no npm, no image wheels)
and runs ``python -m agent run-local``, whose one printed URL is the page `test_page_browser` talks through."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_sets_up_only_the_venv_and_runs_run_local(tmp_path: Path) -> None:
    # A fresh clone: no venv yet (VENV points at an empty directory), so every setup step make would run is listed.
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", f"VENV={tmp_path / 'venv'}", "PYTHON=python3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    commands = dry_run.stdout.splitlines()
    assert commands[-1] == f"{tmp_path / 'venv'}/bin/python -m agent run-local"
    assert any("pip install" in line and "-e '.[offline,sandbox,dev]'" in line for line in commands)
    assert not any("npm" in line or "pip download" in line for line in commands), commands
