"""``python -m agent resolve``: print the config a call would run with on this deployment, as JSON.

    python -m agent resolve --job-metadata FILE [--room-metadata FILE] [--attributes FILE]
                            [--participant-metadata FILE] [--room-name NAME] [--strict]
    python -m agent resolve --example config/examples/<dialect>/<name>.json [--check] [--strict]

Metadata files are passed to the resolver as the raw strings the worker would receive (``-`` reads standard
input, for one of them). ``--attributes`` is a JSON object of strings, like LiveKit participant attributes.
``--example`` reads a golden example (the inputs, the deployment's ``WEBCALL_*`` settings and the expected config;
see ``config/examples/README.md``); ``--check`` compares the result with its ``expected`` and prints a diff.

Exit codes: 0 resolved (warnings included in the output), 1 ``--strict`` and there are warnings or ``--check``
and the result differs, 2 the command line or an input file could not be used.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

from agent.cli import Subcommand
from agent.config.golden import GoldenCaseError, read_case
from agent.config.resolve import CallSources
from agent.deployment import resolve_for_deployment
from agent.settings import get_settings


class UsageError(Exception):
    """The command line or an input file cannot be used; the message names the option, never file contents."""


def run(args: argparse.Namespace) -> int:
    """Resolve, print, compare; returns the exit code (module docstring)."""
    try:
        sources, expected = _example(args.example) if args.example else (_sources(args), None)
    except UsageError as exc:
        print(f"resolve: {exc}", file=sys.stderr)
        return 2
    # `--example` may have set WEBCALL_* variables: read the settings after it, not from an earlier cache.
    get_settings.cache_clear()
    config = resolve_for_deployment(sources, settings=get_settings())
    output = config.model_dump(mode="json")
    text = json.dumps(output, indent=2, ensure_ascii=False)
    print(text)
    if args.check and expected is not None and output != expected:
        expected_text = json.dumps(expected, indent=2, ensure_ascii=False)
        diff = difflib.unified_diff(expected_text.splitlines(), text.splitlines(), "expected", "resolved", lineterm="")
        print("\n".join(diff), file=sys.stderr)
        return 1
    if args.strict and config.warnings:
        print(f"resolve: {len(config.warnings)} warning(s) under --strict", file=sys.stderr)
        return 1
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--job-metadata", metavar="FILE", help="dispatch (job) metadata; - for stdin")
    inputs.add_argument("--example", metavar="FILE", type=Path, help="a golden example file (inputs + expected)")
    parser.add_argument("--room-metadata", metavar="FILE", help="room metadata; - for stdin")
    parser.add_argument(
        "--attributes", metavar="FILE", help="caller's participant attributes: a JSON object of strings"
    )
    parser.add_argument("--participant-metadata", metavar="FILE", help="caller's participant metadata; - for stdin")
    parser.add_argument("--room-name", metavar="NAME", help="the LiveKit room name (ScaiWave: scaiwave-<call_id>)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the config has any warning")
    parser.add_argument("--check", action="store_true", help="with --example: exit 1 when the result is not expected")


COMMAND = Subcommand(add_arguments=add_arguments, run=run)


def _sources(args: argparse.Namespace) -> CallSources:
    stdin_users = [
        name
        for name in ("job_metadata", "room_metadata", "attributes", "participant_metadata")
        if getattr(args, name) == "-"
    ]
    if len(stdin_users) > 1:
        raise UsageError("only one input can be read from stdin (-)")
    attributes = _attributes(json_text=_read(args.attributes, option="--attributes")) if args.attributes else {}
    return CallSources(
        job_metadata=_read(args.job_metadata, option="--job-metadata"),
        room_metadata=_read(args.room_metadata, option="--room-metadata") if args.room_metadata else None,
        caller_metadata=_read(args.participant_metadata, option="--participant-metadata")
        if args.participant_metadata
        else None,
        caller_attributes=attributes,
        room_name=args.room_name,
    )


def _read(path: str, *, option: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError:
        raise UsageError(f"{option}: cannot read the file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{option}: the file is not UTF-8") from None


def _attributes(*, json_text: str) -> dict[str, str]:
    try:
        value = json.loads(json_text)
    except ValueError:
        raise UsageError("--attributes: not JSON") from None
    return _string_map(value, what="--attributes")


def _string_map(value: object, *, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(f"{what}: must be a JSON object whose values are strings (LiveKit attributes)")
    return {str(k): v for k, v in value.items()}


def _example(path: Path) -> tuple[CallSources, object]:
    """The inputs of a golden example file; its ``env`` is applied to this process before settings are read."""
    try:
        case = read_case(path)
    except GoldenCaseError as exc:
        raise UsageError(f"--example: not a golden case ({exc})") from None
    os.environ.update(case.env)
    return case.sources(), case.expected
