"""``make run`` / ``python -m agent run-local``: a development worker with everything it needs on this machine, the dev
page, and a restart of the worker whenever its code changes.

It starts, as child processes on 127.0.0.1: the bundled sandbox LiveKit server (``python -m sandbox``) unless
``LIVEKIT_URL`` names a server to use instead (then ``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET`` are that server's);
the fake OpenAI/Deepgram providers (``python -m sandbox providers``) for whatever the environment gives no provider
for (`agent.devproviders`: no ``OPENAI_API_KEY`` is said in one line, ``OPENAI_BASE_URL`` such as a local Ollama
serves the LLM); the dev page (``python -m agent.devpage``, its URL printed); and a development worker
(``python -m agent dev``) pointed at them, restarted when a Python file of the ``agent`` package changes
(`agent.devreload`; ``--watch DIR`` to watch other directories), while the server, the fakes and the page stay up.
Ctrl-C or SIGTERM stops them all. With no keys, no account or network beyond loopback is needed; the fakes speak and
transcribe with offline engines.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from agent.cli import Subcommand
from agent.devproviders import ProviderPlan, plan_providers
from agent.devreload import AGENT_PACKAGE, run_worker
from agent.events.signing import new_secret

DEV_API_KEY: Final = "devkey"
DEV_API_SECRET: Final = "secret"
READY_WITHIN_S: Final = 120.0
# How long the children of a stopping run have, together, to exit on SIGINT before they are killed.
STOP_WITHIN_S: Final = 20.0


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
        """SIGINT to each, then one shared `STOP_WITHIN_S` for all of them to exit; the rest are killed. Bounded,
        however many children there are and however loaded the machine is."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_WITHIN_S
        for process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
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


def dev_defaults() -> dict[str, str]:
    """Settings a local run gives the worker unless the environment sets them."""
    return {
        # A development stack's webhook receiver is usually plain http on this machine.
        "WEBCALL_EVENTS_ALLOW_HTTP": "true",
        # Dev mode keeps no warm job process by default: the first call would wait seconds for one to start.
        "WEBCALL_IDLE_PROCESSES": "1",
        "HF_HUB_OFFLINE": "1",
    }


def sandbox_environment(args: argparse.Namespace, children: Children) -> dict[str, str]:
    """Start the sandbox LiveKit server; the variables that point the worker and the page at it."""
    server = children.start(
        ["-m", "sandbox", "--port", str(args.livekit_port), "--api-key", DEV_API_KEY, "--api-secret", DEV_API_SECRET]
    )
    server_lines = read_until(server.stdout, marker="LIVEKIT_URL=", process=server)
    url = next(line.split("=", 1)[1] for line in server_lines if line.startswith("LIVEKIT_URL="))
    children.relay(server)
    return {"LIVEKIT_URL": url, "LIVEKIT_API_KEY": DEV_API_KEY, "LIVEKIT_API_SECRET": DEV_API_SECRET}


def fakes_environment(args: argparse.Namespace, children: Children, *, plan: ProviderPlan) -> dict[str, str]:
    """Start the fake providers when `plan` needs any; the variables of those it needs."""
    if not (plan.fake_openai or plan.fake_deepgram):
        return {}
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
    wanted = tuple(
        prefix for prefix, fake in (("OPENAI_", plan.fake_openai), ("DEEPGRAM_", plan.fake_deepgram)) if fake
    )
    return {name: value for name, value in provider_env.items() if name.startswith(wanted)}


def worker_environment(args: argparse.Namespace, children: Children, *, environ: Mapping[str, str]) -> dict[str, str]:
    """Start the sandbox (unless ``LIVEKIT_URL``) and the fakes `environ` needs; the worker's environment."""
    env = {**dev_defaults(), **environ}
    if environ.get("LIVEKIT_URL"):
        print(f"LiveKit server: {environ['LIVEKIT_URL']} (LIVEKIT_URL; no sandbox server)", flush=True)
    else:
        env.update(sandbox_environment(args, children))
        print(f"sandbox LiveKit server: {env['LIVEKIT_URL']} (key {DEV_API_KEY}, secret {DEV_API_SECRET})", flush=True)
    plan = plan_providers(environ)
    env.update(plan.env)
    env.update(fakes_environment(args, children, plan=plan))
    print(plan.summary, flush=True)
    return env


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
    parser.add_argument(
        "--watch",
        type=Path,
        action="append",
        metavar="DIR",
        help="restart the worker when a Python file under DIR changes (repeatable; default: the agent package)",
    )


def run(args: argparse.Namespace) -> int:
    children = Children()
    outbox = tempfile.TemporaryDirectory(prefix="webcall-events-")
    # SIGTERM reaches only this process (Ctrl-C reaches the whole group): both end up in `children.stop()`.
    signal.signal(signal.SIGTERM, _interrupted)
    # A parent that ignored SIGINT (a shell's background job, a process starting its own children with SIGINT
    # masked, as livekit-agents does around a fork) passes SIG_IGN on, and Python then installs no Ctrl-C handler:
    # Ctrl-C would not stop the stack. Install it whatever the parent had; the children then start with the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        env = worker_environment(args, children, environ=os.environ)
        env, page_url = with_dev_page(env, port=args.page_port, children=children, outbox=outbox.name)
        print(f"talk to the agent: open {page_url}", flush=True)
        if not os.environ.get("LIVEKIT_URL"):
            print("or join a room yourself: python -m sandbox token --room demo --identity me", flush=True)
        run_worker(
            lambda: children.start(["-m", "agent", "dev"], env=env, capture=False),
            paths=args.watch or (AGENT_PACKAGE,),
        )
        return 0
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(f"run-local: {error}", file=sys.stderr)
        return 1
    finally:
        children.stop()
        outbox.cleanup()


COMMAND = Subcommand(add_arguments=add_arguments, run=run)
