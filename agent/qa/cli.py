"""``python -m agent qa call|run``.

    python -m agent qa call --example config/examples/<dialect>/<name>.json [python -m sandbox call options]
    python -m agent qa run [SCENARIO.yaml ...] [--junit FILE]

``call`` replays one golden case as a caller (`agent.qa.replay`); ``run`` runs scenarios with expectations against
a running stack (`agent.qa.runner`; every ``config/scenarios/*.yaml`` when none is named).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = "usage: python -m agent qa {call,run} ...  (python -m agent qa run --help)"


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    command = args[0] if args else ""
    if command == "call":
        from agent.qa.replay import main as replay_main

        return replay_main(args[1:])
    if command == "run":
        from agent.qa.run import main as run_main

        return run_main(args[1:])
    print(USAGE, file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2
