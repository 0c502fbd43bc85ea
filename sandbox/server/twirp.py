"""Twirp: ``livekit.RoomService`` and ``livekit.AgentDispatchService`` over HTTP, in protobuf or JSON.

Requests carry ``Authorization: Bearer <jwt>`` signed with the server's key; a token that does not verify is 401
``unauthenticated``, a verified token without the grant the method needs is 403 ``permission_denied`` (grants as
``livekit-api`` sends them: ``roomCreate`` for CreateRoom/DeleteRoom, ``roomList`` for ListRooms, ``roomAdmin`` for
the named room otherwise), an unknown room is 404 ``not_found``. Errors are Twirp JSON ``{"code", "msg"}``.
JSON bodies use the proto field names, like the Go Twirp server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit import api
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import models
from livekit.protocol import room as room_pb

from .agents import AgentDispatcher
from .auth import AuthError, Keys
from .rooms import ParticipantNotFound, RoomManager, RoomNotFound
from .state import Participant

logger = logging.getLogger("sandbox.twirp")

Handler = Callable[[Any], Awaitable[Message]]


class TwirpError(Exception):
    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def _need(grants: api.VideoGrants, *, create: bool = False, listing: bool = False, admin_room: str = "") -> None:
    if create and not grants.room_create:
        raise TwirpError(403, "permission_denied", "roomCreate grant required")
    if listing and not grants.room_list:
        raise TwirpError(403, "permission_denied", "roomList grant required")
    if admin_room and not (grants.room_admin and grants.room == admin_room):
        raise TwirpError(403, "permission_denied", "roomAdmin grant for this room required")


class TwirpHandler:
    def __init__(self, *, keys: Keys, rooms: RoomManager, agents: AgentDispatcher) -> None:
        self.keys = keys
        self.rooms = rooms
        self.agents = agents
        self._methods: dict[str, tuple[type[Message], Callable[[Any, api.VideoGrants], Awaitable[Message]]]] = {
            "RoomService/CreateRoom": (room_pb.CreateRoomRequest, self.create_room),
            "RoomService/ListRooms": (room_pb.ListRoomsRequest, self.list_rooms),
            "RoomService/DeleteRoom": (room_pb.DeleteRoomRequest, self.delete_room),
            "RoomService/ListParticipants": (room_pb.ListParticipantsRequest, self.list_participants),
            "RoomService/GetParticipant": (room_pb.RoomParticipantIdentity, self.get_participant),
            "RoomService/UpdateRoomMetadata": (room_pb.UpdateRoomMetadataRequest, self.update_room_metadata),
            "RoomService/UpdateParticipant": (room_pb.UpdateParticipantRequest, self.update_participant),
            "RoomService/RemoveParticipant": (room_pb.RoomParticipantIdentity, self.remove_participant),
            "RoomService/MutePublishedTrack": (room_pb.MuteRoomTrackRequest, self.mute_track),
            "RoomService/UpdateSubscriptions": (room_pb.UpdateSubscriptionsRequest, self.update_subscriptions),
            "RoomService/SendData": (room_pb.SendDataRequest, self.send_data),
            "AgentDispatchService/CreateDispatch": (dispatch_pb.CreateAgentDispatchRequest, self.create_dispatch),
            "AgentDispatchService/ListDispatch": (dispatch_pb.ListAgentDispatchRequest, self.list_dispatch),
            "AgentDispatchService/DeleteDispatch": (dispatch_pb.DeleteAgentDispatchRequest, self.delete_dispatch),
        }

    async def handle(self, request: web.Request) -> web.Response:
        key = f"{request.match_info['service']}/{request.match_info['method']}"
        json_body = request.content_type == "application/json"
        try:
            entry = self._methods.get(key)
            if entry is None:
                raise TwirpError(404, "bad_route", "no such method")
            try:
                claims = self.keys.verify_bearer(request.headers.get("Authorization"))
            except AuthError:
                raise TwirpError(401, "unauthenticated", "invalid token") from None
            if claims.video is None:
                raise TwirpError(403, "permission_denied", "no video grant")
            message_type, method = entry
            body = await request.read()
            try:
                req = json_format.Parse(body or b"{}", message_type()) if json_body else message_type.FromString(body)
            except (DecodeError, json_format.ParseError):
                raise TwirpError(400, "malformed", "request body could not be decoded") from None
            result = await method(req, claims.video)
        except TwirpError as err:
            return web.json_response({"code": err.code, "msg": err.msg}, status=err.status)
        except RoomNotFound:
            return web.json_response({"code": "not_found", "msg": "room not found"}, status=404)
        except ParticipantNotFound:
            return web.json_response({"code": "not_found", "msg": "participant not found"}, status=404)
        if json_body:
            text = json_format.MessageToJson(result, preserving_proto_field_name=True)
            return web.Response(text=text, content_type="application/json")
        return web.Response(body=result.SerializeToString(), content_type="application/protobuf")

    # --- RoomService ------------------------------------------------------------------------------------------

    async def create_room(self, req: room_pb.CreateRoomRequest, grants: api.VideoGrants) -> Message:
        _need(grants, create=True)
        existed = req.name in self.rooms.rooms
        room = await self.rooms.get_or_create(req.name, metadata=req.metadata, auto_dispatch=not req.agents)
        if not existed:
            self.rooms.set_timeouts(room, empty=req.empty_timeout or None, departure=req.departure_timeout or None)
            room.max_participants = req.max_participants
            if req.agents:
                await self.agents.dispatch_from_token(room, room_pb.RoomConfiguration(agents=req.agents))
        return room.info()

    async def list_rooms(self, req: room_pb.ListRoomsRequest, grants: api.VideoGrants) -> Message:
        _need(grants, listing=True)
        names = set(req.names)
        rooms = [r.info() for r in self.rooms.rooms.values() if not names or r.name in names]
        return room_pb.ListRoomsResponse(rooms=rooms)

    async def delete_room(self, req: room_pb.DeleteRoomRequest, grants: api.VideoGrants) -> Message:
        _need(grants, create=True)
        await self.rooms.delete_room(req.room)
        return room_pb.DeleteRoomResponse()

    async def list_participants(self, req: room_pb.ListParticipantsRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        room = self.rooms.get(req.room)
        return room_pb.ListParticipantsResponse(participants=[p.info() for p in room.participants.values()])

    async def get_participant(self, req: room_pb.RoomParticipantIdentity, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        return self._participant(req.room, req.identity).info()

    async def update_room_metadata(self, req: room_pb.UpdateRoomMetadataRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        room = self.rooms.get(req.room)
        room.metadata = req.metadata
        self.rooms.broadcast_room(room)
        return room.info()

    async def update_participant(self, req: room_pb.UpdateParticipantRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        participant = self._participant(req.room, req.identity)
        participant.apply_update(metadata=req.metadata, name=req.name, attributes=dict(req.attributes))
        if req.HasField("permission"):
            participant.permission.CopyFrom(req.permission)
        self.rooms.broadcast_participant(self.rooms.get(req.room), participant)
        return participant.info()

    async def remove_participant(self, req: room_pb.RoomParticipantIdentity, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        participant = self._participant(req.room, req.identity)
        await self.rooms.remove(
            self.rooms.get(req.room), participant, reason=models.DisconnectReason.PARTICIPANT_REMOVED
        )
        return room_pb.RemoveParticipantResponse()

    async def mute_track(self, req: room_pb.MuteRoomTrackRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        participant = self._participant(req.room, req.identity)
        track = participant.tracks.get(req.track_sid)
        if track is None:
            raise TwirpError(404, "not_found", "track not found")
        self.rooms.set_muted(self.rooms.get(req.room), participant, track_sid=req.track_sid, muted=req.muted)
        return room_pb.MuteRoomTrackResponse(track=track.info)

    async def update_subscriptions(self, req: room_pb.UpdateSubscriptionsRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        room = self.rooms.get(req.room)
        participant = self._participant(req.room, req.identity)
        for sid in list(req.track_sids) + [sid for pt in req.participant_tracks for sid in pt.track_sids]:
            if req.subscribe:
                self.rooms.subscribe(room, participant, track_sid=sid)
            else:
                self.rooms.unsubscribe(room, participant, track_sid=sid)
        return room_pb.UpdateSubscriptionsResponse()

    async def send_data(self, req: room_pb.SendDataRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        room = self.rooms.get(req.room)
        packet = models.DataPacket(
            kind=req.kind,
            destination_identities=list(req.destination_identities),
            user=models.UserPacket(
                payload=req.data,
                topic=req.topic or None,
                destination_identities=list(req.destination_identities),
                nonce=req.nonce,
            ),
        )
        self.rooms.forward_data(room, packet, sender=None)
        return room_pb.SendDataResponse()

    # --- AgentDispatchService ---------------------------------------------------------------------------------

    async def create_dispatch(self, req: dispatch_pb.CreateAgentDispatchRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        dispatch: Message = await self.agents.create_dispatch(req)
        return dispatch

    async def list_dispatch(self, req: dispatch_pb.ListAgentDispatchRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        self.rooms.get(req.room)
        return dispatch_pb.ListAgentDispatchResponse(
            agent_dispatches=self.agents.list_dispatch(room=req.room, dispatch_id=req.dispatch_id)
        )

    async def delete_dispatch(self, req: dispatch_pb.DeleteAgentDispatchRequest, grants: api.VideoGrants) -> Message:
        _need(grants, admin_room=req.room)
        self.rooms.get(req.room)
        deleted = await self.agents.delete_dispatch(room=req.room, dispatch_id=req.dispatch_id)
        if deleted is None:
            raise TwirpError(404, "not_found", "dispatch not found")
        return deleted

    def _participant(self, room_name: str, identity: str) -> Participant:
        room = self.rooms.get(room_name)
        participant = room.participants.get(identity)
        if participant is None:
            raise ParticipantNotFound(identity)
        return participant
