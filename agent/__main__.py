"""Command line: `python -m agent start|dev|console|resolve|index|events|qa|run-local ...`.

`resolve` is pure (no LiveKit); `start`, `dev`, `console` run the worker; `events outbox|redeliver` lists and
re-sends the call events the webhook has not taken yet; `qa call|run` replays golden cases and runs QA scenarios
against a running stack; `run-local` starts the sandbox server and fake providers on
127.0.0.1 when `LIVEKIT_URL` is unset, then the worker against them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

WORKER_COMMANDS = ("start", "dev")


def metrics_directory() -> None:
    """Turn on prometheus_client's multiprocess mode for the worker and its job processes.

    The library chooses its mode when it is first imported (the framework imports it), so ``PROMETHEUS_MULTIPROC_DIR``
    is set here, before anything else is imported: job processes then write their counters to files there and the
    main process's ``/metrics`` sums them (`agent.metrics`). An operator's own directory is kept; the one made here
    is removed at exit. The framework empties the directory when the worker starts.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = tempfile.mkdtemp(prefix="webcall-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else ""
    if command == "resolve":
        from agent.config.cli import main as resolve_main

        return resolve_main(args[1:])
    if command == "index":
        from agent.knowledge import main as index_main

        return index_main(args[1:])
    if command == "events":
        from agent.events.cli import main as events_main

        return events_main(args[1:])
    if command == "qa":
        from agent.qa.cli import main as qa_main

        return qa_main(args[1:])
    if command == "run-local":
        from agent.devrun import main as devrun_main

        return devrun_main(args[1:])
    if command in WORKER_COMMANDS:
        metrics_directory()
    from agent.worker import main as worker_main

    return worker_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
