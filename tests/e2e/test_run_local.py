"""``python -m agent run-local`` (what ``make run`` runs): sandbox, fakes and a worker up; all stopped on Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import pytest
from livekit import api

from tests.e2e.stack import Caller, agent_identities, until

pytestmark = [pytest.mark.e2e]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def nothing_listens_on(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.asyncio
async def test_run_local_serves_a_call_with_no_keys_and_stops_everything_on_ctrl_c() -> None:
    ports = [free_port(), free_port(), free_port(), free_port()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "run-local",
        "--livekit-port",
        str(ports[0]),
        "--openai-port",
        str(ports[1]),
        "--deepgram-port",
        str(ports[2]),
        "--page-port",
        str(ports[3]),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        async with asyncio.timeout(120):
            while not any("registered worker" in line for line in lines):
                line = (await process.stdout.readline()).decode(errors="replace")
                assert line, "run-local exited early:\n" + "".join(lines[-30:])
                lines.append(line)

        url = f"ws://127.0.0.1:{ports[0]}"
        lk = api.LiveKitAPI(url.replace("ws://", "http://"), "devkey", "secret")
        from sandbox.server.process import ServerProcess

        server = ServerProcess(process=None, url=url)  # type: ignore[arg-type]
        caller = await Caller.join(server, room="demo", microphone=True)
        try:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name="webcall-agent", room="demo", metadata=json.dumps({"welcome": {"text": "Local hello."}})
                )
            )
            await until(lambda: "Local hello." in caller.transcriptions, within_s=60, what="the welcome")
            assert await agent_identities(lk, "demo")
        finally:
            await caller.leave()
            await lk.aclose()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.read(), timeout=60)
        await asyncio.wait_for(process.wait(), timeout=60)
    assert process.returncode == 0
    assert all(nothing_listens_on(port) for port in ports), "every child process stopped"


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid`, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.asyncio
async def test_sigterm_to_run_local_stops_the_sandbox_the_fakes_the_dev_page_and_the_worker() -> None:
    ports = [free_port(), free_port(), free_port(), free_port()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "run-local",
        "--livekit-port",
        str(ports[0]),
        "--openai-port",
        str(ports[1]),
        "--deepgram-port",
        str(ports[2]),
        "--page-port",
        str(ports[3]),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []
    assert process.stdout is not None
    try:
        async with asyncio.timeout(120):
            while not any("registered worker" in line for line in lines):
                line = (await process.stdout.readline()).decode(errors="replace")
                assert line, "run-local exited early:\n" + "".join(lines[-30:])
                lines.append(line)
        children = children_of(process.pid)
        assert len(children) == 4, "sandbox server, fake providers, dev page and worker"
        process.terminate()
        await asyncio.wait_for(process.stdout.read(), timeout=60)
        await asyncio.wait_for(process.wait(), timeout=60)
        async with asyncio.timeout(30):
            while any(alive(pid) for pid in children):  # noqa: ASYNC110 - /proc offers nothing to await
                await asyncio.sleep(0.2)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for pid in children_of(process.pid):
            os.kill(pid, signal.SIGKILL)
