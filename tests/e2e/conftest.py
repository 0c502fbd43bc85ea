"""One stack per e2e module: sandbox server process, fake providers (in the test loop), one worker process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from livekit import api

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech
from sandbox.server.process import ServerProcess, start_server_process
from tests.e2e.stack import WorkerProcess, providers, worker_env


@dataclass
class Stack:
    server: ServerProcess
    openai: FakeOpenAI
    deepgram: FakeDeepgram
    worker: WorkerProcess
    lk: api.LiveKitAPI


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack() as running:
        yield running


@contextlib.asynccontextmanager
async def running_stack(**worker_settings: str) -> AsyncIterator[Stack]:
    """Server, fakes and one worker (with extra ``WEBCALL_*`` settings), torn down in reverse order."""
    await asyncio.to_thread(speech.load_all)
    server = await start_server_process(port=0)
    try:
        async with providers() as (openai, deepgram):
            worker = await WorkerProcess.start(worker_env(server, openai, deepgram, **worker_settings))
            lk = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
            try:
                yield Stack(server=server, openai=openai, deepgram=deepgram, worker=worker, lk=lk)
            finally:
                await lk.aclose()
                await worker.aclose()
    finally:
        await server.aclose()
