"""What a browser SDK on another origin needs: CORS on every HTTP answer, and each client's protocol version and
capabilities passed on to the others (the JS SDK falls back to chunked text streams without them)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import aiohttp
import pytest
from livekit.protocol import models
from livekit.protocol import rtc as rtc_pb

from sandbox.server import SandboxServer, running

from .server_helpers import join

ORIGIN = "http://localhost:5173"
CAPS = [models.ClientInfo.Capability.CAP_PACKET_TRAILER, models.ClientInfo.Capability.CAP_COMPRESSION_DEFLATE_RAW]


@pytest.mark.parametrize("path", ["/rtc/validate", "/rtc/v1/validate"])
async def test_validate_with_a_bad_token_answers_401_readable_from_any_origin(
    sandbox_server: SandboxServer, path: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{sandbox_server.http_url}{path}?access_token=not-a-jwt", headers={"Origin": ORIGIN}) as resp,
    ):
        assert resp.status == 401
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "invalid token" in await resp.text()


async def test_a_preflight_is_allowed_for_any_origin_method_and_headers(sandbox_server: SandboxServer) -> None:
    headers = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    url = f"{sandbox_server.http_url}/twirp/livekit.RoomService/ListRooms"
    async with aiohttp.ClientSession() as session, session.options(url, headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert resp.headers["Access-Control-Allow-Methods"] == "POST"
        assert resp.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert resp.headers["Access-Control-Max-Age"] == "86400"


async def test_twirp_errors_and_unknown_routes_carry_cors_headers(sandbox_server: SandboxServer) -> None:
    async with aiohttp.ClientSession(headers={"Origin": ORIGIN}) as session:
        async with session.post(f"{sandbox_server.http_url}/twirp/livekit.RoomService/ListRooms", json={}) as twirp:
            assert twirp.status == 401
            assert twirp.headers["Access-Control-Allow-Origin"] == ORIGIN
        async with session.get(f"{sandbox_server.http_url}/no-such-route") as missing:
            assert missing.status == 404
            assert missing.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_a_request_without_an_origin_gets_no_cors_headers(sandbox_server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{sandbox_server.http_url}/") as resp:
        assert resp.status == 200
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_an_undecodable_join_request_is_a_400(sandbox_server: SandboxServer) -> None:
    token = sandbox_server.token(room="r", identity="x")
    url = f"{sandbox_server.http_url}/rtc/v1?join_request=%%%garbage"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        assert resp.status == 400


class _Signal:
    """A signaling websocket spoken by hand: no peer connection, only the messages."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def next_of(self, kind: str, *, within: float = 5.0) -> rtc_pb.SignalResponse:
        while True:
            msg = await self.ws.receive(timeout=within)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            response = rtc_pb.SignalResponse.FromString(msg.data)
            if response.WhichOneof("message") == kind:
                return response


@asynccontextmanager
async def _v0(server: SandboxServer, *, identity: str, query: dict[str, str]) -> AsyncIterator[_Signal]:
    params = urlencode({"access_token": server.token(room="caps", identity=identity), **query})
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{server.url}/rtc?{params}") as ws:
        yield _Signal(ws)


@asynccontextmanager
async def _v1(server: SandboxServer, *, identity: str, client: models.ClientInfo) -> AsyncIterator[_Signal]:
    request = rtc_pb.JoinRequest(client_info=client, connection_settings=rtc_pb.ConnectionSettings(auto_subscribe=True))
    wrapped = rtc_pb.WrappedJoinRequest(join_request=request.SerializeToString())
    encoded = base64.urlsafe_b64encode(wrapped.SerializeToString()).decode().rstrip("=")
    headers = {"Authorization": f"Bearer {server.token(room='caps', identity=identity)}"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.url}/rtc/v1?join_request={encoded}", headers=headers) as ws,
    ):
        yield _Signal(ws)


async def test_a_v0_clients_protocol_and_capabilities_reach_the_participants_who_join_after_it(
    sandbox_server: SandboxServer,
) -> None:
    query = {"sdk": "js", "protocol": "16", "client_protocol": "2", "capabilities": "CAP_PACKET_TRAILER,CAP_NOPE"}
    async with _v0(sandbox_server, identity="browser", query=query) as browser:
        own = (await browser.next_of("join")).join.participant
        assert (own.client_protocol, list(own.capabilities)) == (2, [models.ClientInfo.Capability.CAP_PACKET_TRAILER])
        client = models.ClientInfo(sdk=models.ClientInfo.SDK.JS, protocol=16, client_protocol=1)
        async with _v1(sandbox_server, identity="later", client=client) as later:
            (seen,) = (await later.next_of("join")).join.other_participants
            assert (seen.identity, seen.client_protocol) == ("browser", 2)
            assert list(seen.capabilities) == [models.ClientInfo.Capability.CAP_PACKET_TRAILER]


async def test_a_v1_clients_protocol_and_capabilities_reach_the_participants_already_there(
    sandbox_server: SandboxServer,
) -> None:
    async with _v0(sandbox_server, identity="first", query={}) as first:
        await first.next_of("join")
        client = models.ClientInfo(sdk=models.ClientInfo.SDK.JS, protocol=16, client_protocol=2, capabilities=CAPS)
        async with _v1(sandbox_server, identity="browser", client=client):
            while True:
                update = (await first.next_of("update")).update
                infos = [p for p in update.participants if p.identity == "browser"]
                if infos:
                    break
            (seen,) = infos
            assert (seen.client_protocol, list(seen.capabilities)) == (2, CAPS)


async def test_what_the_python_sdk_advertises_is_passed_on(sandbox_server: SandboxServer) -> None:
    # livekit 1.1.21 advertises client protocol 2 (data streams v2) with both capabilities.
    first = await join(sandbox_server, room="caps", identity="first")
    try:
        async with _v0(sandbox_server, identity="observer", query={}) as observer:
            (seen,) = (await observer.next_of("join")).join.other_participants
            assert (seen.identity, seen.client_protocol, list(seen.capabilities)) == ("first", 2, CAPS)
    finally:
        await first.disconnect()


async def test_without_v1_its_validate_answers_a_readable_404_so_the_js_sdk_falls_back_to_rtc() -> None:
    async with running(port=0, v1=False) as server:
        token = server.token(room="r", identity="browser")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{server.http_url}/rtc/v1/validate?access_token={token}", headers={"Origin": ORIGIN}) as resp,
        ):
            assert resp.status == 404
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "requested room does not exist" not in await resp.text()  # the SDK would not fall back then
