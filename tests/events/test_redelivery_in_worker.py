"""Redelivery in the worker's main process: a real `AgentServer` (run unregistered, its HTTP server on 127.0.0.1)
starts the redeliverer on ``worker_started``, and the redeliverer stops when asked or when the loop's tasks end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from livekit.agents import AgentServer, JobContext
from pydantic import SecretStr

from agent.events.outbox import Outbox
from agent.events.redelivery import redeliver_with
from agent.settings import Settings
from tests.events.outbox_helpers import SECRET, an_event, files
from tests.events.receiver import running_receiver


async def an_entrypoint(ctx: JobContext) -> None:
    del ctx


def a_server() -> AgentServer:
    server = AgentServer(
        num_idle_processes=0, host="127.0.0.1", port=0, ws_url="ws://127.0.0.1:9", api_key="k", api_secret="s"
    )
    server.rtc_session(an_entrypoint, agent_name="webcall-agent-test")
    return server


async def test_a_started_worker_redelivers_what_its_outbox_holds(tmp_path: Path) -> None:
    Outbox(tmp_path).put(an_event("AJ_1", "call.ended", created_at=time.time()), job_id="AJ_1", status=503, attempts=3)
    async with running_receiver(SECRET) as receiver:
        settings = Settings(
            _env_file=None,
            WEBCALL_EVENTS_URL=receiver.url,
            WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
            WEBCALL_EVENTS_OUTBOX_DIR=str(tmp_path),
            WEBCALL_EVENTS_REDELIVER_INTERVAL_S=0.05,
            WEBCALL_EVENTS_ALLOW_HTTP=True,
        )
        server = a_server()
        redeliverer = redeliver_with(server, settings)
        assert redeliverer is not None
        assert receiver.requests == []  # nothing is sent before the worker starts
        running = asyncio.ensure_future(server.run(devmode=True, unregistered=True))
        try:
            async with asyncio.timeout(20):
                # Polled: the receiver records requests from its handler and signals nothing a test could await.
                while not receiver.delivered():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            await redeliverer.aclose()
            await server.aclose()
            await running

    (request,) = receiver.requests
    assert request.headers["Idempotency-Key"] == "AJ_1:call.ended"
    assert request.signature_valid
    assert files(tmp_path) == []


def test_an_outbox_that_cannot_be_written_is_reported_when_the_worker_is_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = Settings(
        _env_file=None,
        WEBCALL_EVENTS_URL="http://127.0.0.1:9/hooks",
        WEBCALL_EVENTS_SECRET=SecretStr(SECRET),
        WEBCALL_EVENTS_OUTBOX_DIR=str(blocker / "outbox"),
        WEBCALL_EVENTS_ALLOW_HTTP=True,
    )

    assert redeliver_with(a_server(), settings) is not None

    (record,) = [r for r in caplog.records if r.getMessage() == "call events outbox not writable"]
    assert getattr(record, "error", None) in {"NotADirectoryError", "FileExistsError"}


def test_no_redelivery_is_set_up_without_a_webhook(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, WEBCALL_EVENTS_DIR=str(tmp_path))

    assert redeliver_with(a_server(), settings) is None
