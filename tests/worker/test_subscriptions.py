"""The callers' audio is subscribed once the agent's own voice is on its way, through a real sandbox room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from livekit import rtc

from agent.subscriptions import DeferredAudioSubscription
from sandbox.server import SandboxServer
from tests.sandbox.server_helpers import Tone, eventually, join, publish_tone


@pytest.fixture
async def agent_room(sandbox_server: SandboxServer) -> AsyncIterator[tuple[rtc.Room, DeferredAudioSubscription]]:
    room = rtc.Room()
    deferred = DeferredAudioSubscription(room)  # as the worker does: made before the room is joined
    await room.connect(
        sandbox_server.url,
        sandbox_server.token(room="calls", identity="agent"),
        rtc.RoomOptions(auto_subscribe=False),
    )
    try:
        yield room, deferred
    finally:
        await room.disconnect()


def caller_publications(room: rtc.Room) -> list[rtc.RemoteTrackPublication]:
    caller = room.remote_participants.get("caller")
    return list(caller.track_publications.values()) if caller is not None else []


async def test_the_callers_audio_waits_for_the_agents_own_track_then_is_subscribed(
    sandbox_server: SandboxServer, agent_room: tuple[rtc.Room, DeferredAudioSubscription]
) -> None:
    room, deferred = agent_room
    caller = await join(sandbox_server, room="calls", identity="caller")
    tones: list[Tone] = [await publish_tone(caller, name="microphone")]
    try:
        await eventually(lambda: len(caller_publications(room)) == 1)
        await asyncio.sleep(0.3)  # time enough for a subscription, had one been asked for
        assert not deferred.released
        assert not caller_publications(room)[0].subscribed

        tones.append(await publish_tone(room, name="agent_voice"))
        await eventually(lambda: deferred.released and all(p.subscribed for p in caller_publications(room)))

        tones.append(await publish_tone(caller, name="second_microphone"))
        await eventually(
            lambda: len(caller_publications(room)) == 2 and all(p.subscribed for p in caller_publications(room))
        )
    finally:
        for tone in tones:
            await tone.aclose()
        await caller.disconnect()


async def test_release_subscribes_audio_and_never_video_without_a_track_of_the_agents_own(
    sandbox_server: SandboxServer, agent_room: tuple[rtc.Room, DeferredAudioSubscription]
) -> None:
    room, deferred = agent_room
    caller = await join(sandbox_server, room="calls", identity="caller")
    tone = await publish_tone(caller, name="microphone")
    video = rtc.VideoSource(16, 16)
    await caller.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("camera", video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA),
    )
    try:
        await eventually(lambda: len(caller_publications(room)) == 2)
        deferred.release()
        deferred.release()  # idempotent
        by_kind = {p.kind: p for p in caller_publications(room)}
        await eventually(lambda: by_kind[rtc.TrackKind.KIND_AUDIO].subscribed)
        await asyncio.sleep(0.3)
        assert not by_kind[rtc.TrackKind.KIND_VIDEO].subscribed
    finally:
        await tone.aclose()
        await caller.disconnect()
