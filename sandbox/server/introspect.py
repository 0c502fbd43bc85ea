"""A JSON snapshot of the server's state for QA and debugging: ``GET /sandbox/state``.

Rooms with their participants and tracks (frames received, peak level), workers with their status and jobs, and
dispatches. Metadata is caller data, so the endpoint needs the same API-key JWT as Twirp (``roomList`` grant); it
reports sizes of metadata, never the contents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from google.protobuf.json_format import MessageToDict
from livekit.protocol import agent as agent_pb
from livekit.protocol import models

from .agents import AgentDispatcher
from .auth import AuthError, Keys
from .rooms import RoomManager
from .state import Participant, Room


def _participant(p: Participant) -> dict[str, object]:
    return {
        "sid": p.sid,
        "identity": p.identity,
        "kind": models.ParticipantInfo.Kind.Name(p.kind),
        "state": models.ParticipantInfo.State.Name(p.state),
        "metadata_bytes": len(p.metadata.encode()),
        "attribute_keys": sorted(p.attributes),
        "tracks": [
            {
                "sid": t.info.sid,
                "name": t.info.name,
                "muted": t.info.muted,
                "frames_received": t.frames_received,
                "peak_level": round(t.peak_level, 3),
                "subscribers": sorted(t.subscribers),
            }
            for t in p.tracks.values()
        ],
    }


def _room(room: Room) -> dict[str, object]:
    return {
        "sid": room.sid,
        "name": room.name,
        "metadata_bytes": len(room.metadata.encode()),
        "participants": [_participant(p) for p in room.participants.values()],
    }


def snapshot(rooms: RoomManager, agents: AgentDispatcher) -> dict[str, object]:
    """The whole state as plain JSON-able data."""
    return {
        "rooms": [_room(r) for r in rooms.rooms.values()],
        "workers": [
            {
                "id": w.id,
                "agent_name": w.agent_name,
                "status": agent_pb.WorkerStatus.Name(w.status),
                "load": w.load,
                "jobs": sorted(w.jobs),
            }
            for w in agents.workers.values()
        ],
        "dispatches": [
            {
                "id": d.info.id,
                "room": d.info.room,
                "agent_name": d.info.agent_name,
                "jobs": [{"id": j.id, **MessageToDict(j.state, preserving_proto_field_name=True)} for j in d.jobs],
            }
            for by_room in agents.dispatches.values()
            for d in by_room.values()
        ],
    }


def handler(
    *, keys: Keys, rooms: RoomManager, agents: AgentDispatcher
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def state(request: web.Request) -> web.Response:
        try:
            claims = keys.verify_bearer(request.headers.get("Authorization"))
        except AuthError:
            return web.json_response({"code": "unauthenticated"}, status=401)
        if claims.video is None or not claims.video.room_list:
            return web.json_response({"code": "permission_denied"}, status=403)
        return web.json_response(snapshot(rooms, agents))

    return state
