"""``python -m agent run-local`` as a child process of a test, on free loopback ports, as ``make run`` runs it.

`DevStack.start` launches it with an environment cleared of LiveKit, provider and webcall settings (plus what the test
adds), `read_until` reads its output up to a marker (bounded), `keep_reading` drains the rest in the background and
`aclose` stops it with SIGINT (as Ctrl-C does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

READY_WITHIN_S = 180.0
# run-local's own stop gives its children 20 s together (agent.devrun.STOP_WITHIN_S); this leaves it room to exit.
STOP_WITHIN_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without LiveKit, provider and webcall settings, plus `extra`."""
    prefixes = ("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **extra}


@dataclass
class DevStack:
    """A running ``run-local``: its ports, every line it printed, and the dev page's URL once read."""

    process: asyncio.subprocess.Process
    ports: Mapping[str, int]
    page_url: str = ""
    lines: list[str] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str, env: Mapping[str, str]) -> DevStack:
        ports = {name: free_port() for name in ("livekit", "openai", "deepgram", "page")}
        options = [item for name, port in ports.items() for item in (f"--{name}-port", str(port))]
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "agent", "run-local", *options, *args),
            env=dict(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Started with SIGINT ignored, as a shell's background job is, and as this test process's children are
            # whenever livekit-agents has SIGINT masked around a fork of its own (`_mask_ctrl_c`, process-wide):
            # Ctrl-C must stop run-local whatever it inherited.
            preexec_fn=_ignore_sigint,
        )
        return cls(process=process, ports=ports)

    async def read_until(self, marker: str, *, within_s: float = READY_WITHIN_S) -> str:
        """Read output up to and including the next line containing `marker`; that line."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within_s):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, "run-local exited early:\n" + "\n".join(self.lines[-40:])
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if marker in line:
                    return line

    async def until_ready(self) -> None:
        """Until the page's URL is printed and the worker has registered."""
        self.page_url = (await self.read_until("talk to the agent: open ")).split(" open ", 1)[1]
        await self.read_until("registered worker")

    def keep_reading(self) -> None:
        async def read() -> None:
            assert self.process.stdout is not None
            while raw := await self.process.stdout.readline():
                self.lines.append(raw.decode(errors="replace").rstrip())

        self._reader = asyncio.create_task(read())

    async def aclose(self) -> int:
        """Stop it as Ctrl-C does; its exit code. One that has not exited within `STOP_WITHIN_S` is killed with every
        process under it, so none is left running to hold its output open or load the tests after it.

        Its exit is read from ``returncode``, not awaited with ``wait()``: in Python 3.11 ``wait()`` returns only once
        every pipe to the child is closed, and a grandchild that inherited its stdout keeps that pipe open."""
        tree = descendants_of(self.process.pid)
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            if self._reader is None:
                self.keep_reading()
            if not await exited(self.process, within_s=STOP_WITHIN_S):
                tree |= descendants_of(self.process.pid)
                self.process.kill()
                for pid in tree:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                assert await exited(self.process, within_s=10), "run-local survived SIGKILL"
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=30)
        assert self.process.returncode is not None
        return self.process.returncode


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def exited(process: asyncio.subprocess.Process, *, within_s: float) -> bool:
    """Whether `process` exits within `within_s` (see `DevStack.aclose` for why this polls)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while process.returncode is None and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return process.returncode is not None


def descendants_of(pid: int) -> set[int]:
    """Every process under `pid` (children, theirs, ...), read from /proc."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        children = set(children_of(frontier.pop())) - found
        found |= children
        frontier.extend(children)
    return found


def children_of(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, read from /proc: pid -> command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found[int(entry)] = command
    return found
