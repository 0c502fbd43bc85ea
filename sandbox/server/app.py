"""The HTTP application and its lifecycle: routes, the ``running()`` context manager, and the server handle.

Routes: ``/rtc`` and ``/rtc/v1`` (signaling websockets) with their ``/validate`` twins, ``/agent`` (workers),
``/twirp/livekit.RoomService/*`` and ``/twirp/livekit.AgentDispatchService/*``, ``GET /`` (health) and
``GET /sandbox/state`` (a JSON snapshot for QA) and ``POST /sandbox/faults/drop-worker`` (see ``introspect``).
Every route answers CORS as livekit-server does (``cors``). The server binds to loopback only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from livekit.protocol import models

from . import cors, introspect, join, network
from .agents import AgentDispatcher
from .auth import DEV_API_KEY, DEV_API_SECRET, AuthError, Keys, require_video
from .media import enable_opus_passthrough
from .rooms import RoomManager
from .rtc import ParticipantSession
from .state import Participant, new_sid
from .twirp import TwirpHandler

logger = logging.getLogger("sandbox.server")

_KINDS = {
    "agent": models.ParticipantInfo.Kind.AGENT,
    "sip": models.ParticipantInfo.Kind.SIP,
    "egress": models.ParticipantInfo.Kind.EGRESS,
    "ingress": models.ParticipantInfo.Kind.INGRESS,
}


@dataclass
class SandboxServer:
    """A running server: where to reach it, its keys, and its live state for introspection."""

    host: str
    port: int
    keys: Keys
    rooms: RoomManager
    agents: AgentDispatcher
    v1_enabled: bool = True
    ping_timeout: float = 15.0

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.keys.api_key

    @property
    def api_secret(self) -> str:
        return self.keys.api_secret

    async def drop_signal_connection(self, *, room: str, identity: str) -> None:
        """Close a participant's signaling websocket without a leave, as a network blip would (for tests and QA).

        The SDK resumes on a new websocket and keeps its peer connection; the participant stays in the room.
        """
        participant = self.rooms.get(room).participants[identity]
        if participant.session is not None:
            await participant.session.drop()

    def token(self, *, room: str, identity: str, name: str = "") -> str:
        """A join token for ``room`` (what a web-call platform hands the browser)."""
        return self.keys.mint_join_token(room=room, identity=identity, name=name)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("access_token")


class _Routes:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server

    def _resumable(self, room_name: str, *, identity: str, sid: str) -> ParticipantSession | None:
        return _resumable_session(self.server, room_name, identity=identity, sid=sid)

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def validate(self, request: web.Request) -> web.Response:
        if request.path.startswith("/rtc/v1") and not self.server.v1_enabled:
            raise web.HTTPNotFound()
        try:
            grants = require_video(self.server.keys.verify(_bearer(request)))
        except AuthError:
            return web.Response(status=401, text="invalid token")
        if not grants.room_join:
            return web.Response(status=401, text="token has no roomJoin grant")
        return web.Response(text="success")

    async def rtc_v1(self, request: web.Request) -> web.StreamResponse:
        if not self.server.v1_enabled:
            raise web.HTTPNotFound()
        try:
            params = join.v1_params(request.query)
        except join.BadJoinRequest as err:
            return web.Response(status=400, text=str(err))
        return await self._join(request, params)

    async def rtc_v0(self, request: web.Request) -> web.StreamResponse:
        return await self._join(request, join.v0_params(request.query))

    async def _join(self, request: web.Request, params: join.JoinParams) -> web.StreamResponse:
        try:
            claims = self.server.keys.verify(_bearer(request))
            grants = require_video(claims)
        except AuthError:
            return web.Response(status=401, text="invalid token")
        if not grants.room_join or not grants.room or not claims.identity:
            return web.Response(status=401, text="token needs roomJoin, room and identity")
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        resumable = self._resumable(grants.room, identity=claims.identity, sid=params.resume_sid)
        if resumable is not None:
            await (await resumable.resume(ws))
            return ws
        room = await self.server.rooms.get_or_create(grants.room, metadata="")
        if claims.room_config is not None and claims.room_config.agents:
            await self.server.agents.dispatch_from_token(room, claims.room_config)
        participant = Participant(
            sid=new_sid("PA"),
            identity=claims.identity,
            name=claims.name,
            kind=_KINDS.get(claims.kind, models.ParticipantInfo.Kind.STANDARD),
            metadata=params.metadata or claims.metadata,
            attributes={**(claims.attributes or {}), **(params.attributes or {})},
            client_protocol=params.client.client_protocol,
            capabilities=list(params.client.capabilities),
            permission=models.ParticipantPermission(
                can_subscribe=grants.can_subscribe,
                can_publish=grants.can_publish,
                can_publish_data=grants.can_publish_data,
                can_update_metadata=bool(grants.can_update_own_metadata),
                hidden=bool(grants.hidden),
                agent=bool(grants.agent),
            ),
            hidden=bool(grants.hidden),
        )
        session = ParticipantSession(
            ws=ws,
            manager=self.server.rooms,
            room=room,
            participant=participant,
            v1=params.v1,
            auto_subscribe=params.auto_subscribe,
            ping_timeout=self.server.ping_timeout,
        )
        participant.session = session
        await session.run(join_offer=params.offer)
        return ws


def _resumable_session(server: SandboxServer, room_name: str, *, identity: str, sid: str) -> ParticipantSession | None:
    """The live session a reconnecting client asks to resume, if the server still holds it."""
    if not sid:
        return None
    room = server.rooms.rooms.get(room_name)
    participant = room.participants.get(identity) if room is not None else None
    if participant is None or participant.sid != sid:
        return None
    session = participant.session
    return session if isinstance(session, ParticipantSession) and session.resumable else None


def build_app(server: SandboxServer) -> web.Application:
    routes = _Routes(server)
    twirp = TwirpHandler(keys=server.keys, rooms=server.rooms, agents=server.agents)
    app = web.Application(middlewares=[cors.middleware])
    app.router.add_get("/", routes.health)
    app.router.add_get("/sandbox/state", introspect.handler(keys=server.keys, rooms=server.rooms, agents=server.agents))
    app.router.add_post(
        "/sandbox/faults/drop-worker", introspect.drop_worker_handler(keys=server.keys, agents=server.agents)
    )
    app.router.add_get("/rtc/v1", routes.rtc_v1)
    app.router.add_get("/rtc", routes.rtc_v0)
    app.router.add_get("/rtc/v1/validate", routes.validate)
    app.router.add_get("/rtc/validate", routes.validate)
    app.router.add_get("/agent", server.agents.handle)
    app.router.add_post("/twirp/livekit.{service}/{method}", twirp.handle)
    return app


@contextlib.asynccontextmanager
async def running(
    *,
    host: str = network.LOOPBACK_HOST,
    port: int = 0,
    api_key: str = DEV_API_KEY,
    api_secret: str = DEV_API_SECRET,
    v1: bool = True,
    empty_timeout: float = 300.0,
    departure_timeout: float = 20.0,
    ping_timeout: float = 15.0,
) -> AsyncIterator[SandboxServer]:
    """Serve the sandbox until the block exits.

    Args:
        host: a loopback address; anything else is refused.
        port: 0 picks a free port (read it from ``server.port``).
        v1: serve ``/rtc/v1``; False answers it with 404 so SDKs fall back to ``/rtc`` (v0 signaling).
        empty_timeout: seconds a room nobody joined lives (LiveKit's default 300).
        departure_timeout: seconds a room lives after its last participant left (LiveKit's default 20).
        ping_timeout: seconds of signaling silence after which a participant is dropped (clients ping every 5 s).
    """
    if not network.is_loopback_address(host):
        raise network.NetworkSetupError("the sandbox binds to loopback only")
    network.check_host_network()
    network.restrict_ice_to_loopback()
    enable_opus_passthrough()
    keys = Keys(api_key, api_secret)
    rooms = RoomManager(empty_timeout=empty_timeout, departure_timeout=departure_timeout)
    server = SandboxServer(host=host, port=port, keys=keys, rooms=rooms, agents=AgentDispatcher(rooms=rooms, keys=keys))
    server.v1_enabled = v1
    server.ping_timeout = ping_timeout
    runner = web.AppRunner(build_app(server), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses
    server.port = int(bound[0][1])
    server.agents.public_url = server.url
    logger.info("sandbox server listening", extra={"url": server.url})
    try:
        yield server
    finally:
        await server.agents.aclose()
        await rooms.aclose()
        await runner.cleanup()
