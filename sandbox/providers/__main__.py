"""``python -m sandbox providers``: run the fake OpenAI and Deepgram servers on 127.0.0.1 until interrupted.

Prints the environment a worker needs to use them (dummy keys, base URLs) and loads the speech models first so
the first request is not slow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from sandbox.providers import speech
from sandbox.providers.deepgram_server import FakeDeepgram
from sandbox.providers.openai_server import FakeOpenAI

DEFAULT_OPENAI_PORT = 7890
DEFAULT_DEEPGRAM_PORT = 7891


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox providers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--openai-port", type=int, default=DEFAULT_OPENAI_PORT)
    parser.add_argument("--deepgram-port", type=int, default=DEFAULT_DEEPGRAM_PORT)
    parser.add_argument(
        "--tts-first-byte", type=float, default=0.0, help="extra seconds before the first byte of TTS answers"
    )
    parser.add_argument("--no-preload", action="store_true", help="load speech models on first use instead")
    return parser


def environment(openai: FakeOpenAI, deepgram: FakeDeepgram) -> dict[str, str]:
    """The variables that point a worker at the running fakes."""
    return {
        "OPENAI_API_KEY": "sandbox",
        "OPENAI_BASE_URL": openai.base_url,
        "DEEPGRAM_API_KEY": "sandbox",
        "DEEPGRAM_BASE_URL": deepgram.base_url,
    }


async def serve(args: argparse.Namespace) -> None:
    if not args.no_preload:
        await asyncio.to_thread(speech.load_all)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        FakeOpenAI(host=args.host, port=args.openai_port) as openai,
        FakeDeepgram(host=args.host, port=args.deepgram_port) as deepgram,
    ):
        openai.set_latency(first_byte=args.tts_first_byte, path="/v1/audio/speech")
        deepgram.set_latency(first_byte=args.tts_first_byte, path="/v1/speak")
        for name, value in environment(openai, deepgram).items():
            print(f"export {name}={value}")
        print(f"# deepgram STT base_url={deepgram.listen_url} TTS base_url={deepgram.speak_url}", flush=True)
        await stop.wait()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except ValueError as exc:
        print(f"providers: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"providers: cannot listen ({exc.strerror})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main(sys.argv[1:]))
