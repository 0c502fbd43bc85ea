"""Running the sandbox server as a child process, and running a command in a private network namespace.

``python -m sandbox`` prints one line ``LIVEKIT_URL=ws://127.0.0.1:<port>`` on stdout once it accepts
connections; ``ServerProcess`` starts it and waits for that line, so ``--port 0`` works.
``netns_command`` wraps a command in ``unshare -rn`` (a user + network namespace, no root needed) with ``lo`` up
and a veth pair, the one interface libwebrtc insists on; traffic in that namespace cannot reach any other host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .auth import DEV_API_KEY, DEV_API_SECRET
from .network import NETNS_ENV, NetworkSetupError

READY_PREFIX = "LIVEKIT_URL="

_NETNS_SETUP = (
    "ip link set lo up && "
    "ip link add sbx0 type veth peer name sbx1 && "
    "ip addr add 10.254.0.1/30 dev sbx0 && ip addr add 10.254.0.2/30 dev sbx1 && "
    "ip link set sbx0 up && ip link set sbx1 up && "
    'exec "$@"'
)


def netns_command(command: Sequence[str]) -> list[str]:
    """The argv that runs ``command`` inside a fresh network namespace with loopback and a veth pair."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise NetworkSetupError("running in a private network namespace needs 'unshare' (util-linux) and 'ip'")
    return ["unshare", "-rn", "sh", "-c", _NETNS_SETUP, "sandbox-netns", *command]


def netns_env() -> dict[str, str]:
    return {**os.environ, NETNS_ENV: "1"}


@dataclass
class ServerProcess:
    """A sandbox server in a child process."""

    process: asyncio.subprocess.Process
    url: str
    api_key: str = DEV_API_KEY
    api_secret: str = DEV_API_SECRET

    @property
    def http_url(self) -> str:
        return self.url.replace("ws://", "http://", 1)

    async def aclose(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_server_process(
    *, port: int = 0, extra_args: Sequence[str] = (), ready_within: float = 20.0
) -> ServerProcess:
    """Start ``python -m sandbox --port PORT`` and return once it is listening."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        str(port),
        *extra_args,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(ready_within):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise NetworkSetupError("the sandbox server exited before it was ready")
                if line.startswith(READY_PREFIX):
                    return ServerProcess(process=process, url=line[len(READY_PREFIX) :].strip())
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
