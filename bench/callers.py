"""The benchmark's callers: `rtc.Room` participants with a clock-paced microphone playing espeak-ng speech.

`BenchCaller` is the QA caller's `LiveCall` (`sandbox.caller.participant`: a microphone that sends silence unless
speaking, the agent's state, its text segments) that also keeps the time of every audible agent frame, so each
turn's first audible frame can be found after the caller's speech end.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
from livekit import api, rtc

from sandbox.caller.participant import AUDIBLE_RMS, SAY_TAIL_S, HeardTrack, LiveCall
from sandbox.caller.speech import MIC_RATE
from sandbox.providers import speech
from sandbox.server.process import ServerProcess

SENTENCES = (
    "I would like to book a table for four tonight.",
    "What time do you open tomorrow morning?",
    "Can I bring my dog to the terrace?",
    "Please put the booking under the name Smith.",
    "Do you have anything vegetarian on the menu?",
)
# Below this level (16-bit) a sample of espeak's output is its trailing silence.
_VOICED = 500


@dataclass(frozen=True)
class Utterance:
    """One caller sentence: its PCM at 16 kHz and where its voice ends (seconds from its start)."""

    text: str
    pcm: bytes
    voiced_s: float

    @classmethod
    def spoken(cls, text: str) -> Utterance:
        pcm = speech.espeak_utterance(text, sample_rate=MIC_RATE)
        samples = np.abs(np.frombuffer(pcm, dtype=np.int16).astype(np.int32))
        loud = np.nonzero(samples > _VOICED)[0]
        end = int(loud[-1]) + 1 if loud.size else len(samples)
        return cls(text=text, pcm=pcm[: end * 2], voiced_s=end / MIC_RATE)


def utterances() -> list[Utterance]:
    return [Utterance.spoken(text) for text in SENTENCES]


class BenchCaller(LiveCall):
    """A caller whose received audio is kept as the times of audible frames."""

    def __init__(self, *, room: rtc.Room, identity: str) -> None:
        super().__init__(room=room, identity=identity, keep_pcm=False)
        self.audible: list[float] = []

    async def _listen(self, stream: rtc.AudioStream, heard: HeardTrack) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float32)
            if samples.size and float(np.sqrt(np.mean(samples**2))) > AUDIBLE_RMS:
                self.audible.append(time.monotonic())

    def first_audible_after(self, moment: float) -> float | None:
        return next((t for t in self.audible if t > moment), None)

    def last_audible(self) -> float:
        return self.audible[-1] if self.audible else 0.0

    async def speak(self, utterance: Utterance) -> float:
        """Say `utterance` in real time; returns the moment its voice ended (``time.monotonic``)."""
        await self.say(utterance.pcm)
        # `say` returns once the utterance and its silent tail have gone out, one 20 ms frame at a time.
        return time.monotonic() - SAY_TAIL_S

    async def quiet(self, *, for_s: float, within_s: float) -> bool:
        """Wait until no agent audio has been heard for `for_s` (the agent finished speaking)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if time.monotonic() - self.last_audible() >= for_s:
                return True
            await asyncio.sleep(0.05)
        return False


def caller_token(server: ServerProcess, *, room: str, identity: str) -> str:
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def join(server: ServerProcess, *, room: str, identity: str = "caller") -> BenchCaller:
    """A caller in `room` with its microphone published and running."""
    caller = BenchCaller(room=rtc.Room(), identity=identity)
    await asyncio.wait_for(caller.room.connect(server.url, caller_token(server, room=room, identity=identity)), 15)
    await caller.publish_microphone()
    return caller
