"""The dev page's back end against the in-process sandbox: examples, starting a call, the resolved config with
caller data redacted, and the call events webhook relayed to the page as server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from livekit import api

from agent.devpage.app import make_app
from agent.devpage.calls import LiveKitCalls
from agent.devpage.events import EventHub
from agent.events.signing import Signer, new_secret
from agent.settings import Settings
from sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
SECRET = new_secret()
Client = TestClient[web.Request, web.Application]
SAWT = json.loads((ROOT / "config" / "examples" / "sawt" / "documented_body.json").read_text(encoding="utf-8"))


@asynccontextmanager
async def page_client(server: SandboxServer, *, settings: Settings) -> AsyncIterator[Client]:
    calls = LiveKitCalls(
        url=server.url, api_key=server.api_key, api_secret=server.api_secret, agent_name="webcall-agent"
    )
    app = make_app(calls=calls, hub=EventHub([SECRET]), settings=settings)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
async def client(sandbox_server: SandboxServer) -> AsyncIterator[Client]:
    settings = Settings(config_dir=ROOT / "config", prompts_dir=ROOT / "prompts")
    async with page_client(sandbox_server, settings=settings) as test_client:
        yield test_client


async def start_sawt_call(client: Client, *, room: str) -> dict[str, str]:
    body = {"room": room, "job_metadata": json.dumps(SAWT["job_metadata"]), "attributes": {"lk.browser": "chromium"}}
    async with client.post("/api/calls", json=body) as response:
        assert response.status == 200, await response.text()
        ticket: dict[str, str] = await response.json()
        return ticket


async def test_every_example_case_is_offered_with_its_dialect_and_broken_json_verbatim(
    client: Client,
) -> None:
    async with client.get("/api/examples") as response:
        cases = {case["id"]: case for case in await response.json()}
    on_disk = {f"{path.parent.name}/{path.stem}" for path in (ROOT / "config" / "examples").glob("*/*.json")}
    assert set(cases) == on_disk
    assert cases["sawt/documented_body"]["dialect"] == "sawt"
    assert json.loads(cases["sawt/documented_body"]["job_metadata"]) == SAWT["job_metadata"]
    bad = json.loads((ROOT / "config" / "examples" / "native" / "bad_inputs.json").read_text(encoding="utf-8"))
    assert cases["native/bad_inputs"]["job_metadata"] == bad["job_metadata"]


async def test_starting_a_call_creates_the_room_and_a_dispatch_and_mints_the_callers_token(
    client: Client, sandbox_server: SandboxServer
) -> None:
    ticket = await start_sawt_call(client, room="page-start")
    assert ticket["url"] == sandbox_server.url
    dispatches = list(sandbox_server.agents.dispatches["page-start"].values())
    assert [d.info.agent_name for d in dispatches] == ["webcall-agent"]
    assert json.loads(dispatches[0].info.metadata) == SAWT["job_metadata"]
    claims = api.TokenVerifier(sandbox_server.api_key, sandbox_server.api_secret).verify(ticket["token"])
    assert claims.identity == ticket["identity"]
    assert claims.video is not None
    assert claims.video.room == "page-start"
    assert claims.attributes == {"lk.browser": "chromium"}


async def test_the_resolved_config_keeps_provenance_and_redacts_the_callers_data(
    client: Client,
) -> None:
    await start_sawt_call(client, room="page-config")
    async with client.get("/api/calls/page-config/config") as response:
        config = await response.json()
    assert config["dialect"] == "sawt"
    assert config["provenance"]["call.user_ref"] == "job_metadata"
    assert config["provenance"]["variables.customer_name"] == "job_metadata"
    assert config["variables"] == {"customer_name": "[redacted]", "language": "[redacted]"}
    assert config["call"]["pre_call_variables"] == {"account_id": "[redacted]"}
    assert "Mohammed" not in json.dumps(config)
    assert config["welcome"]["text"] == "Hello [redacted], welcome to support. How can I help you today?"


async def test_a_room_this_page_did_not_start_has_no_config(client: Client) -> None:
    async with client.get("/api/calls/someone-else/config") as response:
        assert response.status == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"room": ""}, {"room": "r", "job_metadata": {"not": "text"}}, {"room": "r", "attributes": {"n": 1}}],
    ids=["no room", "empty room", "metadata not text", "attribute not a string"],
)
async def test_an_unusable_call_request_is_a_400(client: Client, body: dict[str, object]) -> None:
    async with client.post("/api/calls", json=body) as response:
        assert response.status == 400


def signed(event: dict[str, str], *, secret: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    return body, Signer([secret]).headers(event_id=str(event["id"]), body=body, timestamp=int(time.time()))


async def test_a_signed_call_event_reaches_the_page_listening_for_its_room(client: Client) -> None:
    earlier = {"id": "evt_1", "type": "call.started", "room": "page-events"}
    elsewhere = {"id": "evt_2", "type": "call.started", "room": "another-room"}
    later = {"id": "evt_3", "type": "call.ended", "room": "page-events"}
    for event in (earlier, elsewhere):
        body, headers = signed(event, secret=SECRET)
        async with client.post("/webhook", data=body, headers=headers) as response:
            assert response.status == 200
    async with client.get("/api/events", params={"room": "page-events"}) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(stream.content.readline(), timeout=10)
        assert json.loads(first.removeprefix(b"data: ")) == earlier
        body, headers = signed(later, secret=SECRET)
        async with client.post("/webhook", data=body, headers=headers) as response:
            assert response.status == 200
        await asyncio.wait_for(stream.content.readline(), timeout=10)  # the blank line ending the first event
        second = await asyncio.wait_for(stream.content.readline(), timeout=10)
        assert json.loads(second.removeprefix(b"data: ")) == later


async def test_an_event_signed_with_another_secret_is_refused_and_not_relayed(
    client: Client,
) -> None:
    body, headers = signed({"id": "evt_x", "type": "call.started", "room": "page-forged"}, secret=new_secret())
    async with client.post("/webhook", data=body, headers=headers) as response:
        assert response.status == 401
    async with client.post("/webhook", data=body) as response:
        assert response.status == 401
    genuine = {"id": "evt_y", "type": "call.ended", "room": "page-forged"}
    body, headers = signed(genuine, secret=SECRET)
    async with client.post("/webhook", data=body, headers=headers) as response:
        assert response.status == 200
    async with client.get("/api/events", params={"room": "page-forged"}) as stream:
        first = await asyncio.wait_for(stream.content.readline(), timeout=10)
        assert json.loads(first.removeprefix(b"data: ")) == genuine


async def test_the_page_shows_the_config_the_worker_runs_with_a_provider_this_deployment_lacks_replaced(
    sandbox_server: SandboxServer,
) -> None:
    # Deepgram only: the Sawt call's OpenAI voice cannot be served here, so the worker speaks with Deepgram.
    settings = Settings(config_dir=ROOT / "config", prompts_dir=ROOT / "prompts", deepgram_api_key="dg-test")
    async with page_client(sandbox_server, settings=settings) as deepgram_only:
        await start_sawt_call(deepgram_only, room="page-deployment")
        async with deepgram_only.get("/api/calls/page-deployment/config") as response:
            config = await response.json()
    assert config["tts"]["provider"] == "deepgram"
    assert config["provenance"]["tts.provider"] == "default"
    assert ("provider_unavailable", "tts.provider") in {(w["code"], w["field"]) for w in config["warnings"]}
