"""Scribe mode: every speaker transcribed with a label, the agent handed only what names it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from livekit import rtc
from livekit.agents import vad

from agent import pipeline
from agent.config.call_config import CallConfig
from agent.scribe import Scribe, address_names, is_addressed
from tests.worker.fakes import ScriptedSTT, espeak_pcm


@pytest.fixture(scope="module")
def silero() -> vad.VAD:
    return pipeline.load_vad()


@pytest.fixture(scope="module")
def utterance(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak_pcm("Let us ship the release on Friday.", workdir=tmp_path_factory.mktemp("scribe"))


async def frames_of(pcm: bytes, *, rate: int = 16000) -> AsyncIterator[rtc.AudioFrame]:
    """Speech then a second of silence, as 20 ms frames (faster than real time: the VAD only counts samples)."""
    step = rate // 50
    padded = pcm + b"\0" * rate * 2
    for start in range(0, len(padded) // 2 - step, step):
        yield rtc.AudioFrame(padded[start * 2 : (start + step) * 2], rate, 1, step)
        await asyncio.sleep(0)


def test_the_agent_is_addressed_by_name_as_a_whole_word() -> None:
    names = address_names(CallConfig(variables={"agent_name": "Nova"}))
    assert is_addressed("Scribe, what did we decide?", names)
    assert is_addressed("nova can you sum up", names)
    assert not is_addressed("We need a better description of the scope", names)
    assert not is_addressed("the supernova launch", names)


async def test_each_speaker_is_transcribed_with_a_label_and_only_addressed_lines_reach_the_agent(
    silero: vad.VAD, utterance: bytes
) -> None:
    engine = ScriptedSTT(["let us ship the release on friday", "scribe, what did we decide"])
    addressed: list[tuple[str, str]] = []
    scribe = Scribe(
        engine=engine, vad_model=silero, names=address_names(CallConfig()), on_addressed=lambda *a: addressed.append(a)
    )
    await scribe.transcribe(frames_of(utterance), speaker="Ana")
    await scribe.transcribe(frames_of(utterance), speaker="Ben")
    assert [(line.speaker, line.text) for line in scribe.lines] == [
        ("Ana", "let us ship the release on friday"),
        ("Ben", "scribe, what did we decide"),
    ]
    assert addressed == [("Ben", "scribe, what did we decide")]
    assert engine.heard_seconds[0] > 1.0, "the VAD cut whole utterances from real speech"
    text = scribe.text().splitlines()
    assert text[0].endswith("] Ana: let us ship the release on friday")
    assert text[1].endswith("] Ben: scribe, what did we decide")
