"""A pool for operations tests: the sandbox server, fake providers, a webhook receiver and any number of workers,
each ``python -m agent start`` leading its own process group (as a container's PID 1 does), so a test can signal
one worker, or its whole group, the way an init system stops it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from livekit import api

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import Caller, WorkerProcess, dispatch, providers, room_name, until, worker_env
from tests.events.receiver import Receiver, running_receiver, secret_for

SECRET = secret_for("ops_pool")
EXIT_WITHIN_S = 60.0


@dataclass
class PoolWorker:
    process: WorkerProcess
    id: str

    @property
    def pid(self) -> int:
        return self.process.process.pid

    def stop(self, *, whole_group: bool = False) -> None:
        """SIGTERM to the worker, or to its whole process group (the worker, its forkserver and job processes)."""
        if whole_group:
            os.killpg(self.pid, signal.SIGTERM)
        else:
            os.kill(self.pid, signal.SIGTERM)

    async def exit_code(self, *, within_s: float = EXIT_WITHIN_S) -> int:
        return await asyncio.wait_for(self.process.process.wait(), within_s)


@dataclass
class Pool:
    server: ServerProcess
    openai: FakeOpenAI
    deepgram: FakeDeepgram
    receiver: Receiver
    lk: api.LiveKitAPI
    workers: list[PoolWorker] = field(default_factory=list)

    async def add_worker(self, **settings: str) -> PoolWorker:
        env = worker_env(
            self.server,
            self.openai,
            self.deepgram,
            WEBCALL_EVENTS_URL=self.receiver.url,
            WEBCALL_EVENTS_SECRET=SECRET,
            **settings,
        )
        process = await WorkerProcess.start(env, own_process_group=True)
        registered = next(r for r in process.records() if r.get("message") == "registered worker")
        worker = PoolWorker(process=process, id=str(registered["id"]))
        self.workers.append(worker)
        return worker

    async def state(self) -> dict[str, Any]:
        """``GET /sandbox/state``: workers, their jobs, the jobs waiting for a worker, dispatches."""
        token = (
            api.AccessToken(self.server.api_key, self.server.api_secret)
            .with_grants(api.VideoGrants(room_list=True))
            .to_jwt()
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.server.http_url}/sandbox/state", headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            state: dict[str, Any] = await r.json()
            return state

    async def jobs_of(self, worker: PoolWorker) -> list[str]:
        state = await self.state()
        return next((list(w["jobs"]) for w in state["workers"] if w["id"] == worker.id), [])

    async def start_call(self, prefix: str, *, welcome: str = "Hello, you are through.") -> tuple[str, Caller]:
        """A room with its caller, dispatched, once the caller read the welcome."""
        room = room_name(prefix)
        await self.lk.room.create_room(api.CreateRoomRequest(name=room))
        caller = await Caller.join(self.server, room=room)
        await dispatch(self.lk, room=room, metadata=json.dumps({"welcome": {"text": welcome}}))
        await until(lambda: welcome in caller.transcriptions, within_s=60, what=f"{room}'s welcome")
        return room, caller

    async def worker_of(self, room: str) -> str | None:
        """The id of the worker whose job serves `room`, if any."""
        state = await self.state()
        return next(
            (
                w["id"]
                for w in state["workers"]
                for d in state["dispatches"]
                if d["room"] == room
                for j in d["jobs"]
                if j["id"] in w["jobs"]
            ),
            None,
        )

    def events(self, room: str, kind: str) -> list[dict[str, object]]:
        """The signed events of `kind` (``call.started``, ``call.ended``) the receiver took for `room`."""
        return [e for e in self.receiver.delivered() if e.get("room") == room and e.get("type") == kind]


def answered(caller: Caller, text: str) -> bool:
    """Whether the fake LLM's answer to `text` reached the caller."""
    return any(f"You said: {text}" in t for t in caller.transcriptions)


@contextlib.asynccontextmanager
async def running_pool() -> AsyncIterator[Pool]:
    """Server, fakes and receiver; workers are added by the test and stopped (if still running) at the end."""
    await asyncio.to_thread(speech.load_all)
    server = await start_server_process(port=0)
    try:
        async with providers() as (openai, deepgram), running_receiver(SECRET) as receiver:
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            pool = Pool(server=server, openai=openai, deepgram=deepgram, receiver=receiver, lk=lk)
            try:
                yield pool
            finally:
                await lk.aclose()
                for worker in pool.workers:
                    await worker.process.aclose()
    finally:
        await server.aclose()
