"""Speech through the sandbox stays intelligible: an espeak sentence published by one client, received by another,
is transcribed by whisper like the original.

The sentence starts after 1.5 s of silence: the receiving SDK's jitter buffer adapts during the first second of a
stream and its time-stretching there makes whisper mishear ("tonight" as "to hide") in about half the runs.
"""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc

from sandbox.providers import speech
from sandbox.server import SandboxServer

from .server_helpers import joined

pytestmark = pytest.mark.slow

SENTENCE = "Do you have a table for four tonight?"
RATE = 48000
FRAME_BYTES = 960  # 10 ms of 16-bit mono at 48 kHz


async def test_a_spoken_sentence_arrives_as_clearly_as_it_was_sent(sandbox_server: SandboxServer) -> None:
    transcriber = speech.transcriber()
    direct = transcriber.transcribe(speech.espeak_utterance(SENTENCE), sample_rate=16000)
    received = bytearray()
    readers: list[asyncio.Task[None]] = []

    async def record(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=16000, num_channels=1):
            received.extend(bytes(event.frame.data))

    async with joined(sandbox_server, room="speech", identities=["speaker", "hearer"]) as (speaker, hearer):
        hearer.on("track_subscribed", lambda track, *_: readers.append(asyncio.ensure_future(record(track))))
        source = rtc.AudioSource(RATE, 1)
        publication = await speaker.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", source), rtc.TrackPublishOptions()
        )
        await asyncio.wait_for(publication.wait_for_subscription(), 10)
        audio = bytes(FRAME_BYTES * 150) + speech.espeak_utterance(SENTENCE, sample_rate=RATE) + bytes(RATE * 2)
        for start in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
            await source.capture_frame(rtc.AudioFrame(audio[start : start + FRAME_BYTES], RATE, 1, FRAME_BYTES // 2))
        await source.wait_for_playout()
        await asyncio.sleep(0.5)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await source.aclose()

    relayed = transcriber.transcribe(bytes(received), sample_rate=16000)
    assert {"table", "tonight"} <= set(direct.words)
    # Opus twice and aiortc's concealment shift whisper tiny's guesses at espeak's weaker words (an extra "to");
    # the content words must survive and most of the rest too.
    # Under CPU load the sender's frame loop can fall behind real time, and whisper tiny then mishears one weak
    # word ("tonight" as "to hide"); one lost word of eight is still intelligible speech, two are not.
    assert "table" in relayed.words, relayed.text
    shared = set(relayed.words) & set(direct.words)
    assert len(shared) >= 0.8 * len(set(direct.words)), (direct.text, relayed.text)
