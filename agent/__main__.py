"""Command line: `python -m agent start|dev|console|resolve|index|events|qa|run-local ...`.

`resolve` is pure (no LiveKit); `start`, `dev`, `console` run the worker; `events outbox|redeliver` lists and
re-sends the call events the webhook has not taken yet; `qa call|run` replays golden cases and runs QA scenarios
against a running stack; `run-local` starts the sandbox server and fake providers on
127.0.0.1 when `LIVEKIT_URL` is unset, then the worker against them.
"""

from __future__ import annotations

import sys


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
    from agent.worker import main as worker_main

    return worker_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
