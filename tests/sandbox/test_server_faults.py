"""The fault controls: ``POST /sandbox/faults/drop-worker`` cuts a worker's ``/agent`` connection mid-call.

The worker's job process keeps its own room connection, so the call goes on; a worker that registers again and
claims the job (``migrate_job``, as livekit-agents does after reconnecting) gets its termination.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from livekit import api, rtc
from livekit.protocol import agent as agent_pb

from sandbox.server import SandboxServer

from .server_helpers import eventually, raw_worker


async def _drop(server: SandboxServer, body: dict[str, Any], *, token: str | None = None) -> tuple[int, Any]:
    if token is None:
        token = api.AccessToken(server.api_key, server.api_secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.http_url}/sandbox/faults/drop-worker", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_a_dropped_worker_is_disconnected_and_its_live_call_goes_on_until_it_claims_the_job_again(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as first:
        await sandbox_api.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="tester", room="call")
        )
        assignment = await first.accept(identity="agent-x")
        agent = rtc.Room()
        await agent.connect(assignment.url, assignment.token)
        try:
            assert await _drop(sandbox_server, {"worker_id": first.worker_id}) == (200, {"dropped": [first.worker_id]})
            closed = await first.ws.receive(timeout=5)
            assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY)
            await eventually(lambda: first.worker_id not in sandbox_server.agents.workers)
            assert "agent-x" in sandbox_server.rooms.rooms["call"].participants
            async with raw_worker(sandbox_server) as again:
                await again.send(
                    agent_pb.WorkerMessage(migrate_job=agent_pb.MigrateJobRequest(job_ids=[assignment.job.id]))
                )
                await eventually(lambda: assignment.job.id in sandbox_server.agents.workers[again.worker_id].jobs)
                (dispatch,) = await sandbox_api.agent_dispatch.list_dispatch("call")
                (job,) = dispatch.state.jobs  # carried on, not dispatched a second time
                assert (job.id, job.state.worker_id) == (assignment.job.id, again.worker_id)
                await sandbox_api.room.delete_room(api.DeleteRoomRequest(room="call"))
                assert (await again.next_of("termination")).termination.job_id == assignment.job.id
        finally:
            await agent.disconnect()


async def test_an_unclaimed_job_is_dispatched_again_once_its_agent_leaves(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with raw_worker(sandbox_server) as first:
        await sandbox_api.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="tester", room="call")
        )
        assignment = await first.accept(identity="agent-x")
        agent = rtc.Room()
        await agent.connect(assignment.url, assignment.token)
        await _drop(sandbox_server, {"worker_id": first.worker_id, "abort": True})
        closed = await first.ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)  # no close frame
    async with raw_worker(sandbox_server) as second:
        await agent.disconnect()
        retried = await second.accept(identity="agent-y")
        assert (retried.job.dispatch_id, retried.job.id != assignment.job.id) == (assignment.job.dispatch_id, True)


async def test_dropping_with_no_worker_named_drops_every_worker(sandbox_server: SandboxServer) -> None:
    async with raw_worker(sandbox_server) as one, raw_worker(sandbox_server) as two:
        status, body = await _drop(sandbox_server, {})
        assert (status, sorted(body["dropped"])) == (200, sorted([one.worker_id, two.worker_id]))
        await eventually(lambda: not sandbox_server.agents.workers)


async def test_dropping_an_unknown_worker_is_404_and_the_control_needs_an_api_token(
    sandbox_server: SandboxServer,
) -> None:
    async with raw_worker(sandbox_server) as worker:
        assert (await _drop(sandbox_server, {"worker_id": "AW_nope"}))[0] == 404
        assert (await _drop(sandbox_server, {}, token="not-a-jwt"))[0] == 401
        participant = sandbox_server.token(room="r", identity="caller")
        assert (await _drop(sandbox_server, {}, token=participant))[0] == 403
        assert list(sandbox_server.agents.workers) == [worker.worker_id]
