"""``python -m agent.devpage [--host 127.0.0.1] [--port 7800]``: serve the dev page.

Reads ``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET`` (the server the page's calls go to),
``LIVEKIT_AGENT_NAME`` (the worker to dispatch) and ``WEBCALL_EVENTS_SECRET`` (to verify the call events the worker
posts to ``/webhook``; without it the page shows no events). Prints ``dev page: <url>`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiohttp import web

from agent.devpage.app import make_app
from agent.devpage.calls import LiveKitCalls
from agent.devpage.events import EventHub
from agent.errors import SettingsError
from agent.events.signing import parse_secrets
from agent.settings import get_settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.devpage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7800)
    args = parser.parse_args(argv)
    settings = get_settings()
    if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
        print("dev page: LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are required", file=sys.stderr)
        return 2
    try:
        secrets = parse_secrets(settings.events_secret.get_secret_value()) if settings.events_secret else ()
    except SettingsError:
        print("dev page: WEBCALL_EVENTS_SECRET is not a whsec_ secret; no events will be shown", file=sys.stderr)
        secrets = ()

    async def run() -> None:
        # livekit-api's HTTP session belongs to the running loop: made here, not before asyncio.run.
        calls = LiveKitCalls(
            url=settings.livekit_url or "",
            api_key=settings.livekit_api_key.get_secret_value() if settings.livekit_api_key else "",
            api_secret=settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else "",
            agent_name=settings.agent_name,
        )
        await serve(make_app(calls=calls, hub=EventHub(secrets), settings=settings), host=args.host, port=args.port)

    asyncio.run(run())
    return 0


async def serve(app: web.Application, *, host: str, port: int) -> None:
    """Serve `app` until SIGINT or SIGTERM; ``dev page: <url>`` is printed once it listens (port 0: a free one)."""
    # The event streams never end by themselves: do not wait the default 60 s for them at shutdown.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"dev page: http://{host}:{bound}/", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
