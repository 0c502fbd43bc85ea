"""The ``/agent`` worker protocol and agent dispatch, driven by a raw protobuf websocket worker."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from livekit import api, rtc
from livekit.protocol import agent as agent_pb

from sandbox.server import SandboxServer, running

from .server_helpers import RawWorker, eventually, raw_worker


async def test_a_worker_registers_and_gets_a_worker_id(sandbox_server: SandboxServer) -> None:
    async with raw_worker(sandbox_server) as worker:
        assert worker.worker_id.startswith("AW_")
        assert list(sandbox_server.agents.workers) == [worker.worker_id]


async def test_a_worker_token_without_the_agent_grant_is_refused(sandbox_server: SandboxServer) -> None:
    token = sandbox_server.token(room="r", identity="not-a-worker")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(f"{sandbox_server.url}/agent", headers={"Authorization": f"Bearer {token}"})
    assert caught.value.status == 401


async def test_ping_is_answered_with_pong(sandbox_server: SandboxServer) -> None:
    async with raw_worker(sandbox_server) as worker:
        await worker.send(agent_pb.WorkerMessage(ping=agent_pb.WorkerPing(timestamp=1234)))
        pong = (await worker.next_of("pong")).pong
        assert pong.last_timestamp == 1234
        assert pong.timestamp > 0


async def test_create_dispatch_reaches_the_worker_with_metadata_and_a_join_token(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as worker:
        dispatch = await sandbox_api.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="tester", room="support", metadata='{"dialect": "native"}')
        )
        request = (await worker.next_of("availability")).availability
        assert (request.job.dispatch_id, request.job.room.name, request.job.metadata) == (
            dispatch.id,
            "support",
            '{"dialect": "native"}',
        )
        await worker.send(
            agent_pb.WorkerMessage(
                availability=agent_pb.AvailabilityResponse(
                    job_id=request.job.id, available=True, participant_identity="agent-x", participant_name="Aria"
                )
            )
        )
        assignment = (await worker.next_of("assignment")).assignment
        claims = api.TokenVerifier(sandbox_server.api_key, sandbox_server.api_secret).verify(assignment.token)
        assert (claims.identity, claims.kind, claims.name) == ("agent-x", "agent", "Aria")
        assert claims.attributes == {"lk.agent_name": "tester"}
        assert assignment.job.state.status == agent_pb.JobStatus.JS_RUNNING
        assert claims.video is not None
        assert (claims.video.room, claims.video.room_join, claims.video.agent) == ("support", True, True)
        assert assignment.url == sandbox_server.url
        agent = rtc.Room()
        await agent.connect(assignment.url, assignment.token)
        try:
            participant = sandbox_server.rooms.rooms["support"].participants["agent-x"]
            assert participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        finally:
            await agent.disconnect()


async def test_job_status_updates_are_reflected_in_list_dispatch(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as worker:
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        assignment = await worker.accept()
        await worker.send(
            agent_pb.WorkerMessage(
                update_job=agent_pb.UpdateJobStatus(job_id=assignment.job.id, status=agent_pb.JobStatus.JS_RUNNING)
            )
        )

        async def job_status() -> int:
            (dispatch,) = await sandbox_api.agent_dispatch.list_dispatch("r")
            (job,) = dispatch.state.jobs
            return job.state.status

        await eventually(lambda: bool(sandbox_server.agents.workers[worker.worker_id].jobs))
        await asyncio.sleep(0.1)
        assert await job_status() == agent_pb.JobStatus.JS_RUNNING
        await worker.send(
            agent_pb.WorkerMessage(
                update_job=agent_pb.UpdateJobStatus(job_id=assignment.job.id, status=agent_pb.JobStatus.JS_SUCCESS)
            )
        )
        await eventually(lambda: not sandbox_server.agents.workers[worker.worker_id].jobs)
        assert await job_status() == agent_pb.JobStatus.JS_SUCCESS


async def test_delete_room_terminates_the_job(sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI) -> None:
    async with raw_worker(sandbox_server) as worker:
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        assignment = await worker.accept()
        await sandbox_api.room.delete_room(api.DeleteRoomRequest(room="r"))
        termination = (await worker.next_of("termination")).termination
        assert termination.job_id == assignment.job.id


async def test_delete_dispatch_terminates_its_job(sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI) -> None:
    async with raw_worker(sandbox_server) as worker:
        dispatch = await sandbox_api.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="tester", room="r")
        )
        assignment = await worker.accept()
        deleted = await sandbox_api.agent_dispatch.delete_dispatch(dispatch.id, "r")
        assert deleted.id == dispatch.id
        assert (await worker.next_of("termination")).termination.job_id == assignment.job.id
        assert await sandbox_api.agent_dispatch.list_dispatch("r") == []


async def test_dispatch_goes_to_the_available_worker_not_the_full_one(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as full, raw_worker(sandbox_server) as free:
        await full.set_status(agent_pb.WorkerStatus.WS_FULL, load=1.0)
        await eventually(lambda: sandbox_server.agents.workers[full.worker_id].status == agent_pb.WorkerStatus.WS_FULL)
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        assignment = await free.accept()
        assert assignment.job.room.name == "r"


async def test_dispatch_prefers_the_least_loaded_worker(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as busy, raw_worker(sandbox_server) as idle:
        await busy.set_status(agent_pb.WorkerStatus.WS_AVAILABLE, load=0.6)
        await idle.set_status(agent_pb.WorkerStatus.WS_AVAILABLE, load=0.1)
        await eventually(lambda: sandbox_server.agents.workers[busy.worker_id].load > 0.5)
        await eventually(lambda: sandbox_server.agents.workers[idle.worker_id].load > 0.0)
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        assert (await idle.accept()).job.room.name == "r"


async def test_a_declined_job_goes_to_the_next_worker(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as first, raw_worker(sandbox_server) as second:
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        workers = sandbox_server.agents.workers
        await eventually(lambda: any(w.availability for w in workers.values()))
        asked, other = (first, second) if workers[first.worker_id].availability else (second, first)
        request = (await asked.next_of("availability")).availability
        await asked.send(
            agent_pb.WorkerMessage(availability=agent_pb.AvailabilityResponse(job_id=request.job.id, available=False))
        )
        assert (await other.accept()).job.id == request.job.id


async def test_a_job_dispatched_before_any_worker_waits_for_one(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="early"))
    async with raw_worker(sandbox_server) as worker:
        assert (await worker.accept()).job.room.name == "early"


async def test_jobs_of_a_worker_that_disconnects_are_dispatched_again(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as survivor:
        await survivor.set_status(agent_pb.WorkerStatus.WS_FULL)
        await eventually(
            lambda: sandbox_server.agents.workers[survivor.worker_id].status == agent_pb.WorkerStatus.WS_FULL
        )
        async with raw_worker(sandbox_server) as doomed:
            await sandbox_api.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="tester", room="r")
            )
            first = await doomed.accept()
        await survivor.set_status(agent_pb.WorkerStatus.WS_AVAILABLE)
        second = await survivor.accept()
        assert second.job.dispatch_id == first.job.dispatch_id
        assert second.job.id != first.job.id
        (dispatch,) = await sandbox_api.agent_dispatch.list_dispatch("r")
        assert [j.state.status for j in dispatch.state.jobs] == [
            agent_pb.JobStatus.JS_FAILED,
            agent_pb.JobStatus.JS_RUNNING,
        ]


async def test_a_worker_with_an_empty_agent_name_gets_every_new_room(sandbox_server: SandboxServer) -> None:
    async with raw_worker(sandbox_server, agent_name="") as worker:
        caller = rtc.Room()
        await caller.connect(sandbox_server.url, sandbox_server.token(room="auto", identity="caller"))
        try:
            assert (await worker.accept()).job.room.name == "auto"
        finally:
            await caller.disconnect()


async def test_a_join_token_with_room_agents_dispatches_them(sandbox_server: SandboxServer) -> None:
    token = (
        api.AccessToken(sandbox_server.api_key, sandbox_server.api_secret)
        .with_identity("caller")
        .with_grants(api.VideoGrants(room_join=True, room="tok"))
        .with_room_config(api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name="tester", metadata="m")]))
        .to_jwt()
    )
    async with raw_worker(sandbox_server) as worker:
        caller = rtc.Room()
        await caller.connect(sandbox_server.url, token)
        try:
            assignment = await worker.accept()
            assert (assignment.job.room.name, assignment.job.metadata) == ("tok", "m")
        finally:
            await caller.disconnect()


async def test_a_room_closes_after_its_last_participant_left_and_its_job_is_terminated() -> None:
    async with running(port=0, departure_timeout=0.3) as server:
        client = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
        try:
            async with raw_worker(server) as worker:
                await client.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(agent_name="tester", room="r")
                )
                assignment = await worker.accept()
                caller = rtc.Room()
                await caller.connect(server.url, server.token(room="r", identity="caller"))
                await caller.disconnect()
                assert (await worker.next_of("termination")).termination.job_id == assignment.job.id
                assert "r" not in server.rooms.rooms
        finally:
            await client.aclose()


async def test_a_room_nobody_joins_closes_after_the_empty_timeout() -> None:
    async with running(port=0, empty_timeout=0.2) as server:
        client = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)
        try:
            await client.room.create_room(api.CreateRoomRequest(name="unused"))
            await eventually(lambda: "unused" not in server.rooms.rooms, within=5)
        finally:
            await client.aclose()


async def _decline(worker: RawWorker) -> agent_pb.Job:
    request = (await worker.next_of("availability")).availability
    await worker.send(
        agent_pb.WorkerMessage(availability=agent_pb.AvailabilityResponse(job_id=request.job.id, available=False))
    )
    return request.job


async def test_a_worker_reporting_full_load_while_available_is_never_offered_a_job(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as loaded:
        await loaded.set_status(agent_pb.WorkerStatus.WS_AVAILABLE, load=1.0)
        await eventually(lambda: sandbox_server.agents.workers[loaded.worker_id].load == 1.0)
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        async with raw_worker(sandbox_server) as free:
            assignment = await free.accept()
            assert assignment.job.state.worker_id == free.worker_id
        # Anything the server had sent the loaded worker would already be waiting in its websocket.
        with pytest.raises(TimeoutError):
            await loaded.receive(within=0.2)


async def test_equally_loaded_workers_share_the_jobs(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as first, raw_worker(sandbox_server) as second:
        workers = sandbox_server.agents.workers
        owners = []
        for room in ("one", "two"):
            await sandbox_api.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="tester", room=room)
            )
            await eventually(lambda: any(w.availability for w in workers.values()))
            asked = first if workers[first.worker_id].availability else second
            assert (await asked.accept(identity=f"agent-{room}")).job.room.name == room
            owners.append(asked.worker_id)
        assert sorted(owners) == sorted([first.worker_id, second.worker_id])


async def test_a_job_every_worker_declines_is_logged_and_offered_again_when_one_turns_available(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sandbox.agents")
    async with raw_worker(sandbox_server) as worker:
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        declined = await _decline(worker)
        await eventually(lambda: any(r.message == "dispatch waiting for a worker" for r in caplog.records))
        (record,) = [r for r in caplog.records if r.message == "dispatch waiting for a worker"]
        assert (record.job_id, record.workers_asked) == (declined.id, 1)  # type: ignore[attr-defined]
        await worker.set_status(agent_pb.WorkerStatus.WS_FULL)
        await worker.set_status(agent_pb.WorkerStatus.WS_AVAILABLE)
        assert (await worker.accept()).job.id == declined.id


async def test_a_waiting_job_is_offered_again_when_a_worker_ends_a_job(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as worker:
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="a"))
        running_job = (await worker.accept()).job
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="b"))
        declined = await _decline(worker)
        await eventually(lambda: bool(sandbox_server.agents.waiting_jobs))
        await worker.send(
            agent_pb.WorkerMessage(
                update_job=agent_pb.UpdateJobStatus(job_id=running_job.id, status=agent_pb.JobStatus.JS_SUCCESS)
            )
        )
        assert (await worker.accept(identity="agent-b")).job.id == declined.id


async def test_a_waiting_job_goes_to_a_worker_whose_load_drops_below_full(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as worker:
        await worker.set_status(agent_pb.WorkerStatus.WS_AVAILABLE, load=1.0)
        await eventually(lambda: sandbox_server.agents.workers[worker.worker_id].load == 1.0)
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        await eventually(lambda: bool(sandbox_server.agents.waiting_jobs))
        await worker.set_status(agent_pb.WorkerStatus.WS_AVAILABLE, load=0.3)
        assert (await worker.accept()).job.room.name == "r"


async def test_a_worker_that_answers_terminate_ends_the_job_as_a_success(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as worker:
        await sandbox_api.agent_dispatch.create_dispatch(api.CreateAgentDispatchRequest(agent_name="tester", room="r"))
        request = (await worker.next_of("availability")).availability
        await worker.send(
            agent_pb.WorkerMessage(
                availability=agent_pb.AvailabilityResponse(job_id=request.job.id, available=False, terminate=True)
            )
        )

        (dispatch,) = sandbox_server.agents.dispatches["r"].values()
        await eventually(lambda: dispatch.jobs[0].state.status == agent_pb.JobStatus.JS_SUCCESS)
        assert sandbox_server.agents.waiting_jobs == []
