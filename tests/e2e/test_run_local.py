"""``python -m agent run-local`` (what ``make run`` runs): the dev stack a developer lives in.

- With no keys: the sandbox, the fakes, the page and a worker come up and the missing key is said in one line; a
  changed Python file restarts the worker only (the sandbox, the fakes and the page keep their processes) and the
  new worker serves a call; Ctrl-C or SIGTERM stops every child.
- With ``LIVEKIT_URL`` (a sandbox server started separately) no sandbox is started and the page dispatches to that
  server; with ``OPENAI_BASE_URL`` (here a fake OpenAI-compatible server the test runs, as a local Ollama would be)
  the LLM requests go there with the model asked for, while speech stays on the fake Deepgram.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest
from livekit import api

from sandbox.providers.openai_server import FakeOpenAI
from sandbox.server.process import ServerProcess
from tests.e2e.dev_stack import DevStack, children_of, clean_environment
from tests.e2e.stack import Caller, agent_identities, room_name, until

# Each test starts run-local (a worker, the sandbox, the fakes, the page): about 100 s on a busy 2-core box.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(600)]

NO_KEY_LINE = "no OPENAI_API_KEY: "


def nothing_listens_on(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def pid_running(command: str, children: Mapping[int, str]) -> int:
    """The pid of the one child whose command line contains `command`."""
    (pid,) = [pid for pid, line in children.items() if command in line]
    return pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
async def stopped_at_end() -> AsyncIterator[list[DevStack]]:
    """Stacks a test starts; each is stopped at the end, whatever happened."""
    stacks: list[DevStack] = []
    try:
        yield stacks
    finally:
        for stack in stacks:
            await stack.aclose()


async def welcome_heard(server: ServerProcess, *, room: str, welcome: str) -> None:
    """A caller joins `room`, the agent is dispatched there with `welcome`, and the caller gets it."""
    lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
    caller = await Caller.join(server, room=room, microphone=True)
    try:
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name="webcall-agent", room=room, metadata=json.dumps({"welcome": {"text": welcome}})
            )
        )
        await until(lambda: welcome in caller.transcriptions, within_s=90, what="the welcome")
        assert await agent_identities(lk, room)
    finally:
        await caller.leave()
        await lk.aclose()


def sandbox_of(stack: DevStack) -> ServerProcess:
    url = f"ws://127.0.0.1:{stack.ports['livekit']}"
    return ServerProcess(process=None, url=url)  # type: ignore[arg-type]


async def test_with_no_keys_it_says_so_in_one_line_a_changed_python_file_restarts_only_the_worker_and_ctrl_c_stops_all(
    stopped_at_end: list[DevStack], tmp_path: Path
) -> None:
    (tmp_path / "greeting.py").write_text("WELCOME = 'hello'\n", encoding="utf-8")
    stack = await DevStack.start("--watch", str(tmp_path), env=clean_environment())
    stopped_at_end.append(stack)
    await stack.until_ready()
    assert len([line for line in stack.lines if NO_KEY_LINE in line]) == 1
    before = children_of(stack.process.pid)
    worker = pid_running("-m agent dev", before)

    (tmp_path / "greeting.py").write_text("WELCOME = 'hello again'\n", encoding="utf-8")
    await stack.read_until("code changed (greeting.py): restarting the worker", within_s=60)
    await stack.read_until("registered worker")

    after = children_of(stack.process.pid)
    for child in ("-m sandbox --port", "-m sandbox providers", "-m agent.devpage"):
        assert pid_running(child, after) == pid_running(child, before), child
    assert pid_running("-m agent dev", after) != worker
    assert not alive(worker)
    await welcome_heard(sandbox_of(stack), room=room_name("restarted"), welcome="Hello from the new worker.")
    assert await stack.aclose() == 0
    assert all(nothing_listens_on(port) for port in stack.ports.values()), "every child process stopped"


async def test_sigterm_to_run_local_stops_the_sandbox_the_fakes_the_dev_page_and_the_worker() -> None:
    stack = await DevStack.start(env=clean_environment())
    try:
        await stack.until_ready()
        children = children_of(stack.process.pid)
        assert len(children) == 4, "sandbox server, fake providers, dev page and worker"
        stack.keep_reading()
        stack.process.terminate()
        await asyncio.wait_for(stack.process.wait(), timeout=60)
        async with asyncio.timeout(30):
            while any(alive(pid) for pid in children):  # noqa: ASYNC110 - /proc offers nothing to await
                await asyncio.sleep(0.2)
    finally:
        if stack.process.returncode is None:
            stack.process.kill()
            await stack.process.wait()
        for pid in children_of(stack.process.pid):
            os.kill(pid, signal.SIGKILL)


async def test_with_livekit_url_and_a_local_llm_server_the_page_uses_that_livekit_and_the_llm_goes_to_that_server(
    sandbox_server_process: ServerProcess, stopped_at_end: list[DevStack]
) -> None:
    server = sandbox_server_process
    async with FakeOpenAI() as local_llm:
        env = clean_environment(
            LIVEKIT_URL=server.url,
            LIVEKIT_API_KEY=server.api_key,
            LIVEKIT_API_SECRET=server.api_secret,
            OPENAI_BASE_URL=local_llm.base_url,
            WEBCALL_LLM_MODEL="llama3.2",
        )
        stack = await DevStack.start(env=env)
        stopped_at_end.append(stack)
        await stack.until_ready()
        stack.keep_reading()

        commands = children_of(stack.process.pid).values()
        assert not any("-m sandbox --port" in command for command in commands), "no sandbox server of its own"
        assert f"LiveKit server: {server.url} (LIVEKIT_URL; no sandbox server)" in stack.lines
        assert not any(NO_KEY_LINE in line for line in stack.lines)
        assert any(
            line.startswith(f"LLM: the OpenAI-compatible server at {local_llm.base_url}") for line in stack.lines
        )

        room = room_name("remote")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{stack.page_url}api/info") as response:
                assert (await response.json())["livekit_url"] == server.url
            body = {"room": room, "job_metadata": json.dumps({"welcome": {"text": "Hello from afar."}})}
            async with http.post(f"{stack.page_url}api/calls", json=body) as response:
                assert response.status == 200, await response.text()
                ticket = await response.json()
        caller = await Caller.join(server, room=room, identity=ticket["identity"])
        try:
            await until(lambda: "Hello from afar." in caller.transcriptions, within_s=90, what="the welcome")
            await caller.type("Are you open today?")
            await until(
                lambda: any("Are you open today?" in text for text in caller.transcriptions),
                within_s=60,
                what="the reply from the local LLM server",
            )
        finally:
            await caller.leave()

        completions = [r.json for r in local_llm.requests_to("/v1/chat/completions")]
        assert completions
        assert {c.get("model") for c in completions if isinstance(c, Mapping)} == {"llama3.2"}
        assert local_llm.requests_to("/v1/audio") == [], "speech stays on the fake Deepgram"
