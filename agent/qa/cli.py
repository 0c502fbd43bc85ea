"""``python -m agent qa call|run``.

    python -m agent qa call --example config/examples/<dialect>/<name>.json [python -m sandbox call options]
    python -m agent qa run [SCENARIO.yaml ...] [--junit FILE]

``call`` replays one golden case as a caller (`agent.qa.replay`); ``run`` runs scenarios with expectations against
a running stack (`agent.qa.runner`; every ``config/scenarios/*.yaml`` when none is named). Each parses its own
options (``qa call`` hands most of them on to the sandbox caller's parser), so ``qa call --help`` and
``qa run --help`` are theirs.
"""

from __future__ import annotations

import argparse

from agent.cli import Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="qa_command", metavar="QA_COMMAND", required=True)
    # add_help=False: --help is left for the command's own parser, with everything else after the name.
    sub.add_parser(
        "call", add_help=False, help="replay a golden case (--example FILE) as a caller; python -m sandbox call options"
    )
    sub.add_parser("run", add_help=False, help="run QA scenarios against a running stack; exit 1 when one fails")


def run(args: argparse.Namespace) -> int:
    rest: list[str] = args.rest
    if args.qa_command == "call":
        from agent.qa.replay import main as replay_main

        return replay_main(rest)
    from agent.qa.run import main as run_main

    return run_main(rest)


COMMAND = Subcommand(add_arguments=add_arguments, run=run, passthrough=True)
