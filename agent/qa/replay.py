"""``python -m agent qa call --example FILE [caller options]``: a golden case replayed through the sandbox caller.

The case (read by `agent.config.golden`) supplies the room's, the dispatch's and the caller's metadata, the caller's
attributes and the room name, and its expected welcome is compared with the one heard; every other option is
``python -m sandbox call``'s, and an explicit option wins over the case (attributes are added to the case's). The
case's ``env`` is carried into the report as ``example_env``: the worker must run with those settings for the case
to hold.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.config.golden import GoldenCase, GoldenCaseError, read_case
from sandbox.caller import Preset
from sandbox.caller import main as call_main

PROG = "agent qa call"


def preset(case: GoldenCase) -> Preset:
    """What the caller sends for ``case``: its documents as LiveKit carries them, its attributes and room name."""
    return Preset(
        room=case.room_name,
        room_metadata=case.room_metadata,
        metadata=case.wire("job_metadata"),
        participant_metadata=case.wire("participant_metadata"),
        attributes=dict(case.attributes),
        expected_welcome=case.expected_welcome(),
        example_env=dict(case.env),
    )


def main(argv: Sequence[str]) -> int:
    """Exit codes as ``python -m sandbox call``'s: 0 welcomed, 1 not, 2 unusable arguments, case or server."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", add_help=False)
    parser.add_argument("--example", type=Path, metavar="FILE")
    known, rest = parser.parse_known_args(list(argv))
    if {"-h", "--help"} & set(rest):
        print("--example FILE: replay a golden case of config/examples/ (its metadata, attributes, room name)")
    if known.example is None:
        return call_main(rest, prog=PROG)
    try:
        case = read_case(known.example)
    except GoldenCaseError as exc:
        print(f"{PROG}: --example: not a golden case ({exc})", file=sys.stderr)
        return 2
    return call_main(rest, preset=preset(case), prog=PROG)
