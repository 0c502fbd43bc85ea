"""Ending a call that cannot be served: the caller is told, in text and, when any TTS can be built, in voice.

A call whose pipeline cannot be built (no LLM client at all, no STT or TTS provider anywhere; a provider merely
missing for this call is replaced, see `agent.deployment.with_available_providers`) must not leave the caller in
silence until they give up. `tell_caller` posts `NOTICE` on ``lk.chat`` and as a final ``lk.transcription`` segment
(what chat widgets and caption views read), then, with a TTS, publishes an audio track, waits for the caller to
subscribe and speaks it. Everything is bounded by `within_s` and nothing raises: the job ends right after.
"""

from __future__ import annotations

import asyncio
from typing import Final

from livekit import rtc

from agent.chat import post_notice
from agent.log import get_logger
from agent.pipeline import TtsEngine

logger = get_logger(__name__)

NOTICE: Final = "Sorry, the assistant can't take this call right now. Please try again later."
TRACK_NAME: Final = "unavailable_notice"


async def tell_caller(room: rtc.Room, *, tts_engine: TtsEngine | None, within_s: float = 10.0) -> None:
    """Post `NOTICE` as text, then speak it when `tts_engine` is given. Never raises (cancellation aside)."""
    try:
        async with asyncio.timeout(within_s):
            await post_notice(room, NOTICE, segment="unavailable")
            if tts_engine is not None:
                await _speak(room, tts_engine)
    except TimeoutError:
        logger.warning("unavailable notice cut short", extra={"within_s": within_s})
    except Exception as error:
        logger.warning("unavailable notice failed", extra={"error": type(error).__name__})


async def _speak(room: rtc.Room, tts_engine: TtsEngine) -> None:
    source = rtc.AudioSource(tts_engine.sample_rate, tts_engine.num_channels)
    try:
        track = rtc.LocalAudioTrack.create_audio_track(TRACK_NAME, source)
        publication = await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        # Audio sent before anyone subscribed would be lost.
        await publication.wait_for_subscription()
        async with tts_engine.synthesize(NOTICE) as stream:
            async for audio in stream:
                await source.capture_frame(audio.frame)
        await source.wait_for_playout()
    finally:
        await source.aclose()
