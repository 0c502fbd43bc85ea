"""Scribe mode: every speaker transcribed with a label, the agent handed only what names it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable

import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, APIStatusError, stt, utils, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.plugins import deepgram
from prometheus_client import REGISTRY

from agent import pipeline
from agent.config.call_config import CallConfig
from agent.scribe import Scribe, address_names, bias_towards, is_addressed
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


class FailingSTT(ScriptedSTT):
    """`ScriptedSTT` whose first `failures` recognitions answer HTTP 500 (not retried in place)."""

    def __init__(self, sentences: list[str], *, failures: int) -> None:
        super().__init__(sentences)
        self.failures = failures
        self.attempts = 0

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.SpeechEvent:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise APIStatusError("stt unavailable", status_code=500, retryable=False)
        return await super()._recognize_impl(buffer, language=language, conn_options=conn_options)


def utterances(pcm: bytes) -> Callable[[], contextlib.AbstractAsyncContextManager[AsyncIterable[rtc.AudioFrame]]]:
    """Each attempt of a transcription hears the utterance again (as a restarted track stream hears what follows)."""

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[AsyncIterable[rtc.AudioFrame]]:
        yield frames_of(pcm)

    return opened


def failures_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("webcall_scribe_stt_failures_total", {"outcome": outcome}) or 0.0


async def test_a_failed_transcription_is_restarted_recorded_and_hears_what_is_said_next(
    silero: vad.VAD, utterance: bytes
) -> None:
    engine = FailingSTT(["scribe, what did we decide"], failures=1)
    incidents: list[tuple[str, dict[str, object]]] = []
    addressed: list[tuple[str, str]] = []
    restarted_before = failures_counted("restarted")
    scribe = Scribe(
        engine=engine,
        vad_model=silero,
        names=address_names(CallConfig()),
        on_addressed=lambda *a: addressed.append(a),
        on_incident=lambda code, data: incidents.append((code, data)),
        restart_delays_s=(0.01, 0.01),
    )
    await asyncio.wait_for(scribe.follow(utterances(utterance), speaker="Ben"), timeout=60)
    assert incidents == [
        ("stt_restarted", {"role": "stt", "kind": "status", "status": 500, "attempt": 1, "delay_s": 0.01})
    ]
    assert [(line.speaker, line.text) for line in scribe.lines] == [("Ben", "scribe, what did we decide")]
    assert addressed == [("Ben", "scribe, what did we decide")]
    assert failures_counted("restarted") == restarted_before + 1


async def test_a_transcription_that_keeps_failing_is_given_up_after_the_bounded_restarts(
    silero: vad.VAD, utterance: bytes
) -> None:
    engine = FailingSTT([], failures=1_000)
    incidents: list[tuple[str, dict[str, object]]] = []
    stopped_before = failures_counted("stopped")
    scribe = Scribe(
        engine=engine,
        vad_model=silero,
        names=address_names(CallConfig()),
        on_addressed=lambda *_: None,
        on_incident=lambda code, data: incidents.append((code, data)),
        restart_delays_s=(0.01, 0.02, 0.03),
    )
    await asyncio.wait_for(scribe.follow(utterances(utterance), speaker="Ana"), timeout=60)
    assert [code for code, _ in incidents] == ["stt_restarted"] * 3 + ["stt_stopped"]
    assert [data["attempt"] for _, data in incidents] == [1, 2, 3, 4]
    assert engine.attempts == 4
    assert scribe.lines == []
    assert failures_counted("stopped") == stopped_before + 1


def test_a_nova_3_stt_is_biased_towards_the_names_the_agent_answers_to() -> None:
    names = address_names(CallConfig(variables={"agent_name": "Nova"}))
    engine = deepgram.STT(model="nova-3", api_key="sandbox")
    older = deepgram.STT(model="nova-2", api_key="sandbox")
    bias_towards(stt.FallbackAdapter([engine, older]), names)
    assert engine._opts.keyterm == ["scribe", "assistant", "nova"]
    assert older._opts.keyterm == [], "keyterms are for nova-3 only"
