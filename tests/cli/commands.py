"""``python -m agent ...`` run as an operator runs it: a subprocess from the repository root, bounded in time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def agent_command(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command's result; `env` replaces the environment (None: this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )


def resolved(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """The JSON config ``python -m agent resolve`` prints (it must exit 0)."""
    done = agent_command("resolve", *args, env=env)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert isinstance(printed, dict)
    return printed
