"""Twirp RoomService and AgentDispatchService through ``livekit-api`` and raw HTTP (protobuf and JSON)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from livekit import api, rtc
from livekit.protocol import room as room_pb

from sandbox.server import SandboxServer

from .server_helpers import Listener, eventually, join, joined, publish_tone


def _admin_token(server: SandboxServer, room: str, *, secret: str | None = None) -> str:
    return (
        api.AccessToken(server.api_key, secret or server.api_secret)
        .with_grants(api.VideoGrants(room_admin=True, room=room, room_create=True, room_list=True))
        .to_jwt()
    )


async def test_a_token_signed_with_another_secret_is_401_unauthenticated(sandbox_server: SandboxServer) -> None:
    client = api.LiveKitAPI(sandbox_server.http_url, sandbox_server.api_key, "not-the-secret")
    try:
        with pytest.raises(api.TwirpError) as caught:
            await client.room.list_rooms(api.ListRoomsRequest())
    finally:
        await client.aclose()
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")


async def test_a_request_without_a_token_is_401_in_json_too(sandbox_server: SandboxServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sandbox_server.http_url}/twirp/livekit.RoomService/ListRooms", json={}) as resp,
    ):
        assert resp.status == 401
        assert (await resp.json())["code"] == "unauthenticated"


async def test_an_unknown_room_is_404_not_found(sandbox_api: api.LiveKitAPI) -> None:
    with pytest.raises(api.TwirpError) as caught:
        await sandbox_api.room.list_participants(api.ListParticipantsRequest(room="nowhere"))
    assert (caught.value.status, caught.value.code) == (404, "not_found")


async def test_create_list_and_delete_rooms(sandbox_api: api.LiveKitAPI) -> None:
    created = await sandbox_api.room.create_room(api.CreateRoomRequest(name="made", metadata='{"a": 1}'))
    listed = await sandbox_api.room.list_rooms(api.ListRoomsRequest())
    assert [(r.name, r.metadata, r.sid) for r in listed.rooms] == [("made", '{"a": 1}', created.sid)]
    await sandbox_api.room.delete_room(api.DeleteRoomRequest(room="made"))
    assert (await sandbox_api.room.list_rooms(api.ListRoomsRequest())).rooms == []


async def test_json_requests_get_json_answers_with_proto_field_names(sandbox_server: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {_admin_token(sandbox_server, 'j')}"}
    base = f"{sandbox_server.http_url}/twirp/livekit.RoomService"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base}/CreateRoom", json={"name": "j", "metadata": "m"}) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            body = await resp.json()
        assert (body["name"], body["metadata"]) == ("j", "m")
        async with session.post(f"{base}/ListRooms", json={}) as resp:
            assert [r["name"] for r in (await resp.json())["rooms"]] == ["j"]


async def test_a_token_for_another_room_is_403_permission_denied(sandbox_server: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {_admin_token(sandbox_server, 'other')}"}
    request = room_pb.ListParticipantsRequest(room="mine")
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(
            f"{sandbox_server.http_url}/twirp/livekit.RoomService/ListParticipants",
            data=request.SerializeToString(),
            headers={"Content-Type": "application/protobuf"},
        ) as resp,
    ):
        assert resp.status == 403
        assert (await resp.json())["code"] == "permission_denied"


async def test_room_metadata_update_reaches_connected_clients(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with joined(sandbox_server, room="meta", identities=["alice"]) as (alice,):
        await sandbox_api.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="meta", metadata='{"v": 2}'))
        await eventually(lambda: alice.metadata == '{"v": 2}')


async def test_update_participant_changes_metadata_attributes_and_name_for_everyone(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with joined(sandbox_server, room="meta", identities=["alice", "bob"]) as (alice, bob):
        info = await sandbox_api.room.update_participant(
            api.UpdateParticipantRequest(
                room="meta", identity="alice", metadata="m1", name="Alice", attributes={"tier": "gold"}
            )
        )
        assert (info.metadata, info.name, dict(info.attributes)) == ("m1", "Alice", {"tier": "gold"})
        await eventually(lambda: alice.local_participant.attributes == {"tier": "gold"})
        await eventually(
            lambda: (
                (bob.remote_participants["alice"].metadata, bob.remote_participants["alice"].name) == ("m1", "Alice")
            )
        )
        await sandbox_api.room.update_participant(
            api.UpdateParticipantRequest(room="meta", identity="alice", attributes={"tier": ""})
        )
        await eventually(lambda: bob.remote_participants["alice"].attributes == {})


async def test_list_participants_reports_identities_and_state(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with joined(sandbox_server, room="roster", identities=["alice", "bob"]):
        listed = await sandbox_api.room.list_participants(api.ListParticipantsRequest(room="roster"))
        assert sorted(p.identity for p in listed.participants) == ["alice", "bob"]
        assert all(p.sid.startswith("PA_") for p in listed.participants)


async def test_remove_participant_disconnects_that_client(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with joined(sandbox_server, room="kick", identities=["alice", "bob"]) as (alice, bob):
        await sandbox_api.room.remove_participant(api.RoomParticipantIdentity(room="kick", identity="alice"))
        await eventually(lambda: alice.connection_state == rtc.ConnectionState.CONN_DISCONNECTED)
        await eventually(lambda: "alice" not in bob.remote_participants)


async def test_delete_room_disconnects_everyone_in_it(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with joined(sandbox_server, room="gone", identities=["alice"]) as (alice,):
        await sandbox_api.room.delete_room(api.DeleteRoomRequest(room="gone"))
        await eventually(lambda: alice.connection_state == rtc.ConnectionState.CONN_DISCONNECTED)
        assert "gone" not in sandbox_server.rooms.rooms


async def test_send_data_honours_destination_identities(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    async with joined(sandbox_server, room="data", identities=["alice", "bob"]) as (alice, bob):
        got: dict[str, list[tuple[str, str | None]]] = {"alice": [], "bob": []}
        alice.on("data_received", lambda p: got["alice"].append((p.data.decode(), p.topic)))
        bob.on("data_received", lambda p: got["bob"].append((p.data.decode(), p.topic)))
        await sandbox_api.room.send_data(
            api.SendDataRequest(
                room="data",
                data=b"only bob",
                kind=api.DataPacket.Kind.RELIABLE,
                destination_identities=["bob"],
                topic="x",
            )
        )
        await sandbox_api.room.send_data(
            api.SendDataRequest(room="data", data=b"all", kind=api.DataPacket.Kind.RELIABLE, topic="x")
        )
        await eventually(lambda: len(got["alice"]) == 1 and len(got["bob"]) == 2)
        assert got == {"alice": [("all", "x")], "bob": [("only bob", "x"), ("all", "x")]}


async def test_validate_endpoints_accept_good_tokens_and_reject_bad_ones(sandbox_server: SandboxServer) -> None:
    good = sandbox_server.token(room="v", identity="alice")
    async with aiohttp.ClientSession() as session:
        for path in ("/rtc/validate", "/rtc/v1/validate"):
            async with session.get(f"{sandbox_server.http_url}{path}", params={"access_token": good}) as resp:
                assert resp.status == 200
            async with session.get(f"{sandbox_server.http_url}{path}", params={"access_token": "x.y.z"}) as resp:
                assert resp.status == 401


async def test_the_root_path_answers_ok_for_health_checks(sandbox_server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session, session.get(sandbox_server.http_url) as resp:
        assert (resp.status, await resp.text()) == (200, "OK")


async def test_update_subscriptions_subscribes_a_participant_on_its_behalf(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    listener = Listener()
    hearer = await join(sandbox_server, room="subs", identity="hearer", auto_subscribe=False)
    listener.attach(hearer)
    try:
        async with joined(sandbox_server, room="subs", identities=["speaker"]) as (speaker,):
            tone = await publish_tone(speaker)
            try:
                track = sandbox_server.rooms.rooms["subs"].participants["speaker"].tracks[tone.publication.sid]
                await eventually(lambda: track.frames_received > 0)
                assert not track.subscribers
                await sandbox_api.room.update_subscriptions(
                    api.UpdateSubscriptionsRequest(
                        room="subs", identity="hearer", track_sids=[tone.publication.sid], subscribe=True
                    )
                )
                await eventually(lambda: listener.loud_frames("speaker") >= 20)
            finally:
                await tone.aclose()
    finally:
        await listener.aclose()
        await hearer.disconnect()


async def test_agent_dispatch_service_speaks_json_too(sandbox_server: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {_admin_token(sandbox_server, 'jd')}"}
    base = f"{sandbox_server.http_url}/twirp/livekit.AgentDispatchService"
    async with aiohttp.ClientSession(headers=headers) as session:
        body = {"room": "jd", "agent_name": "helper", "metadata": '{"k": 1}'}
        async with session.post(f"{base}/CreateDispatch", json=body) as resp:
            assert resp.status == 200
            created = await resp.json()
        assert (created["room"], created["agent_name"], created["metadata"]) == ("jd", "helper", '{"k": 1}')
        async with session.post(f"{base}/ListDispatch", json={"room": "jd"}) as resp:
            listed = await resp.json()
        assert [d["id"] for d in listed["agent_dispatches"]] == [created["id"]]
        async with session.post(f"{base}/DeleteDispatch", json={"room": "jd", "dispatch_id": created["id"]}) as resp:
            assert resp.status == 200
        async with session.post(f"{base}/DeleteDispatch", json={"room": "jd", "dispatch_id": created["id"]}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (404, "not_found")


async def test_own_metadata_updates_need_the_grant_that_update_participant_can_give(
    sandbox_server: SandboxServer, sandbox_api: api.LiveKitAPI
) -> None:
    token = (
        api.AccessToken(sandbox_server.api_key, sandbox_server.api_secret)
        .with_identity("guest")
        .with_grants(api.VideoGrants(room_join=True, room="grant"))
        .to_jwt()
    )
    guest = rtc.Room()
    await guest.connect(sandbox_server.url, token)
    try:
        participant = sandbox_server.rooms.rooms["grant"].participants["guest"]
        # The server answers NOT_ALLOWED; how loudly the SDK reports that varies, the state must not change.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(guest.local_participant.set_metadata("refused"), 2)
        await asyncio.sleep(0.3)
        assert participant.metadata == ""
        await sandbox_api.room.update_participant(
            api.UpdateParticipantRequest(
                room="grant",
                identity="guest",
                permission=api.ParticipantPermission(
                    can_subscribe=True, can_publish=True, can_publish_data=True, can_update_metadata=True
                ),
            )
        )
        await guest.local_participant.set_metadata("allowed")
        await eventually(lambda: participant.metadata == "allowed")
    finally:
        await guest.disconnect()
