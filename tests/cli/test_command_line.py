"""``python -m agent``: one command line that lists every command, each with its own help, and refuses the unknown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import COMMANDS
from tests.cli.commands import REPO, agent_command

# What an operator needs to find from `python -m agent --help` alone: the framework's worker commands and ours.
EXPECTED_COMMANDS = (
    "start",
    "dev",
    "connect",
    "console",
    "download-files",
    "resolve",
    "index",
    "events",
    "qa",
    "run-local",
)


def test_help_lists_every_command_with_its_help_line() -> None:
    done = agent_command("--help", env={**os.environ, "COLUMNS": "200"})  # one line per command
    assert done.returncode == 0, done.stderr
    # "    NAME  HELP", or "    NAME" with the help on the next line when the name is long (download-files).
    commands = done.stdout.split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    words = commands.split()
    assert " ".join(words) == " ".join(f"{command.name} {command.help}" for command in COMMANDS)
    assert set(EXPECTED_COMMANDS) == {command.name for command in COMMANDS}


def test_help_imports_no_command_module() -> None:
    # Listing the commands must not wait for LiveKit (seconds to import); each command's module loads on its own.
    probe = (
        "import sys, contextlib, io\n"
        "from agent import cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('livekit', 'agent.', 'prometheus_client'))))\n"
    )
    assert python_output(probe) == "['agent.cli']"


def test_resolve_runs_without_importing_livekit(tmp_path: Path) -> None:
    # `resolve` is pure: no LiveKit import (seconds), though the resolver logs through the redacting loggers.
    job = tmp_path / "job.json"
    job.write_text('{"agent_id": "nobody"}')
    probe = (
        "import contextlib, io, sys\n"
        "from agent import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = cli.main(['resolve', '--job-metadata', {str(job)!r}])\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'livekit', 'prometheus_client'}))\n"
    )
    assert python_output(probe) == "0 []"


@pytest.mark.parametrize("command", EXPECTED_COMMANDS)
def test_each_command_answers_help_with_its_own_usage(command: str) -> None:
    done = agent_command(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m agent {command}")


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (("events", "replay-dead", "--help"), "usage: python -m agent events replay-dead"),
        (("qa", "run", "--help"), "usage: python -m agent qa run"),
        (("qa", "call", "--help"), "usage: python -m agent qa call"),
    ],
)
def test_nested_commands_answer_help_too(argv: tuple[str, ...], usage: str) -> None:
    done = agent_command(*argv)
    assert done.returncode == 0, done.stderr
    assert usage in done.stdout


def test_an_unknown_command_exits_2_naming_it_and_the_commands_there_are() -> None:
    done = agent_command("serve")
    assert done.returncode == 2
    assert done.stdout == ""
    message = done.stderr.strip().splitlines()[-1]
    assert "invalid choice: 'serve'" in message
    assert all(f"'{name}'" in message for name in EXPECTED_COMMANDS)


def test_no_command_exits_2_with_the_usage() -> None:
    done = agent_command()
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m agent")


def test_an_unknown_option_of_a_known_command_exits_2() -> None:
    done = agent_command("resolve", "--job-metadata", "-", "--no-such-option", stdin="{}")
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-option" in done.stderr


def test_a_worker_command_turns_on_multiprocess_metrics_before_the_worker_is_imported() -> None:
    # prometheus_client picks its mode at import: the directory must be set before agent.worker_commands loads it.
    probe = (
        "import os, sys\n"
        "os.environ.pop('PROMETHEUS_MULTIPROC_DIR', None)\n"
        "from agent import cli\n"
        "cli.parse(['start'])\n"
        "from prometheus_client import values\n"
        "print(bool(os.environ.get('PROMETHEUS_MULTIPROC_DIR')), values.ValueClass.__name__)\n"
    )
    assert python_output(probe).split() == ["True", "MmapedValue"]


def python_output(code: str) -> str:
    """What ``python -c CODE`` prints in a fresh interpreter (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
