"""``python -m agent COMMAND ...``: the one command line of the project, one argparse subcommand per job.

    start           production worker (JSON logs, health on :8081, drains on SIGTERM)
    dev             development worker (colored logs, health on a free port)
    connect         a development worker that joins one room now, without a dispatch
    console         a text conversation with the configured agent, no LiveKit server
    download-files  fetch the framework plugins' model files
    resolve         print the config a call would run with here, as JSON (no LiveKit import)
    index           index knowledge collections ahead of time
    events          the call events' webhook outbox: list, redeliver, replay dead events, make a secret
    qa              replay golden cases (qa call) and run QA scenarios (qa run) against a running stack
    run-local       the worker with a sandbox server and fake providers on 127.0.0.1 (``make run``)

Each command's options and behaviour live with the code it runs: its module has a `Subcommand` (an
``add_arguments(parser)`` / ``run(args)`` pair) that `COMMANDS` names as ``"module:ATTRIBUTE"``. Only the module of
the command given is imported, while its arguments are added: most import LiveKit, which takes seconds, and
``resolve`` must not wait for it. ``python -m agent --help`` lists every command without importing any.

This module imports nothing but the standard library: for the commands that run a worker, ``PROMETHEUS_MULTIPROC_DIR``
is set (`metrics_directory`) before the command's module, and with it prometheus_client, is imported.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

PROG: Final = "python -m agent"


@dataclass(frozen=True, kw_only=True)
class Subcommand:
    """What a module offers the command line: its options, and what to run with the parsed arguments.

    A `passthrough` command parses what follows its own options itself: the arguments its parser does not know are
    handed to `run` as ``args.rest`` (``qa call`` hands them on to the sandbox caller's parser).
    """

    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    passthrough: bool = False


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    help: str
    target: str  # "module:ATTRIBUTE", a `Subcommand`
    # A worker runs: its job processes' metrics are summed by the main process (`metrics_directory`).
    worker: bool = False


COMMANDS: Final = (
    Command(
        name="start",
        help="production worker (JSON logs, health on :8081)",
        target="agent.worker_commands:START",
        worker=True,
    ),
    Command(
        name="dev",
        help="development worker (colored logs, health on a free port)",
        target="agent.worker_commands:DEV",
        worker=True,
    ),
    Command(
        name="connect",
        help="development worker that joins one room now, without a dispatch",
        target="agent.worker_commands:CONNECT",
        worker=True,
    ),
    Command(name="console", help="talk to the agent in text, no LiveKit server needed", target="agent.console:CONSOLE"),
    Command(
        name="download-files",
        help="fetch plugin model files (Silero ships in the wheel)",
        target="agent.worker_commands:DOWNLOAD_FILES",
    ),
    Command(
        name="resolve", help="print the config a call would run with here, as JSON", target="agent.config.cli:COMMAND"
    ),
    Command(name="index", help="index knowledge collections ahead of time", target="agent.knowledge:COMMAND"),
    Command(
        name="events",
        help="the call events' webhook outbox (list, redeliver, replay-dead)",
        target="agent.events.cli:COMMAND",
    ),
    Command(name="qa", help="replay golden cases, run QA scenarios", target="agent.qa.cli:COMMAND"),
    Command(
        name="run-local", help="worker + sandbox server + fake providers on 127.0.0.1", target="agent.devrun:COMMAND"
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (the process's arguments by default) and run the command. Returns the exit code."""
    args = parse(sys.argv[1:] if argv is None else argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed arguments of one command line; ``run`` is the command's `Subcommand.run`.

    An unknown command or option exits 2 with argparse's usage line and message on stderr.
    """
    parser = argparse.ArgumentParser(prog=PROG, description="webcall-agent: a LiveKit Agents worker for web calls")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    passthrough = False
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        # Only the command asked for is imported (see the module docstring).
        if argv and argv[0] == command.name:
            if command.worker:
                metrics_directory()
            subcommand = _load(command.target)
            subcommand.add_arguments(sub)
            sub.set_defaults(run=subcommand.run)
            passthrough = subcommand.passthrough
    if not passthrough:
        return parser.parse_args(list(argv))
    args, rest = parser.parse_known_args(list(argv))
    args.rest = rest
    return args


def metrics_directory() -> None:
    """Turn on prometheus_client's multiprocess mode for the worker and its job processes.

    The library chooses its mode when it is first imported (the framework imports it), so ``PROMETHEUS_MULTIPROC_DIR``
    is set before the worker's modules are imported: job processes then write their counters to files there and the
    main process's ``/metrics`` sums them (`agent.metrics`). An operator's own directory is kept; the one made here
    is removed at exit. The framework empties the directory when the worker starts.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = tempfile.mkdtemp(prefix="webcall-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


def _load(target: str) -> Subcommand:
    module, _, attribute = target.partition(":")
    subcommand = getattr(importlib.import_module(module), attribute)
    if not isinstance(subcommand, Subcommand):
        raise TypeError(f"{target} is not a Subcommand")
    return subcommand
