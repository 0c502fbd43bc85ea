"""``python -m sandbox``: serve the loopback LiveKit-compatible server, or run a sandbox tool.

python -m sandbox [--port 7880] [--api-key devkey] [--api-secret secret] [--no-v1]
python -m sandbox token --room ROOM --identity ID     print a join token for the dev keys
python -m sandbox netns -- COMMAND ...                 run COMMAND in a private network namespace
python -m sandbox providers ...                        the fake OpenAI/Deepgram providers
python -m sandbox call [--metadata JSON] [--type TEXT] ...  dispatch the agent as a QA caller; JSON report
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="LiveKit-compatible loopback server")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7880, help="port; 0 picks a free one (default 7880)")
    parser.add_argument("--api-key", default=None, help="API key (default devkey)")
    parser.add_argument("--api-secret", default=None, help="API secret (default secret)")
    parser.add_argument("--no-v1", action="store_true", help="answer /rtc/v1 with 404 so clients use /rtc")
    parser.add_argument("--empty-timeout", type=float, default=300.0, help="seconds a never-joined room lives")
    parser.add_argument("--departure-timeout", type=float, default=20.0, help="seconds a room lives once empty")
    parser.add_argument("--log-level", default="INFO")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    from sandbox.server import DEV_API_KEY, DEV_API_SECRET, running
    from sandbox.server.process import READY_PREFIX

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(
        host=args.host,
        port=args.port,
        api_key=args.api_key or DEV_API_KEY,
        api_secret=args.api_secret or DEV_API_SECRET,
        v1=not args.no_v1,
        empty_timeout=args.empty_timeout,
        departure_timeout=args.departure_timeout,
    ) as server:
        print(f"{READY_PREFIX}{server.url}", flush=True)
        print(f"LIVEKIT_API_KEY={server.api_key}", flush=True)
        await stop.wait()
    return 0


def _token(argv: Sequence[str]) -> int:
    from sandbox.server.auth import Keys

    parser = argparse.ArgumentParser(prog="python -m sandbox token")
    parser.add_argument("--room", required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    print(Keys().mint_join_token(room=args.room, identity=args.identity, name=args.name))
    return 0


def _state(argv: Sequence[str]) -> int:
    import json
    import urllib.request

    from livekit import api

    from sandbox.server import DEV_API_KEY, DEV_API_SECRET

    parser = argparse.ArgumentParser(prog="python -m sandbox state")
    parser.add_argument("--url", default="http://127.0.0.1:7880")
    parser.add_argument("--api-key", default=DEV_API_KEY)
    parser.add_argument("--api-secret", default=DEV_API_SECRET)
    args = parser.parse_args(argv)
    token = api.AccessToken(args.api_key, args.api_secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    url = args.url.replace("ws://", "http://", 1).rstrip("/") + "/sandbox/state"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        print(json.dumps(json.loads(response.read()), indent=2))
    return 0


def _netns(argv: Sequence[str]) -> int:
    from sandbox.server.process import netns_command, netns_env

    command = list(argv[1:] if argv and argv[0] == "--" else argv)
    if not command:
        print("usage: python -m sandbox netns -- COMMAND ...", file=sys.stderr)
        return 2
    wrapped = netns_command(command)
    os.execvpe(wrapped[0], wrapped, netns_env())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "providers":
        # Imported lazily: the providers need speech engines the server does not.
        from sandbox.providers.__main__ import main as providers_main

        return providers_main(args[1:])
    if args and args[0] == "token":
        return _token(args[1:])
    if args and args[0] == "state":
        return _state(args[1:])
    if args and args[0] == "call":
        from sandbox.caller import main as call_main

        return call_main(args[1:])
    if args and args[0] == "netns":
        return _netns(args[1:])
    parsed = _serve_parser().parse_args(args)
    logging.basicConfig(level=parsed.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from sandbox.server import NetworkSetupError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_serve(parsed))
    except (NetworkSetupError, OSError) as err:
        print(f"sandbox: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
