"""Sandbox-only endpoints for QA, debugging and fault tests: ``GET /sandbox/state`` and the fault controls.

``GET /sandbox/state`` is a JSON snapshot: rooms with their participants and tracks (frames received, peak level),
workers with their status and jobs, jobs no worker has taken yet, and dispatches. Metadata is caller data, so it
reports sizes of metadata, never the contents.
``POST /sandbox/faults/drop-worker`` with JSON ``{"worker_id": "AW_...", "abort": false}`` cuts that worker's
``/agent`` connection (every worker's when ``worker_id`` is left out): a websocket close, or with ``abort`` the TCP
connection without a close frame. It answers ``{"dropped": [ids]}``, or 404 when the named worker is not registered.
Both need the same API-key JWT as Twirp with the ``roomList`` grant.
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
        "waiting_jobs": [job.id for job in agents.waiting_jobs],
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


def _refused(keys: Keys, request: web.Request) -> web.Response | None:
    try:
        claims = keys.verify_bearer(request.headers.get("Authorization"))
    except AuthError:
        return web.json_response({"code": "unauthenticated"}, status=401)
    if claims.video is None or not claims.video.room_list:
        return web.json_response({"code": "permission_denied"}, status=403)
    return None


def handler(
    *, keys: Keys, rooms: RoomManager, agents: AgentDispatcher
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def state(request: web.Request) -> web.Response:
        return _refused(keys, request) or web.json_response(snapshot(rooms, agents))

    return state


def drop_worker_handler(
    *, keys: Keys, agents: AgentDispatcher
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def drop_worker(request: web.Request) -> web.Response:
        refused = _refused(keys, request)
        if refused is not None:
            return refused
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"code": "malformed"}, status=400)
        worker_id, abort = body.get("worker_id"), bool(body.get("abort", False))
        targets = list(agents.workers) if worker_id is None else [str(worker_id)]
        dropped = [w for w in targets if await agents.drop_worker(w, abort=abort)]
        if worker_id is not None and not dropped:
            return web.json_response({"code": "not_found"}, status=404)
        return web.json_response({"dropped": dropped})

    return drop_worker
