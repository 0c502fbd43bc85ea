"""``python -m sandbox call``: the command line of the QA caller, from arguments and environment to a `CallPlan`,
and the exit code (0 a welcome was heard or read, 1 not, 2 unusable arguments or server, one line on stderr)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import jwt.warnings

from sandbox.caller.plan import (
    DEFAULT_AGENT_NAME,
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_URL,
    CallerError,
    CallPlan,
    Preset,
    Step,
)
from sandbox.caller.script import run_call


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: QA scripts read stderr.
        raise CallerError(message)


def _seconds(value: str) -> Step:
    seconds = float(value)
    if not seconds >= 0:
        raise ValueError(value)
    return Step("wait", seconds=seconds)


def parser(prog: str = "python -m sandbox call") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Dispatch the agent into a room as a caller and print a JSON report of what the caller got. "
        "LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET from the environment (default: the sandbox server).",
    )
    p.add_argument("--room", help="room name (default: a fresh qa-<random>)")
    p.add_argument("--room-metadata", metavar="JSON", help="create the room with this metadata: JSON or @FILE")
    p.add_argument("--metadata", metavar="JSON", help="the dispatch's job metadata: JSON or @FILE")
    p.add_argument("--participant-metadata", metavar="JSON", help="the caller's participant metadata: JSON or @FILE")
    p.add_argument("--agent-name", default=DEFAULT_AGENT_NAME, help="the agent to dispatch (default webcall-agent)")
    p.add_argument(
        "--attributes",
        nargs="+",
        action="extend",
        default=[],
        metavar="K=V",
        help="the caller's participant attributes",
    )
    p.add_argument("--identity", default="qa-caller")
    p.add_argument("--name", default="QA caller")
    p.add_argument(
        "--type", dest="steps", action="append", type=lambda t: Step("type", t), metavar="TEXT", help="type on lk.chat"
    )
    p.add_argument(
        "--say", dest="steps", action="append", type=lambda t: Step("say", t), metavar="TEXT", help="speak (espeak-ng)"
    )
    p.add_argument(
        "--barge-in",
        dest="steps",
        action="append",
        type=lambda t: Step("barge_in", t),
        metavar="TEXT",
        help="speak as soon as the agent is speaking",
    )
    p.add_argument("--wait", dest="steps", action="append", type=_seconds, metavar="SECONDS", help="stay silent")
    p.add_argument("--leave", dest="steps", action="append_const", const=Step("leave"), help="leave (ends the steps)")
    p.add_argument("--listen", type=float, default=5.0, metavar="SECONDS", help="stay after the last step")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="wait for the welcome (and a reply)")
    p.add_argument("--record", type=Path, metavar="OUT.WAV", help="write the agent's audio as a WAV file")
    p.add_argument("--keep", action="store_true", help="leave the room in place")
    p.add_argument("--log-level", default="CRITICAL", help="log level of the LiveKit SDK (stderr)")
    return p


def json_argument(value: str, *, option: str) -> str:
    """The text of a JSON option (``@FILE`` reads the file), checked to be JSON and sent as given."""
    text = _read_file(value[1:], option=option) if value.startswith("@") else value
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise CallerError(f"{option}: not JSON (line {exc.lineno}, column {exc.colno})") from None
    return text


def _read_file(path: str, *, option: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CallerError(f"{option}: cannot read {path}: {type(exc).__name__}") from None


def parse_attributes(pairs: Sequence[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CallerError(f"--attributes: expected KEY=VALUE, got {pair!r}")
        attributes[key] = value
    return attributes


def plan_from_args(
    argv: Sequence[str], *, env: dict[str, str], preset: Preset | None = None, prog: str = "python -m sandbox call"
) -> CallPlan:
    """The plan the command line and environment ask for, over ``preset``; ``CallerError`` on anything unusable."""
    given = preset or Preset()
    args = parser(prog).parse_args(list(argv))
    if args.listen < 0 or args.timeout <= 0:
        raise CallerError("--listen must be >= 0 and --timeout > 0")
    steps = tuple(args.steps or ())
    if any(step.action == "leave" for step in steps[:-1]):
        raise CallerError("--leave must be the last step")
    log_level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(log_level, int):
        raise CallerError("--log-level: not a level name")

    def document(value: str | None, *, option: str, default: str) -> str:
        return default if value is None else json_argument(value, option=option)

    return CallPlan(
        room=args.room or given.room or f"qa-{uuid.uuid4().hex[:8]}",
        url=env.get("LIVEKIT_URL") or DEFAULT_URL,
        api_key=env.get("LIVEKIT_API_KEY") or DEFAULT_API_KEY,
        api_secret=env.get("LIVEKIT_API_SECRET") or DEFAULT_API_SECRET,
        agent_name=args.agent_name,
        room_metadata=given.room_metadata
        if args.room_metadata is None
        else json_argument(args.room_metadata, option="--room-metadata"),
        metadata=document(args.metadata, option="--metadata", default=given.metadata),
        participant_metadata=document(
            args.participant_metadata, option="--participant-metadata", default=given.participant_metadata
        ),
        attributes={**given.attributes, **parse_attributes(args.attributes)},
        identity=args.identity,
        name=args.name,
        steps=steps,
        listen_s=args.listen,
        timeout_s=args.timeout,
        record=args.record,
        keep=args.keep,
        expected_welcome=given.expected_welcome,
        example_env=dict(given.example_env),
        log_level=log_level,
    )


def main(argv: Sequence[str] | None = None, *, preset: Preset | None = None, prog: str = "sandbox call") -> int:
    """``python -m sandbox call ...``: 0 welcomed, 1 not, 2 unusable arguments or server."""
    args = list(sys.argv[1:] if argv is None else argv)
    # PyJWT warns on every token signed with a short secret such as the sandbox's "secret"; stderr is for errors.
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
    try:
        plan = plan_from_args(args, env=dict(os.environ), preset=preset, prog=f"python -m {prog}")
        logging.basicConfig(level=plan.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        report = asyncio.run(run_call(plan))
    except CallerError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report.get("ok") else 1
