"""The LiveKit side of the dev page: a caller's token, a room with its dispatch, and the call's inputs read back.

A call starts as a web-call platform starts one: ``CreateRoom`` (with the room metadata), ``CreateDispatch`` for
the worker's agent name (with the dispatch metadata) and a join token for the browser, whose attributes and
metadata are the caller's. To show the config the worker resolved, the same inputs are read back from the server
(`LiveKitCalls.sources`): the dispatch metadata this page sent, the room's metadata and the caller's attributes and
metadata as the server now has them, so a mid-call change made elsewhere shows too.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from livekit import api

from agent.config.resolve import CallSources

CALLER_NAME: Final = "Dev page caller"
TOKEN_TTL: Final = datetime.timedelta(hours=2)


@dataclass(frozen=True, kw_only=True)
class CallRequest:
    """What the page asks for: the room and the call's inputs, as the texts a platform would send."""

    room: str
    job_metadata: str = ""
    room_metadata: str = ""
    participant_metadata: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CallTicket:
    """What the browser needs to join: the server URL, the room, its identity and token."""

    url: str
    room: str
    identity: str
    token: str


def http_url(url: str) -> str:
    """The HTTP(S) URL of a LiveKit server given as ``ws://`` or ``wss://`` (Twirp is plain HTTP)."""
    if url.startswith("ws"):
        return "http" + url.removeprefix("ws")
    return url


class LiveKitCalls:
    """Calls started by this page on one LiveKit server. Close with `aclose`."""

    def __init__(self, *, url: str, api_key: str, api_secret: str, agent_name: str) -> None:
        self.url = url
        self.agent_name = agent_name
        self._api_key = api_key
        self._api_secret = api_secret
        self._api = api.LiveKitAPI(http_url(url), api_key, api_secret)
        self._calls: dict[str, tuple[CallRequest, str]] = {}

    async def start(self, request: CallRequest) -> CallTicket:
        """Create the room and the dispatch, and mint the caller's token."""
        await self._api.room.create_room(api.CreateRoomRequest(name=request.room, metadata=request.room_metadata))
        await self._api.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=self.agent_name, room=request.room, metadata=request.job_metadata)
        )
        identity = f"caller-{secrets.token_hex(4)}"
        self._calls[request.room] = (request, identity)
        return CallTicket(url=self.url, room=request.room, identity=identity, token=self._token(request, identity))

    def _token(self, request: CallRequest, identity: str) -> str:
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_name(CALLER_NAME)
            .with_metadata(request.participant_metadata)
            .with_ttl(TOKEN_TTL)
            .with_grants(api.VideoGrants(room_join=True, room=request.room, can_update_own_metadata=True))
        )
        if request.attributes:
            token = token.with_attributes(dict(request.attributes))
        return token.to_jwt()

    async def sources(self, room: str) -> CallSources | None:
        """The inputs the worker resolves this room's call from, as the server has them now; None for a room this
        page did not start."""
        started = self._calls.get(room)
        if started is None:
            return None
        request, identity = started
        rooms = await self._api.room.list_rooms(api.ListRoomsRequest(names=[room]))
        room_metadata = rooms.rooms[0].metadata if rooms.rooms else request.room_metadata
        attributes: Mapping[str, str] = request.attributes
        caller_metadata = request.participant_metadata
        if rooms.rooms:
            people = await self._api.room.list_participants(api.ListParticipantsRequest(room=room))
            for person in people.participants:
                if person.identity == identity:
                    attributes, caller_metadata = dict(person.attributes), person.metadata
        return CallSources(
            job_metadata=request.job_metadata or None,
            room_metadata=room_metadata or None,
            caller_attributes=attributes,
            caller_metadata=caller_metadata or None,
            room_name=room,
        )

    async def end(self, room: str) -> None:
        """Delete the room: the agent leaves and the call ends (``call.ended``)."""
        if room in self._calls:
            await self._api.room.delete_room(api.DeleteRoomRequest(room=room))

    async def aclose(self) -> None:
        await self._api.aclose()
