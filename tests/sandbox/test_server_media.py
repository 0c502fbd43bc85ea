"""Two or three plain ``livekit.rtc.Room`` clients against the sandbox: audio, text streams, track state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from livekit import api, rtc
from livekit.protocol import rtc as rtc_pb

from sandbox.server import SandboxServer, running

from .server_helpers import Listener, eventually, join, joined, publish_tone


@pytest.fixture(params=["v1", "v0"])
async def any_signaling_server(request: pytest.FixtureRequest) -> AsyncIterator[SandboxServer]:
    """The server once per signaling path: /rtc/v1 and, with v1 answering 404, the SDK's /rtc fallback."""
    async with running(port=0, v1=request.param == "v1") as server:
        yield server


async def test_two_clients_exchange_real_opus_audio(any_signaling_server: SandboxServer) -> None:
    listener = Listener()
    async with joined(any_signaling_server, room="call", identities=["alice"]) as (alice,):
        bob = rtc.Room()
        listener.attach(bob)
        await bob.connect(any_signaling_server.url, any_signaling_server.token(room="call", identity="bob"))
        tone = await publish_tone(alice)
        try:
            await eventually(lambda: listener.loud_frames("alice") >= 50)
            published = any_signaling_server.rooms.rooms["call"].participants["alice"].tracks
            assert [t.info.sid for t in published.values()] == [tone.publication.sid]
            assert next(iter(published.values())).peak_level > 0.2
        finally:
            await tone.aclose()
            await listener.aclose()
            await bob.disconnect()


async def test_publisher_learns_its_track_was_subscribed(any_signaling_server: SandboxServer) -> None:
    async with joined(any_signaling_server, room="call", identities=["alice", "bob"]) as (alice, _bob):
        tone = await publish_tone(alice)
        try:
            await asyncio.wait_for(tone.publication.wait_for_subscription(), 10)
        finally:
            await tone.aclose()


async def test_a_late_joiner_receives_audio_published_before_it_came(any_signaling_server: SandboxServer) -> None:
    listener = Listener()
    async with joined(any_signaling_server, room="call", identities=["alice"]) as (alice,):
        tone = await publish_tone(alice)
        await eventually(
            lambda: any(
                t.frames_received
                for t in any_signaling_server.rooms.rooms["call"].participants["alice"].tracks.values()
            )
        )
        carol = rtc.Room()
        listener.attach(carol)
        await carol.connect(any_signaling_server.url, any_signaling_server.token(room="call", identity="carol"))
        try:
            await eventually(lambda: listener.loud_frames("alice") >= 20)
        finally:
            await tone.aclose()
            await listener.aclose()
            await carol.disconnect()


async def test_text_stream_on_lk_chat_reaches_the_other_participant(any_signaling_server: SandboxServer) -> None:
    async with joined(any_signaling_server, room="chat", identities=["alice", "bob"]) as (alice, bob):
        received: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        readers: list[asyncio.Task[None]] = []

        def on_chat(reader: rtc.TextStreamReader, sender: str) -> None:
            async def read() -> None:
                received.set_result((sender, await reader.read_all()))

            readers.append(asyncio.ensure_future(read()))

        bob.register_text_stream_handler("lk.chat", on_chat)
        await alice.local_participant.send_text("hello from alice", topic="lk.chat")
        assert await asyncio.wait_for(received, 5) == ("alice", "hello from alice")


async def test_destination_identities_limit_who_receives_data(any_signaling_server: SandboxServer) -> None:
    async with joined(any_signaling_server, room="chat", identities=["alice", "bob", "carol"]) as (alice, bob, carol):
        got: dict[str, list[str]] = {"bob": [], "carol": []}
        for who, client in (("bob", bob), ("carol", carol)):

            def on_data(packet: rtc.DataPacket, who: str = who) -> None:
                got[who].append(packet.data.decode())

            client.on("data_received", on_data)
        await alice.local_participant.publish_data(b"for carol", topic="t", destination_identities=["carol"])
        await alice.local_participant.publish_data(b"for all", topic="t")
        await eventually(lambda: len(got["bob"]) >= 1 and len(got["carol"]) >= 2)
        assert got == {"bob": ["for all"], "carol": ["for carol", "for all"]}


async def test_rpc_round_trips_between_participants(any_signaling_server: SandboxServer) -> None:
    async with joined(any_signaling_server, room="rpc", identities=["alice", "bob"]) as (alice, bob):

        async def shout(data: rtc.RpcInvocationData) -> str:
            return data.payload.upper()

        bob.local_participant.register_rpc_method("shout", shout)
        reply = await alice.local_participant.perform_rpc(destination_identity="bob", method="shout", payload="hi")
        assert reply == "HI"


async def test_mute_and_unpublish_are_seen_by_the_other_participant(any_signaling_server: SandboxServer) -> None:
    async with joined(any_signaling_server, room="call", identities=["alice", "bob"]) as (alice, bob):
        tone = await publish_tone(alice)
        try:
            await asyncio.wait_for(tone.publication.wait_for_subscription(), 10)
            remote = bob.remote_participants["alice"].track_publications[tone.publication.sid]
            tone.publication.track.mute()  # type: ignore[union-attr]
            await eventually(lambda: remote.muted)
            tone.publication.track.unmute()  # type: ignore[union-attr]
            await eventually(lambda: not remote.muted)
            await alice.local_participant.unpublish_track(tone.publication.sid)
            await eventually(lambda: tone.publication.sid not in bob.remote_participants["alice"].track_publications)
        finally:
            await tone.aclose()


async def test_leaving_removes_the_participant_for_everyone(sandbox_server: SandboxServer) -> None:
    alice = await join(sandbox_server, room="call", identity="alice")
    async with joined(sandbox_server, room="call", identities=["bob"]) as (bob,):
        await eventually(lambda: "alice" in bob.remote_participants)
        await alice.disconnect()
        await eventually(lambda: "alice" not in bob.remote_participants)
        assert list(sandbox_server.rooms.rooms["call"].participants) == ["bob"]


async def test_rooms_are_isolated_from_each_other(sandbox_server: SandboxServer) -> None:
    async with (
        joined(sandbox_server, room="one", identities=["alice", "bob"]) as (_alice, bob),
        joined(sandbox_server, room="two", identities=["carol"]) as (carol,),
    ):
        assert set(bob.remote_participants) == {"alice"}
        assert carol.remote_participants == {}
        assert sorted(sandbox_server.rooms.rooms) == ["one", "two"]


async def test_own_metadata_and_attributes_updates_reach_others(any_signaling_server: SandboxServer) -> None:
    async with joined(any_signaling_server, room="meta", identities=["alice", "bob"]) as (alice, bob):
        await alice.local_participant.set_metadata('{"lang": "hi"}')
        await alice.local_participant.set_attributes({"mood": "calm"})
        await alice.local_participant.set_name("Alice A.")
        await eventually(
            lambda: (
                bob.remote_participants["alice"].metadata == '{"lang": "hi"}'
                and bob.remote_participants["alice"].attributes == {"mood": "calm"}
                and bob.remote_participants["alice"].name == "Alice A."
            )
        )


async def test_a_connected_participant_becomes_active_for_the_others(any_signaling_server: SandboxServer) -> None:
    # livekit-agents' wait_for_participant() waits for ACTIVE, which the server sets once the media link connects.
    async with joined(any_signaling_server, room="call", identities=["alice", "bob"]) as (_alice, bob):
        await eventually(
            lambda: bob.remote_participants["alice"].state == rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
        )


async def test_data_from_a_participant_without_publish_data_permission_is_dropped(
    sandbox_server: SandboxServer,
) -> None:
    muted_token = (
        api.AccessToken(sandbox_server.api_key, sandbox_server.api_secret)
        .with_identity("lurker")
        .with_grants(api.VideoGrants(room_join=True, room="perm", can_publish_data=False))
        .to_jwt()
    )
    lurker = rtc.Room()
    await lurker.connect(sandbox_server.url, muted_token)
    try:
        async with joined(sandbox_server, room="perm", identities=["alice", "bob"]) as (alice, bob):
            got: list[str] = []
            bob.on(
                "data_received", lambda packet: got.append(packet.participant.identity if packet.participant else "")
            )
            with contextlib.suppress(Exception):  # the SDK may refuse locally; either way nothing may arrive
                await lurker.local_participant.publish_data(b"sneaky")
            await alice.local_participant.publish_data(b"allowed")
            await eventually(lambda: "alice" in got)
            await asyncio.sleep(0.2)
            assert got == ["alice"]
    finally:
        await lurker.disconnect()


async def test_an_explicit_subscription_made_before_media_flows_is_honoured(sandbox_server: SandboxServer) -> None:
    # livekit-agents connects with AUDIO_ONLY: the SDK subscribes as soon as it learns of the publication,
    # which is before the publisher's media reaches the server.
    listener = Listener()
    agent = await join(sandbox_server, room="late", identity="agent", auto_subscribe=False)
    listener.attach(agent)

    def on_published(publication: rtc.RemoteTrackPublication, _who: rtc.RemoteParticipant) -> None:
        publication.set_subscribed(True)

    agent.on("track_published", on_published)
    try:
        async with joined(sandbox_server, room="late", identities=["caller"]) as (caller,):
            tone = await publish_tone(caller)
            try:
                await eventually(lambda: listener.loud_frames("caller") >= 20)
            finally:
                await tone.aclose()
    finally:
        await listener.aclose()
        await agent.disconnect()


async def test_joining_again_with_the_same_identity_replaces_the_first_connection(
    sandbox_server: SandboxServer,
) -> None:
    first = await join(sandbox_server, room="dup", identity="alice")
    second = await join(sandbox_server, room="dup", identity="alice")
    try:
        await eventually(lambda: first.connection_state == rtc.ConnectionState.CONN_DISCONNECTED)
        assert second.connection_state == rtc.ConnectionState.CONN_CONNECTED
        (participant,) = sandbox_server.rooms.rooms["dup"].participants.values()
        assert participant.sid == second.local_participant.sid
    finally:
        await first.disconnect()
        await second.disconnect()


@pytest.mark.parametrize("signaling", ["v1", "v0"])
async def test_unsubscribing_stops_the_audio_and_subscribing_again_resumes_it(signaling: str) -> None:
    async with running(port=0, v1=signaling == "v1") as server:
        listener = Listener()
        hearer = await join(server, room="sub", identity="hearer", auto_subscribe=False)
        listener.attach(hearer)
        hearer.on("track_published", lambda publication, _who: publication.set_subscribed(True))
        try:
            async with joined(server, room="sub", identities=["speaker"]) as (speaker,):
                tone = await publish_tone(speaker)
                try:
                    await eventually(lambda: listener.loud_frames("speaker") >= 20)
                    remote = hearer.remote_participants["speaker"].track_publications[tone.publication.sid]
                    remote.set_subscribed(False)
                    track = server.rooms.rooms["sub"].participants["speaker"].tracks[tone.publication.sid]
                    await eventually(lambda: not track.subscribers)
                    await asyncio.sleep(0.3)
                    heard_before = listener.loud_frames("speaker")
                    await asyncio.sleep(0.5)
                    assert listener.loud_frames("speaker") - heard_before < 5
                    remote.set_subscribed(True)
                    await eventually(lambda: listener.loud_frames("speaker") >= heard_before + 20)
                finally:
                    await tone.aclose()
        finally:
            await listener.aclose()
            await hearer.disconnect()


async def test_a_hidden_participant_is_not_announced_to_others(sandbox_server: SandboxServer) -> None:
    hidden_token = (
        api.AccessToken(sandbox_server.api_key, sandbox_server.api_secret)
        .with_identity("observer")
        .with_grants(api.VideoGrants(room_join=True, room="hide", hidden=True))
        .to_jwt()
    )
    async with joined(sandbox_server, room="hide", identities=["alice"]) as (alice,):
        observer = rtc.Room()
        await observer.connect(sandbox_server.url, hidden_token)
        try:
            await eventually(lambda: "alice" in observer.remote_participants)
            async with joined(sandbox_server, room="hide", identities=["bob"]) as (bob,):
                await eventually(lambda: "bob" in alice.remote_participants)
                assert "observer" not in alice.remote_participants
                assert set(bob.remote_participants) == {"alice"}
        finally:
            await observer.disconnect()


async def test_the_join_response_offers_fast_publish_only_to_a_participant_that_may_publish(
    sandbox_server: SandboxServer,
) -> None:
    # As livekit-server does: the SDK then negotiates a publisher's connection at once instead of after a debounce.
    listener = (
        api.AccessToken(sandbox_server.api_key, sandbox_server.api_secret)
        .with_identity("listener")
        .with_grants(api.VideoGrants(room_join=True, room="fast", can_publish=False))
        .to_jwt()
    )
    for token, expected in ((sandbox_server.token(room="fast", identity="speaker"), True), (listener, False)):
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{sandbox_server.url}/rtc", params={"access_token": token, "protocol": "16"}) as ws,
        ):
            first = rtc_pb.SignalResponse.FromString((await ws.receive(timeout=5)).data)
            assert first.join.participant.permission.can_publish is expected
            assert first.join.fast_publish is expected


async def test_a_client_that_stops_signaling_is_dropped_after_the_ping_timeout() -> None:
    async with running(port=0, ping_timeout=0.5) as server:
        token = server.token(room="quiet", identity="silent")
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{server.url}/rtc", params={"access_token": token, "protocol": "16"}) as ws,
        ):
            first = rtc_pb.SignalResponse.FromString((await ws.receive(timeout=5)).data)
            assert first.join.participant.identity == "silent"
            kinds: list[str | None] = []
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                kinds.append(rtc_pb.SignalResponse.FromString(msg.data).WhichOneof("message"))
            assert "leave" in kinds
            assert "quiet" not in server.rooms.rooms or not server.rooms.rooms["quiet"].participants


async def test_a_published_video_track_is_announced_and_audio_still_flows(sandbox_server: SandboxServer) -> None:
    listener = Listener()
    async with joined(sandbox_server, room="cam", identities=["alice", "bob"]) as (alice, bob):
        listener.attach(bob)
        video = rtc.VideoSource(160, 120)
        camera = await alice.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("cam", video),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA),
        )
        blank = rtc.VideoFrame(160, 120, rtc.VideoBufferType.RGBA, bytes(160 * 120 * 4))

        async def film() -> None:
            while True:
                video.capture_frame(blank)
                await asyncio.sleep(1 / 15)

        filming = asyncio.create_task(film())
        tone = await publish_tone(alice)
        try:
            await eventually(lambda: listener.loud_frames("alice") >= 20)
            assert camera.sid in bob.remote_participants["alice"].track_publications
        finally:
            filming.cancel()
            await tone.aclose()
            await listener.aclose()


async def test_a_dropped_signal_connection_is_resumed_without_leaving(any_signaling_server: SandboxServer) -> None:
    server = any_signaling_server
    listener = Listener()
    async with joined(server, room="blip", identities=["alice", "bob"]) as (alice, bob):
        listener.attach(bob)
        reconnected = asyncio.Event()
        alice.on("reconnected", lambda: reconnected.set())
        got: list[bytes] = []
        bob.on("data_received", lambda packet: got.append(packet.data))
        tone = await publish_tone(alice)
        try:
            await eventually(lambda: listener.loud_frames("alice") >= 20)
            sid = server.rooms.rooms["blip"].participants["alice"].sid
            await server.drop_signal_connection(room="blip", identity="alice")
            await asyncio.wait_for(reconnected.wait(), 15)
            assert server.rooms.rooms["blip"].participants["alice"].sid == sid
            assert "alice" in bob.remote_participants
            heard = listener.loud_frames("alice")
            await eventually(lambda: listener.loud_frames("alice") >= heard + 20)
            await alice.local_participant.publish_data(b"still here")
            await eventually(lambda: got == [b"still here"])
        finally:
            await tone.aclose()
            await listener.aclose()


async def test_two_participants_publishing_at_once_hear_each_other(any_signaling_server: SandboxServer) -> None:
    # Over /rtc the server's subscriber offer and the client's publisher offer cross; neither may wait on the other.
    heard_by_alice, heard_by_bob = Listener(), Listener()
    async with joined(any_signaling_server, room="both", identities=["alice", "bob"]) as (alice, bob):
        heard_by_alice.attach(alice)
        heard_by_bob.attach(bob)
        tones = await asyncio.gather(publish_tone(alice), publish_tone(bob))
        try:
            await eventually(
                lambda: heard_by_alice.loud_frames("bob") >= 20 and heard_by_bob.loud_frames("alice") >= 20,
                within=8,
            )
        finally:
            for tone in tones:
                await tone.aclose()
            await heard_by_alice.aclose()
            await heard_by_bob.aclose()


async def test_speaker_updates_follow_who_is_making_sound(sandbox_server: SandboxServer) -> None:
    async with joined(sandbox_server, room="talk", identities=["alice", "bob"]) as (alice, bob):
        seen: list[list[str]] = []
        bob.on("active_speakers_changed", lambda speakers: seen.append([p.identity for p in speakers]))
        tone = await publish_tone(alice)
        try:
            await eventually(lambda: ["alice"] in seen)
        finally:
            await tone.aclose()
        await eventually(lambda: seen[-1] == [])


def test_the_forwarding_receiver_hands_an_audio_frame_on_when_the_next_packet_arrives() -> None:
    import aiortc.rtcrtpreceiver
    from aiortc.rtp import RtpPacket

    from sandbox.server.media import enable_opus_passthrough

    enable_opus_passthrough()
    buffer = aiortc.rtcrtpreceiver.JitterBuffer(capacity=16, prefetch=4)  # type: ignore[attr-defined]
    frames = []
    for seq in range(3):
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq, payload=b"x")
        packet._data = packet.payload  # type: ignore[attr-defined]  # what the receiver sets after depacketizing
        _, frame = buffer.add(packet)
        frames.append(frame)
    # An SFU forwards as packets come; aiortc's player default would hold four 20 ms frames back.
    assert frames[0] is None
    assert [f.timestamp for f in frames[1:] if f is not None] == [0, 960]


async def test_a_publisher_is_told_of_a_subscription_only_once_its_media_reaches_the_server(
    any_signaling_server: SandboxServer,
) -> None:
    async with joined(any_signaling_server, room="call", identities=["alice", "bob"]) as (alice, _bob):
        tone = await publish_tone(alice)
        try:
            await asyncio.wait_for(tone.publication.wait_for_subscription(), 10)
            # The SDK starts sending what it captures when told; whatever it captured before its own section was
            # negotiated would be lost, so the server announces the subscription only when packets arrive.
            track = any_signaling_server.rooms.rooms["call"].participants["alice"].tracks[tone.publication.sid]
            assert track.frames_received > 0
        finally:
            await tone.aclose()
