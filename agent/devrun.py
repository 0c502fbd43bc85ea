"""``make run`` / ``python -m agent run-local``: the worker with everything it needs on this machine.

With ``LIVEKIT_URL`` set this is ``python -m agent start`` (a production worker). Without it, it starts the bundled
sandbox LiveKit server (``python -m sandbox``) and the fake OpenAI/Deepgram providers (``python -m sandbox
providers``) as child processes on 127.0.0.1, points a development worker (``python -m agent dev``) at them with
their dev keys, and stops all three on Ctrl-C or SIGTERM. No account, key or network beyond loopback is needed; the
fakes speak and transcribe with offline engines.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Final

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
        **os.environ,
        **provider_env,
        "LIVEKIT_URL": url,
        "LIVEKIT_API_KEY": DEV_API_KEY,
        "LIVEKIT_API_SECRET": DEV_API_SECRET,
        "HF_HUB_OFFLINE": "1",
    }


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent run-local", description=__doc__)
    parser.add_argument("--livekit-port", type=int, default=7880)
    parser.add_argument("--openai-port", type=int, default=7890)
    parser.add_argument("--deepgram-port", type=int, default=7891)
    args = parser.parse_args(argv)
    if os.environ.get("LIVEKIT_URL"):
        from agent.worker import main as worker_main

        return worker_main(["start"])

    children = Children()
    # SIGTERM reaches only this process (Ctrl-C reaches the whole group): both end up in `children.stop()`.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        env = local_environment(args, children)
        print(f"sandbox LiveKit server: {env['LIVEKIT_URL']} (key {DEV_API_KEY}, secret {DEV_API_SECRET})", flush=True)
        print("join a room: python -m sandbox token --room demo --identity me", flush=True)
        return children.start(["-m", "agent", "dev"], env=env, capture=False).wait()
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(f"run-local: {error}", file=sys.stderr)
        return 1
    finally:
        children.stop()
