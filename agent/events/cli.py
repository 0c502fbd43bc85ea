"""``python -m agent events ...``: the operator's view of the webhook outbox and a redelivery by hand.

    python -m agent events outbox [--json]     pending, in-flight, dead and quarantined events: ids, types, ages,
                                               attempts, last status (never content)
    python -m agent events redeliver --once    one pass, its counts printed; exit 1 if an event failed again
    python -m agent events redeliver           passes every WEBCALL_EVENTS_REDELIVER_INTERVAL_S until interrupted
    python -m agent events replay-dead [--event-id ID ...] [--job JOB]
                                               send dead events back to pending (all, or those named), their age
                                               limits counted from now; the next pass re-sends them
    python -m agent events new-secret          print a fresh whsec_ secret for WEBCALL_EVENTS_SECRET

The directory, URL and secret come from the process settings only.
Running it beside live workers is safe: a job's events are claimed under its lock before they are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import asdict
from typing import TextIO

from agent.cli import Subcommand, parse
from agent.events.outbox import Outbox
from agent.events.record import Entry
from agent.events.redelivery import Redeliverer
from agent.events.signing import new_secret
from agent.events.sinks import Refused
from agent.settings import Settings, get_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETTINGS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="events_command", required=True)
    listing = sub.add_parser("outbox", help="list the outbox: counts, ids, types, ages (no content)")
    listing.add_argument("--json", action="store_true", help="one JSON array of entries")
    redeliver = sub.add_parser("redeliver", help="re-send pending events to WEBCALL_EVENTS_URL")
    redeliver.add_argument("--once", action="store_true", help="one pass, then exit")
    replay = sub.add_parser("replay-dead", help="send dead events back to pending, for the next pass to re-send")
    replay.add_argument("--event-id", action="append", default=[], help="only this event (repeatable)")
    replay.add_argument("--job", help="only this job's events")
    sub.add_parser("new-secret", help="print a fresh whsec_ secret (Standard Webhooks)")


def main(argv: list[str], *, settings: Settings | None = None, out: TextIO | None = None) -> int:
    """``python -m agent events ARGV ...`` in this process, with its settings and output given (tests use it)."""
    return run(parse(["events", *argv]), settings=settings, out=out)


def run(args: argparse.Namespace, *, settings: Settings | None = None, out: TextIO | None = None) -> int:
    """Run one ``events`` command. Returns the exit code."""
    settings = settings if settings is not None else get_settings()
    out = out if out is not None else sys.stdout
    if args.events_command == "outbox":
        return _list(Outbox(settings.outbox_dir()), as_json=args.json, out=out)
    if args.events_command == "new-secret":
        print(new_secret(), file=out)
        return EXIT_OK
    if args.events_command == "replay-dead":
        replayed = Outbox(settings.outbox_dir()).replay_dead(now=time.time(), event_ids=args.event_id, job=args.job)
        print(json.dumps(asdict(replayed)), file=out)
        return EXIT_FAILED if replayed.busy else EXIT_OK
    redeliverer = Redeliverer.from_settings(settings)
    if redeliverer is None:
        print("webcall-agent: WEBCALL_EVENTS_URL and WEBCALL_EVENTS_SECRET are needed to redeliver", file=sys.stderr)
        return EXIT_SETTINGS
    if isinstance(redeliverer, Refused):
        print(f"webcall-agent: webhook refused: {redeliverer.reason}", file=sys.stderr)
        return EXIT_SETTINGS
    if args.once:
        counts = asyncio.run(redeliverer.run_once())
        print(json.dumps(counts.as_dict()), file=out)
        return EXIT_FAILED if counts.kept else EXIT_OK
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(redeliverer.run_forever(interval_s=settings.events_redeliver_interval_s))
    return EXIT_OK


def _list(outbox: Outbox, *, as_json: bool, out: TextIO) -> int:
    entries = outbox.listing()
    if as_json:
        print(json.dumps([asdict(entry) for entry in entries], indent=2), file=out)
        return EXIT_OK
    totals = {
        state: sum(1 for e in entries if e.state == state) for state in ("pending", "inflight", "dead", "corrupt")
    }
    print(f"outbox {outbox.directory}", file=out)
    print("totals: " + "  ".join(f"{state} {count}" for state, count in totals.items()), file=out)
    for entry in entries:
        print(_row(entry), file=out)
    return EXIT_OK


def _row(entry: Entry) -> str:
    if entry.event_id is None:
        return f"{entry.state:<9} {entry.name}"
    age = "" if entry.age_s is None else _age(entry.age_s)
    status = "-" if entry.last_status is None else str(entry.last_status)
    reason = entry.dead_reason or ""
    return (
        f"{entry.state:<9} {entry.event_id:<36} {entry.event_type or '':<13} {entry.job_id or '':<24} "
        f"age {age:<8} attempts {entry.attempts or 0:<3} status {status:<4} {reason}"
    ).rstrip()


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


COMMAND = Subcommand(add_arguments=add_arguments, run=run)
