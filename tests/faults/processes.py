"""The stack for process faults: the sandbox server, the fakes, a webhook receiver and workers that each lead their
own process group (so a test can SIGKILL one job process, or a whole worker with its forkserver and job processes).

Every secret is a marker value (`tests.trust.test_log_redaction_e2e`), and everything the runs write (each worker's
stdout, the spool, the outbox, every request the receiver got, each metrics scrape) is kept for the marker grep.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from livekit import api

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import Caller, WorkerProcess, dispatch, providers, room_name, spool_events, until, worker_env
from tests.events.receiver import Receiver, running_receiver
from tests.ops.scrape import get
from tests.trust.test_log_redaction_e2e import DEEPGRAM_KEY, EVENTS_SECRET, LIVEKIT_SECRET, OPENAI_KEY

WELCOME = "Hello, you are through."
WELCOME_WITHIN_S = 60.0
# A worker's start (forkserver, 2 warm job processes, registration) on a 2-core box other runs keep busy.
READY_WITHIN_S = 180.0


@dataclass
class ProcessStack:
    server: ServerProcess
    openai: FakeOpenAI
    deepgram: FakeDeepgram
    receiver: Receiver
    lk: api.LiveKitAPI
    spool: Path
    outbox: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    scrapes: list[str] = field(default_factory=list)

    async def start_worker(self, **settings: str) -> WorkerProcess:
        env = worker_env(
            self.server,
            self.openai,
            self.deepgram,
            OPENAI_API_KEY=OPENAI_KEY,
            DEEPGRAM_API_KEY=DEEPGRAM_KEY,
            WEBCALL_EVENTS_URL=self.receiver.url,
            WEBCALL_EVENTS_SECRET=EVENTS_SECRET,
            WEBCALL_EVENTS_DIR=str(self.spool),
            WEBCALL_EVENTS_OUTBOX_DIR=str(self.outbox),
            WEBCALL_IDLE_PROCESSES="2",
            **settings,
        )
        worker = await WorkerProcess.start(env, own_process_group=True, ready_within_s=READY_WITHIN_S)
        self.workers.append(worker)
        return worker

    async def start_call(self, prefix: str) -> tuple[str, Caller]:
        """A dispatched room whose caller read the welcome."""
        room = room_name(prefix)
        await self.lk.room.create_room(api.CreateRoomRequest(name=room))
        caller = await Caller.join(self.server, room=room)
        await dispatch(self.lk, room=room, metadata=json.dumps({"welcome": {"text": WELCOME}}))
        await until(lambda: WELCOME in caller.transcriptions, within_s=WELCOME_WITHIN_S, what=f"{room}'s welcome")
        return room, caller

    async def scrape(self, worker: WorkerProcess) -> str:
        """The worker's ``/metrics``, kept for the marker grep."""
        status, text = await get(worker.health_url("/metrics"))
        assert status == 200
        self.scrapes.append(text)
        return text

    async def drop(self, worker_id: str, *, abort: bool) -> list[str]:
        """``POST /sandbox/faults/drop-worker``: the server cuts the worker's ``/agent`` connection."""
        token = (
            api.AccessToken(self.server.api_key, self.server.api_secret)
            .with_grants(api.VideoGrants(room_list=True))
            .to_jwt()
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.server.http_url}/sandbox/faults/drop-worker",
                json={"worker_id": worker_id, "abort": abort},
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return list(body["dropped"])

    def events(self, room: str, kind: str) -> list[dict[str, object]]:
        """The signed events of `kind` the receiver took (2xx) for `room`."""
        return [e for e in self.receiver.delivered() if e.get("room") == room and e.get("type") == kind]

    def spooled(self, room: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in spool_events(self.spool) if e.get("room") == room and e.get("type") == kind]

    def written(self) -> dict[str, str]:
        """Everything the runs wrote, by where: each worker's output, every file under the spool and the outbox
        (the journal included), each request the receiver got (headers and body), each metrics scrape."""
        out = {f"worker {i} output": "\n".join(w.lines) for i, w in enumerate(self.workers)}
        for root in (self.spool, self.outbox):
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
        for i, request in enumerate(self.receiver.requests):
            out[f"webhook request {i}"] = json.dumps(request.headers) + "\n" + request.body.decode("utf-8", "replace")
        for i, text in enumerate(self.scrapes):
            out[f"metrics scrape {i}"] = text
        return out


def job_process_of(worker: WorkerProcess, room: str) -> psutil.Process:
    """The job process serving `room`: the worker's descendant whose pid the worker's records give for the room's job
    (the framework's ``pid`` on the job's records), checked to be a live descendant."""
    descendants = {p.pid: p for p in psutil.Process(worker.process.pid).children(recursive=True)}
    pids = {r.get("pid") for r in worker.room_records(room)} & set(descendants)
    assert len(pids) == 1, f"one job process serves {room}: {pids}"
    return descendants[pids.pop()]


def kill_group(worker: WorkerProcess) -> None:
    """SIGKILL the worker's whole process group: its main process, forkserver and job processes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def process_stack(tmp: Path) -> AsyncIterator[ProcessStack]:
    await asyncio.to_thread(speech.load_all)
    server = dataclasses.replace(
        await start_server_process(port=0, extra_args=["--api-secret", LIVEKIT_SECRET]), api_secret=LIVEKIT_SECRET
    )
    try:
        async with providers() as (openai, deepgram), running_receiver(EVENTS_SECRET) as receiver:
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            stack = ProcessStack(
                server=server,
                openai=openai,
                deepgram=deepgram,
                receiver=receiver,
                lk=lk,
                spool=tmp / "spool",
                outbox=tmp / "outbox",
            )
            try:
                yield stack
            finally:
                await lk.aclose()
                for worker in stack.workers:
                    await worker.aclose()
                    kill_group(worker)
    finally:
        await server.aclose()
