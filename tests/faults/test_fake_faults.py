"""Every fault of the control API, for every service of both fakes, as a real client meets it on the wire.

Each fault is queued with ``POST /sandbox/faults`` (what a test, a QA run or ``run-local`` sends at run time), then
one real request goes to the endpoint of that service: the OpenAI SDK for the fake OpenAI (the client the livekit
openai plugin uses), aiohttp over HTTP and websocket for the fake Deepgram (what the livekit deepgram plugin uses).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import httpx2
import numpy as np
import openai
import pytest

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech
from sandbox.providers.base import FakeProviderServer
from sandbox.providers.controls import FaultName, Service

pytestmark = pytest.mark.slow

# The client's time-out: short for a never-answered request, long enough for whisper on a busy machine otherwise.
QUICK_TIMEOUT_S = 1.0
CLIENT_TIMEOUT_S = 60.0
SLOW_S = 0.4
TOKEN = {"Authorization": "Token sandbox"}


@dataclass
class Outcome:
    """What the client saw: the status (when one came), ``Retry-After``, when the first byte came, whether the
    whole answer arrived, and which kind of error the client raised (``connection``, ``timeout``)."""

    status: int | None = None
    retry_after: str | None = None
    first_byte_s: float | None = None
    complete: bool = False
    error: str | None = None


Driver = Callable[[FakeProviderServer, float], Awaitable[Outcome]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _sdk(server: FakeOpenAI, timeout_s: float) -> openai.AsyncClient:
    return openai.AsyncClient(
        api_key="sandbox", base_url=server.base_url, max_retries=0, timeout=httpx2.Timeout(timeout_s)
    )


async def _openai_call(
    run: Callable[[openai.AsyncClient, Outcome, float], Awaitable[None]],
    server: FakeOpenAI,
    timeout_s: float = CLIENT_TIMEOUT_S,
) -> Outcome:
    outcome = Outcome()
    client = _sdk(server, timeout_s)
    started = time.monotonic()
    try:
        await run(client, outcome, started)
    except openai.APIStatusError as error:
        outcome.status = error.status_code
        outcome.retry_after = error.response.headers.get("retry-after")
    except openai.APITimeoutError:
        outcome.error = "timeout"
    except (openai.APIConnectionError, httpx2.TransportError):
        # a cut body surfaces from the stream as the transport's own error
        outcome.error = "connection"
    finally:
        await client.close()
    return outcome


async def _llm(client: openai.AsyncClient, outcome: Outcome, started: float) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "tell me something about the weather today please"}],
        stream=True,
    )
    outcome.status = 200
    async for chunk in stream:
        if outcome.first_byte_s is None:
            outcome.first_byte_s = time.monotonic() - started
        if chunk.choices and chunk.choices[0].finish_reason == "stop":
            outcome.complete = True


async def _tts(client: openai.AsyncClient, outcome: Outcome, started: float) -> None:
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello there. This is a test.", response_format="pcm"
    ) as response:
        outcome.status = response.status_code
        received = 0
        async for piece in response.iter_bytes():
            if outcome.first_byte_s is None:
                outcome.first_byte_s = time.monotonic() - started
            received += len(piece)
        outcome.complete = received > 0


def _utterance_wav() -> bytes:
    pcm = speech.espeak_utterance("I would like a pizza.", sample_rate=16000)
    header = (
        b"RIFF"
        + (36 + len(pcm)).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (16000).to_bytes(4, "little")
        + (32000).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + len(pcm).to_bytes(4, "little")
    )
    return header + pcm


async def _stt(client: openai.AsyncClient, outcome: Outcome, started: float) -> None:
    result = await client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", _utterance_wav()))
    outcome.status = 200
    outcome.first_byte_s = time.monotonic() - started
    outcome.complete = "pizza" in speech.words_of(result.text)


async def _deepgram_call(
    run: Callable[[aiohttp.ClientSession, Outcome, float], Awaitable[None]], timeout_s: float
) -> Outcome:
    outcome = Outcome()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_s, sock_connect=timeout_s)
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=timeout) as http:
        try:
            await run(http, outcome, started)
        except aiohttp.WSServerHandshakeError as error:
            outcome.status = error.status
            outcome.retry_after = error.headers.get("Retry-After") if error.headers else None
        except TimeoutError:
            outcome.error = "timeout"
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            outcome.error = "connection"
    return outcome


async def _speak_post(http: aiohttp.ClientSession, outcome: Outcome, started: float, *, url: str) -> None:
    params = {"model": "aura-asteria-en", "encoding": "linear16", "sample_rate": "24000", "container": "none"}
    async with http.post(url, params=params, json={"text": "Hello there. This is a test."}, headers=TOKEN) as answer:
        outcome.status = answer.status
        outcome.retry_after = answer.headers.get("Retry-After")
        if answer.status != 200:
            return
        received = 0
        async for piece in answer.content.iter_any():
            if outcome.first_byte_s is None:
                outcome.first_byte_s = time.monotonic() - started
            received += len(piece)
        outcome.complete = received > 0


async def _listen_ws(http: aiohttp.ClientSession, outcome: Outcome, started: float, *, url: str) -> None:
    params = {"model": "nova-3", "encoding": "linear16", "sample_rate": "16000", "channels": "1"}
    pcm = speech.espeak_utterance("I would like a pizza.", sample_rate=16000) + np.zeros(16000, np.int16).tobytes()
    async with asyncio.timeout(30), http.ws_connect(url, params=params, headers=TOKEN) as ws:
        outcome.status = 101
        outcome.first_byte_s = time.monotonic() - started
        step = 16000 // 10 * 2
        for start in range(0, len(pcm), step):
            if ws.closed:
                break
            await ws.send_bytes(pcm[start : start + step])
        if not ws.closed:
            await ws.send_json({"type": "CloseStream"})
        heard: list[str] = []
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                data = message.json()
                if data.get("type") == "Results" and data.get("is_final"):
                    heard.append(data["channel"]["alternatives"][0]["transcript"])
        outcome.complete = ws.close_code == 1000 and "pizza" in speech.words_of(" ".join(heard))
        if ws.close_code != 1000:
            outcome.error = "connection"


async def _openai(
    server: FakeProviderServer, timeout_s: float, run: Callable[[openai.AsyncClient, Outcome, float], Awaitable[None]]
) -> Outcome:
    assert isinstance(server, FakeOpenAI)
    return await _openai_call(run, server, timeout_s)


async def _speak(server: FakeProviderServer, timeout_s: float) -> Outcome:
    assert isinstance(server, FakeDeepgram)
    url = server.speak_url
    return await _deepgram_call(lambda http, o, t: _speak_post(http, o, t, url=url), timeout_s)


async def _listen(server: FakeProviderServer, timeout_s: float) -> Outcome:
    assert isinstance(server, FakeDeepgram)
    url = server.listen_url
    return await _deepgram_call(lambda http, o, t: _listen_ws(http, o, t, url=url), timeout_s)


ENDPOINTS: dict[str, tuple[str, Service, Driver]] = {
    "openai-llm": ("openai", "llm", lambda s, t: _openai(s, t, _llm)),
    "openai-tts": ("openai", "tts", lambda s, t: _openai(s, t, _tts)),
    "openai-stt": ("openai", "stt", lambda s, t: _openai(s, t, _stt)),
    "deepgram-tts": ("deepgram", "tts", _speak),
    "deepgram-stt": ("deepgram", "stt", _listen),
}
KINDS: tuple[FaultName, ...] = ("http_500", "http_429", "refuse", "timeout", "cut", "slow")


async def _queue(http: aiohttp.ClientSession, server: FakeProviderServer, body: dict[str, object]) -> int:
    async with http.post(server.origin + "/sandbox/faults", json=body) as answer:
        return answer.status


def _check(kind: FaultName, outcome: Outcome, *, streamed: bool) -> None:
    match kind:
        case "http_500":
            assert (outcome.status, outcome.complete) == (500, False)
        case "http_429":
            assert (outcome.status, outcome.retry_after, outcome.complete) == (429, "2", False)
        case "refuse":
            assert (outcome.error, outcome.complete) == ("connection", False)
        case "timeout":
            assert (outcome.error, outcome.complete) == ("timeout", False)
        case "cut":
            # a streamed answer starts, then breaks; an unstreamed one closes with nothing answered
            assert (outcome.error, outcome.complete) == ("connection", False)
            assert (outcome.status is not None) == streamed
        case "slow":
            assert outcome.complete
            assert outcome.first_byte_s is not None
            assert outcome.first_byte_s >= SLOW_S


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_each_injected_fault_reaches_a_real_client_as_that_fault_then_the_next_request_is_answered(
    endpoint: str,
    kind: FaultName,
    fake_openai: FakeOpenAI,
    fake_deepgram: FakeDeepgram,
    http: aiohttp.ClientSession,
) -> None:
    fake, service, drive = ENDPOINTS[endpoint]
    server: FakeProviderServer = fake_openai if fake == "openai" else fake_deepgram
    # the fake must not hold a never-answered request longer than this test
    server.controls.hang_limit = 5.0
    # aiohttp retries an idempotent request (the websocket's GET) once by itself when its connection is reset
    count = 2 if (kind, endpoint) == ("refuse", "deepgram-stt") else 1
    body: dict[str, object] = {"service": service, "kind": kind, "count": count, "retry_after": 2, "delay": SLOW_S}
    if kind == "cut":
        body["after_chunks"] = 2
    assert await _queue(http, server, body) == 200
    outcome = await drive(server, QUICK_TIMEOUT_S if kind == "timeout" else CLIENT_TIMEOUT_S)
    _check(kind, outcome, streamed=endpoint != "openai-stt")
    faulted = [r for r in server.requests_to(server.service_paths[service]) if r.fault is not None]
    assert len(faulted) == count, "the fault was taken by as many requests as it was queued for"
    # the fault was one-shot: the same request now succeeds
    again = await drive(server, CLIENT_TIMEOUT_S)
    assert again.complete, again


async def test_the_control_api_refuses_an_unknown_kind_a_bad_count_and_a_service_the_fake_lacks(
    fake_openai: FakeOpenAI, fake_deepgram: FakeDeepgram, http: aiohttp.ClientSession
) -> None:
    async with http.post(fake_openai.origin + "/sandbox/faults", json={"service": "llm", "kind": "melt"}) as answer:
        assert answer.status == 400
        assert [p["loc"] for p in (await answer.json())["problems"]] == [["kind"]]
    bad_count = {"service": "llm", "kind": "http_500", "count": 0}
    async with http.post(fake_openai.origin + "/sandbox/faults", json=bad_count) as answer:
        assert answer.status == 400
    async with http.post(fake_deepgram.origin + "/sandbox/faults", json={"service": "llm", "kind": "cut"}) as answer:
        assert answer.status == 400
        assert (await answer.json())["service"] == "llm"
    assert not fake_openai.controls.faults
    assert not fake_deepgram.controls.faults


async def test_queued_faults_are_listed_and_cleared_through_the_control_api_and_never_recorded(
    fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    assert await _queue(http, fake_openai, {"service": "tts", "kind": "http_429", "count": 3, "retry_after": 7}) == 200
    async with http.get(fake_openai.origin + "/sandbox/faults") as answer:
        [listed] = (await answer.json())["faults"]
    assert (listed["path"], listed["status"], listed["remaining"], listed["retry_after"]) == (
        "/v1/audio/speech",
        429,
        3,
        7.0,
    )
    async with http.delete(fake_openai.origin + "/sandbox/faults") as answer:
        assert answer.status == 200
    assert fake_openai.controls.faults == []
    assert fake_openai.requests == [], "control requests are not provider requests"


async def test_a_fault_for_one_service_leaves_the_others_on_the_same_fake_alone(
    fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    assert await _queue(http, fake_openai, {"service": "llm", "kind": "http_500"}) == 200
    tts = await _openai(fake_openai, CLIENT_TIMEOUT_S, _tts)
    assert tts.complete
    llm = await _openai(fake_openai, CLIENT_TIMEOUT_S, _llm)
    assert llm.status == 500


async def test_a_refused_connection_and_a_port_nobody_listens_on_raise_the_same_sdk_error(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.refuse_next(path="/v1/chat/completions")
    reset = await _openai(fake_openai, CLIENT_TIMEOUT_S, _llm)
    closed = FakeOpenAI()
    await closed.start()
    await closed.aclose()  # its port is free now: a connect there is refused by the kernel
    refused = await _openai_call(_llm, closed)
    assert reset.error == refused.error == "connection"
