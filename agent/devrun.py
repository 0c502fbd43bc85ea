"""``make run`` / ``python -m agent run-local``: the worker with everything it needs on this machine, and the dev page.

With ``LIVEKIT_URL`` set this is ``python -m agent start`` (a production worker). Without it, it starts the bundled
sandbox LiveKit server (``python -m sandbox``) and the fake OpenAI/Deepgram providers (``python -m sandbox
providers``) as child processes on 127.0.0.1, then the dev page (``python -m agent.devpage``, its URL printed) and a
development worker (``python -m agent dev``) pointed at them with their dev keys, and stops them all on Ctrl-C or
SIGTERM. No account, key or network beyond loopback is needed; the fakes speak and transcribe with offline engines.

The worker posts its call events to the dev page (``WEBCALL_EVENTS_URL`` = the page's ``/webhook``, a fresh
``whsec_`` secret for this run, plain http allowed on loopback, the outbox in a directory removed at the end),
unless ``WEBCALL_EVENTS_URL`` is already set. One job process is kept warm (``WEBCALL_IDLE_PROCESSES=1`` unless
set): dev mode keeps none by default, and a first call then waits seconds for a process to start.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Final

from agent.cli import Subcommand
from agent.events.signing import new_secret

DEV_API_KEY: Final = "devkey"
DEV_API_SECRET: Final = "secret"
READY_WITHIN_S: Final = 120.0


@dataclass
class Children:
    """The child processes of a local run, stopped in reverse order."""

    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(
        self, argv: Sequence[str], *, env: dict[str, str] | None = None, capture: bool = True
    ) -> subprocess.Popen[str]:
        """Start ``python <argv>``; with `capture`, its stdout is readable (then copied through by `relay`)."""
        process = subprocess.Popen(
            [sys.executable, *argv], env=env, stdout=subprocess.PIPE if capture else None, text=True
        )
        self.processes.append(process)
        return process

    def relay(self, process: subprocess.Popen[str]) -> None:
        """Copy the rest of a child's stdout to ours, so the child never blocks on a full pipe."""

        def copy() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)

        threading.Thread(target=copy, daemon=True).start()

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def read_until(stream: IO[str] | None, *, marker: str, process: subprocess.Popen[str]) -> list[str]:
    """Lines a child prints up to and including the first containing `marker`."""
    assert stream is not None
    lines: list[str] = []
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"child exited before it was ready (exit code {process.wait()})")
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise RuntimeError("child not ready in time")


def exports(lines: Sequence[str]) -> dict[str, str]:
    """``export NAME=VALUE`` lines as a mapping."""
    found = {}
    for line in lines:
        if line.startswith("export ") and "=" in line:
            name, value = line.removeprefix("export ").split("=", 1)
            found[name.strip()] = value.strip()
    return found


def local_environment(args: argparse.Namespace, children: Children) -> dict[str, str]:
    server = children.start(
        ["-m", "sandbox", "--port", str(args.livekit_port), "--api-key", DEV_API_KEY, "--api-secret", DEV_API_SECRET]
    )
    server_lines = read_until(server.stdout, marker="LIVEKIT_URL=", process=server)
    url = next(line.split("=", 1)[1] for line in server_lines if line.startswith("LIVEKIT_URL="))
    children.relay(server)
    fakes = children.start(
        [
            "-m",
            "sandbox",
            "providers",
            "--openai-port",
            str(args.openai_port),
            "--deepgram-port",
            str(args.deepgram_port),
        ]
    )
    provider_env = exports(read_until(fakes.stdout, marker="# deepgram", process=fakes))
    children.relay(fakes)
    return {
        # A development stack's webhook receiver is usually plain http on this machine.
        "WEBCALL_EVENTS_ALLOW_HTTP": "true",
        # Dev mode keeps no warm job process by default: the first call would wait seconds for one to start.
        "WEBCALL_IDLE_PROCESSES": "1",
        **os.environ,
        **provider_env,
        "LIVEKIT_URL": url,
        "LIVEKIT_API_KEY": DEV_API_KEY,
        "LIVEKIT_API_SECRET": DEV_API_SECRET,
        "HF_HUB_OFFLINE": "1",
    }


def with_dev_page(env: dict[str, str], *, port: int, children: Children, outbox: str) -> tuple[dict[str, str], str]:
    """Start the dev page against `env`'s LiveKit; the worker's environment with the page as its events webhook,
    and the page's URL."""
    env = dict(env)
    if not env.get("WEBCALL_EVENTS_URL"):
        env.update(
            WEBCALL_EVENTS_URL=f"http://127.0.0.1:{port}/webhook",
            WEBCALL_EVENTS_SECRET=new_secret(),
            WEBCALL_EVENTS_ALLOW_HTTP="true",
            WEBCALL_EVENTS_OUTBOX_DIR=outbox,
        )
    page = children.start(["-m", "agent.devpage", "--port", str(port)], env=env)
    lines = read_until(page.stdout, marker="dev page:", process=page)
    children.relay(page)
    url = lines[-1].split("dev page:", 1)[1].strip()
    return env, url


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--livekit-port", type=int, default=7880, help="the sandbox LiveKit server's port")
    parser.add_argument("--openai-port", type=int, default=7890, help="the fake OpenAI's port")
    parser.add_argument("--deepgram-port", type=int, default=7891, help="the fake Deepgram's port")
    parser.add_argument("--page-port", type=int, default=7800, help="the dev page (http://127.0.0.1:PORT/)")


def run(args: argparse.Namespace) -> int:
    children = Children()
    outbox = tempfile.TemporaryDirectory(prefix="webcall-events-")
    try:
        if os.environ.get("LIVEKIT_URL"):
            return _against_livekit(args, children=children, outbox=outbox.name)
        # SIGTERM reaches only this process (Ctrl-C reaches the whole group): both end up in `children.stop()`.
        signal.signal(signal.SIGTERM, _interrupted)
        env = local_environment(args, children)
        print(f"sandbox LiveKit server: {env['LIVEKIT_URL']} (key {DEV_API_KEY}, secret {DEV_API_SECRET})", flush=True)
        env, page_url = with_dev_page(env, port=args.page_port, children=children, outbox=outbox.name)
        print(f"talk to the agent: open {page_url}", flush=True)
        print("or join a room yourself: python -m sandbox token --room demo --identity me", flush=True)
        return children.start(["-m", "agent", "dev"], env=env, capture=False).wait()
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(f"run-local: {error}", file=sys.stderr)
        return 1
    finally:
        children.stop()
        outbox.cleanup()


def _against_livekit(args: argparse.Namespace, *, children: Children, outbox: str) -> int:
    """``LIVEKIT_URL`` is set: no sandbox; the dev page against that server and a production worker in this process."""
    from agent.cli import main as cli_main

    env, page_url = with_dev_page(dict(os.environ), port=args.page_port, children=children, outbox=outbox)
    print(f"talk to the agent: open {page_url}", flush=True)
    os.environ.update(env)
    return cli_main(["start"])


COMMAND = Subcommand(add_arguments=add_arguments, run=run)
