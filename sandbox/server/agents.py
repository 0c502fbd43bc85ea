"""Agent workers on ``/agent`` and agent dispatch: registration, availability, assignment, status and termination.

Protocol (protobuf over a websocket, the worker authenticates with a JWT carrying ``video.agent``):
register → ``RegisterWorkerResponse``; for each job the server asks one worker at a time with an
``AvailabilityRequest`` and, on ``available``, sends ``JobAssignment`` with a join token it mints (kind agent).
Workers report ``update_job`` and ``update_worker`` (status, load) and ping.

Choosing a worker, as livekit-server does: only workers registered for the job's agent name, with status
``WS_AVAILABLE`` and load below 1.0, are asked (a worker reports ``WS_FULL`` itself once its load reaches its own
threshold, which the server never learns). livekit-server picks among them at random, weighted by ``1 - load``; the
sandbox asks the least-loaded first (fewest jobs it holds breaks a tie), so tests can say which worker answers. A
worker that declines (``available=false``) or does not answer within ``AVAILABILITY_TIMEOUT_S`` is passed over and
the next is asked. When every candidate declined, or there is none, livekit-server logs and drops the job; the
sandbox logs ``dispatch waiting for a worker`` and keeps the job pending, offering it again whenever a worker
registers, becomes eligible (status back to available, load below 1.0) or ends a job, until its dispatch or room is
deleted.
When a worker disconnects, a job whose agent is still in its room carries on (the job process has its own room
connection) and waits for a worker to claim it with ``migrate_job``, as ``livekit-agents`` does for its running
jobs after it reconnects and registers again; the claiming worker then gets its termination. Its other unfinished
jobs fail and, under ``JRP_ON_FAILURE`` (the default), are dispatched again while the room exists; so does an
unclaimed job once its agent leaves the room. ``drop_worker`` closes a worker's websocket on purpose (a fault for
tests, see ``introspect``). Deleting a room or a dispatch sends ``JobTermination``.
A room created by a join or ``CreateRoom`` without explicit dispatches goes to workers with an empty agent name
(automatic dispatch); ``CreateDispatch`` creates the room when it does not exist yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web
from livekit.protocol import agent as agent_pb
from livekit.protocol import agent_dispatch as dispatch_pb
from livekit.protocol import models
from livekit.protocol import room as room_pb

from .auth import AuthError, Keys
from .rooms import RoomManager
from .state import Participant, Room, new_sid

logger = logging.getLogger("sandbox.agents")

AVAILABILITY_TIMEOUT_S = 5.0
AGENT_NAME_ATTRIBUTE = "lk.agent_name"
_ENDED = (agent_pb.JobStatus.JS_SUCCESS, agent_pb.JobStatus.JS_FAILED, agent_pb.JobStatus.JS_CANCELLED)


@dataclass
class Worker:
    id: str
    agent_name: str
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None = None
    status: int = agent_pb.WorkerStatus.WS_AVAILABLE
    load: float = 0.0
    job_count: int = 0
    jobs: dict[str, agent_pb.Job] = field(default_factory=dict)
    availability: dict[str, asyncio.Future[agent_pb.AvailabilityResponse]] = field(default_factory=dict)
    closed: bool = False

    @property
    def eligible(self) -> bool:
        """Whether the worker may be offered a job (livekit-server weighs it by ``1 - load``, so 0 at full load)."""
        return not self.closed and self.status == agent_pb.WorkerStatus.WS_AVAILABLE and self.load < 1.0

    async def send(self, message: agent_pb.ServerMessage) -> None:
        if not self.closed and not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_bytes(message.SerializeToString())


@dataclass
class Dispatch:
    info: dispatch_pb.AgentDispatch
    jobs: list[agent_pb.Job] = field(default_factory=list)

    def render(self) -> dispatch_pb.AgentDispatch:
        out = dispatch_pb.AgentDispatch()
        out.CopyFrom(self.info)
        out.state.jobs.extend(self.jobs)
        return out


def _now() -> int:
    return int(time.time())


class AgentDispatcher:
    def __init__(self, *, rooms: RoomManager, keys: Keys) -> None:
        self.rooms = rooms
        self.keys = keys
        self.public_url = ""
        self.workers: dict[str, Worker] = {}
        self.dispatches: dict[str, dict[str, Dispatch]] = {}  # room name -> dispatch id -> dispatch
        self._waiting: list[tuple[Dispatch, agent_pb.Job]] = []
        self._orphans: dict[str, agent_pb.Job] = {}  # by job id: running jobs whose worker disconnected
        rooms.on_room_created.append(self._auto_dispatch)
        rooms.on_room_deleted.append(self._room_deleted)
        rooms.on_participant_left.append(self._participant_left)

    @property
    def waiting_jobs(self) -> list[agent_pb.Job]:
        """Jobs no worker has taken yet, offered again when a worker frees up."""
        return [job for _, job in self._waiting]

    # --- the /agent websocket ---------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            claims = self.keys.verify_bearer(request.headers.get("Authorization"))
        except AuthError:
            return web.Response(status=401, text="invalid token")
        if claims.video is None or not claims.video.agent:
            return web.Response(status=401, text="token needs the agent grant")
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        worker: Worker | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                message = agent_pb.WorkerMessage.FromString(msg.data)
                if worker is None:
                    worker = await self._register(ws, message)
                    if worker is not None:
                        worker.transport = request.transport
                else:
                    await self._on_message(worker, message)
        finally:
            if worker is not None:
                await self._worker_gone(worker)
        return ws

    async def _register(self, ws: web.WebSocketResponse, message: agent_pb.WorkerMessage) -> Worker | None:
        if message.WhichOneof("message") != "register":
            await ws.close()
            return None
        worker = Worker(id=new_sid("AW"), agent_name=message.register.agent_name, ws=ws)
        self.workers[worker.id] = worker
        await worker.send(
            agent_pb.ServerMessage(
                register=agent_pb.RegisterWorkerResponse(
                    worker_id=worker.id,
                    server_info=models.ServerInfo(
                        edition=models.ServerInfo.Edition.Standard, version="1.9.0-sandbox", protocol=16
                    ),
                )
            )
        )
        logger.info("worker registered", extra={"worker_id": worker.id})
        self._retry_waiting()
        return worker

    async def _on_message(self, worker: Worker, message: agent_pb.WorkerMessage) -> None:
        kind = message.WhichOneof("message")
        if kind == "availability":
            future = worker.availability.pop(message.availability.job_id, None)
            if future is not None and not future.done():
                future.set_result(message.availability)
        elif kind == "update_job":
            self._on_job_update(worker, message.update_job)
        elif kind == "update_worker":
            was_eligible = worker.eligible
            update = message.update_worker
            if update.HasField("status"):
                worker.status = update.status
            worker.load = update.load
            worker.job_count = update.job_count
            if worker.eligible and not was_eligible:
                self._retry_waiting()
        elif kind == "migrate_job":
            self._claim(worker, list(message.migrate_job.job_ids))
        elif kind == "ping":
            await worker.send(
                agent_pb.ServerMessage(
                    pong=agent_pb.WorkerPong(last_timestamp=message.ping.timestamp, timestamp=int(time.time() * 1000))
                )
            )

    def _on_job_update(self, worker: Worker, update: agent_pb.UpdateJobStatus) -> None:
        job = worker.jobs.get(update.job_id)
        if job is None:
            return
        job.state.status = update.status
        job.state.error = update.error
        job.state.updated_at = _now()
        if update.status in _ENDED:
            job.state.ended_at = _now()
            worker.jobs.pop(update.job_id, None)
            self._retry_waiting()

    async def _worker_gone(self, worker: Worker) -> None:
        worker.closed = True
        self.workers.pop(worker.id, None)
        for future in worker.availability.values():
            future.cancel()
        logger.info("worker disconnected", extra={"worker_id": worker.id, "jobs": len(worker.jobs)})
        for job in list(worker.jobs.values()):
            room = self.rooms.rooms.get(job.room.name)
            if room is not None and job.state.participant_identity in room.participants:
                self._orphans[job.id] = job
                logger.info("job orphaned", extra={"job_id": job.id, "worker_id": worker.id})
            else:
                self._fail(job, error="worker disconnected")
        worker.jobs.clear()

    def _claim(self, worker: Worker, job_ids: list[str]) -> None:
        """A (re-registered) worker reports jobs it still runs: they are its again."""
        for job_id in job_ids:
            job = self._orphans.pop(job_id, None)
            if job is None:
                continue
            job.state.worker_id = worker.id
            job.state.updated_at = _now()
            worker.jobs[job.id] = job
            logger.info("job migrated", extra={"job_id": job.id, "worker_id": worker.id})

    async def _participant_left(self, room: Room, participant: Participant) -> None:
        for job in list(self._orphans.values()):
            if job.room.name == room.name and job.state.participant_identity == participant.identity:
                del self._orphans[job.id]
                self._fail(job, error="worker disconnected")

    def _fail(self, job: agent_pb.Job, *, error: str) -> None:
        """End a job as failed and, under ``JRP_ON_FAILURE``, dispatch it again while its room exists."""
        job.state.status = agent_pb.JobStatus.JS_FAILED
        job.state.error = error
        job.state.ended_at = _now()
        dispatch = self._dispatch_of(job)
        if (
            dispatch is not None
            and dispatch.info.restart_policy == dispatch_pb.JobRestartPolicy.JRP_ON_FAILURE
            and job.room.name in self.rooms.rooms
        ):
            self._start_job(dispatch)

    async def drop_worker(self, worker_id: str, *, abort: bool = False) -> bool:
        """Cut a worker's ``/agent`` connection: a websocket close (1001), or with ``abort`` the TCP connection
        with no close frame, as a network failure would. False when no such worker is registered."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return False
        logger.info("worker connection dropped", extra={"worker_id": worker_id, "abort": abort})
        if abort and worker.transport is not None:
            worker.transport.abort()
        else:
            await worker.ws.close(code=WSCloseCode.GOING_AWAY)
        return True

    # --- dispatch ---------------------------------------------------------------------------------------------

    async def create_dispatch(self, req: dispatch_pb.CreateAgentDispatchRequest) -> dispatch_pb.AgentDispatch:
        room = await self.rooms.get_or_create(req.room, auto_dispatch=False)
        dispatch = self._new_dispatch(
            room,
            agent_name=req.agent_name,
            metadata=req.metadata,
            attributes=dict(req.attributes),
            restart_policy=req.restart_policy,
        )
        self._start_job(dispatch)
        return dispatch.render()

    def list_dispatch(self, *, room: str, dispatch_id: str = "") -> list[dispatch_pb.AgentDispatch]:
        found = self.dispatches.get(room, {})
        return [d.render() for d in found.values() if not dispatch_id or d.info.id == dispatch_id]

    async def delete_dispatch(self, *, room: str, dispatch_id: str) -> dispatch_pb.AgentDispatch | None:
        dispatch = self.dispatches.get(room, {}).pop(dispatch_id, None)
        if dispatch is None:
            return None
        dispatch.info.state.deleted_at = _now()
        await self._terminate(dispatch)
        return dispatch.render()

    async def dispatch_from_token(self, room: Room, config: room_pb.RoomConfiguration) -> None:
        """Dispatches a join token asks for (``RoomConfiguration.agents``), once per room and agent name."""
        existing = {d.info.agent_name for d in self.dispatches.get(room.name, {}).values()}
        for wanted in config.agents:
            if wanted.agent_name in existing:
                continue
            dispatch = self._new_dispatch(
                room,
                agent_name=wanted.agent_name,
                metadata=wanted.metadata,
                attributes=dict(wanted.attributes),
                restart_policy=wanted.restart_policy,
            )
            self._start_job(dispatch)

    async def _auto_dispatch(self, room: Room) -> None:
        if any(w.agent_name == "" for w in self.workers.values()):
            self._start_job(self._new_dispatch(room, agent_name="", metadata="", attributes={}, restart_policy=0))

    async def _room_deleted(self, room: Room) -> None:
        for dispatch in self.dispatches.pop(room.name, {}).values():
            await self._terminate(dispatch)
        self._waiting = [(d, j) for d, j in self._waiting if j.room.name != room.name]

    def _new_dispatch(
        self, room: Room, *, agent_name: str, metadata: str, attributes: dict[str, str], restart_policy: int
    ) -> Dispatch:
        info = dispatch_pb.AgentDispatch(
            id=new_sid("AD"),
            agent_name=agent_name,
            room=room.name,
            metadata=metadata,
            attributes=attributes,
            restart_policy=restart_policy,  # type: ignore[arg-type]
        )
        info.state.created_at = _now()
        dispatch = Dispatch(info=info)
        self.dispatches.setdefault(room.name, {})[info.id] = dispatch
        logger.info("dispatch created", extra={"dispatch_id": info.id, "room_sid": room.sid})
        return dispatch

    def _dispatch_of(self, job: agent_pb.Job) -> Dispatch | None:
        return self.dispatches.get(job.room.name, {}).get(job.dispatch_id)

    def _start_job(self, dispatch: Dispatch) -> None:
        room = self.rooms.rooms.get(dispatch.info.room)
        if room is None:
            return
        job = agent_pb.Job(
            id=new_sid("AJ"),
            dispatch_id=dispatch.info.id,
            type=agent_pb.JobType.JT_ROOM,
            room=room.info(),
            agent_name=dispatch.info.agent_name,
            metadata=dispatch.info.metadata,
            attributes=dict(dispatch.info.attributes),
        )
        job.state.status = agent_pb.JobStatus.JS_PENDING
        job.state.updated_at = _now()
        dispatch.jobs.append(job)
        self.rooms.spawn(self._assign(dispatch, job), name="sandbox.agents.assign")

    def _retry_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        for dispatch, job in waiting:
            self.rooms.spawn(self._assign(dispatch, job), name="sandbox.agents.assign")

    async def _assign(self, dispatch: Dispatch, job: agent_pb.Job) -> None:
        asked: set[str] = set()
        while dispatch.info.room in self.rooms.rooms and dispatch.info.id in self.dispatches.get(job.room.name, {}):
            candidates = sorted(
                (
                    w
                    for w in self.workers.values()
                    if w.agent_name == job.agent_name and w.eligible and w.id not in asked
                ),
                key=lambda w: (w.load, len(w.jobs)),
            )
            if not candidates:
                logger.warning(
                    "dispatch waiting for a worker",
                    extra={
                        "job_id": job.id,
                        "dispatch_id": dispatch.info.id,
                        "agent_name": job.agent_name,
                        "workers_asked": len(asked),
                    },
                )
                self._waiting.append((dispatch, job))
                return
            worker = candidates[0]
            asked.add(worker.id)
            answer = await self._ask(worker, job)
            if answer is None:
                continue
            if not answer.available:
                if answer.terminate:  # the worker ends the job itself: livekit-server records it as a success
                    job.state.status = agent_pb.JobStatus.JS_SUCCESS
                    job.state.ended_at = _now()
                    return
                continue
            await self._hand_over(worker, job, answer=answer)
            return

    async def _ask(self, worker: Worker, job: agent_pb.Job) -> agent_pb.AvailabilityResponse | None:
        future: asyncio.Future[agent_pb.AvailabilityResponse] = asyncio.get_running_loop().create_future()
        worker.availability[job.id] = future
        await worker.send(agent_pb.ServerMessage(availability=agent_pb.AvailabilityRequest(job=job)))
        try:
            return await asyncio.wait_for(future, AVAILABILITY_TIMEOUT_S)
        except (TimeoutError, asyncio.CancelledError):
            worker.availability.pop(job.id, None)
            return None

    async def _hand_over(self, worker: Worker, job: agent_pb.Job, *, answer: agent_pb.AvailabilityResponse) -> None:
        identity = answer.participant_identity or f"agent-{job.id}"
        token = self.keys.mint_agent_token(
            room=job.room.name,
            identity=identity,
            name=answer.participant_name,
            metadata=answer.participant_metadata,
            # livekit-server adds the worker's agent name to the agent's attributes.
            attributes={**answer.participant_attributes, AGENT_NAME_ATTRIBUTE: worker.agent_name},
        )
        job.state.status = agent_pb.JobStatus.JS_RUNNING  # as livekit-server records an assignment
        job.state.participant_identity = identity
        job.state.worker_id = worker.id
        job.state.started_at = _now()
        job.state.updated_at = _now()
        worker.jobs[job.id] = job
        await worker.send(
            agent_pb.ServerMessage(assignment=agent_pb.JobAssignment(job=job, url=self.public_url, token=token))
        )
        logger.info("job assigned", extra={"job_id": job.id, "worker_id": worker.id})

    async def _terminate(self, dispatch: Dispatch) -> None:
        for job in dispatch.jobs:
            self._orphans.pop(job.id, None)
            if job.state.status in _ENDED:
                continue
            worker = self.workers.get(job.state.worker_id)
            if worker is not None and job.id in worker.jobs:
                await worker.send(agent_pb.ServerMessage(termination=agent_pb.JobTermination(job_id=job.id)))
            elif job.state.status == agent_pb.JobStatus.JS_PENDING:
                job.state.status = agent_pb.JobStatus.JS_CANCELLED
                job.state.ended_at = _now()
        self._waiting = [(d, j) for d, j in self._waiting if d is not dispatch]

    async def aclose(self) -> None:
        for worker in list(self.workers.values()):
            worker.closed = True
            await worker.ws.close()
