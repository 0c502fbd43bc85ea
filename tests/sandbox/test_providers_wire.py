"""Wire details of the fake providers that the plugins do not exercise: formats, validation, the CLI, Clear."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest

from sandbox.providers import FakeDeepgram, FakeOpenAI, Latency, ToolCall, speech
from sandbox.providers.audio import SUPPORTED_FORMATS, StreamEncoder, decode_audio

pytestmark = pytest.mark.slow

BEARER = {"Authorization": "Bearer sandbox"}
TOKEN = {"Authorization": "Token sandbox"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize("fmt", sorted(SUPPORTED_FORMATS - {"pcm"}))
def test_stream_encoder_output_decodes_back_to_the_same_length(
    fmt: str, provider_speech: tuple[speech.Synthesizer, speech.Transcriber]
) -> None:
    pcm = provider_speech[0].synthesize("One two three.", sample_rate=24000)
    encoder = StreamEncoder(fmt, sample_rate=24000)
    half = len(pcm) // 4 * 2
    encoded = encoder.push(pcm[:half]) + encoder.push(pcm[half:]) + encoder.finish()
    decoded = decode_audio(encoded, sample_rate=24000)
    # codecs pad with priming samples and frame remainders, never more than ~0.1 s here
    assert abs(len(decoded) - len(pcm)) / 2 / 24000 < 0.1


def test_decoded_mp3_upload_is_still_speech(provider_speech: tuple[speech.Synthesizer, speech.Transcriber]) -> None:
    synthesizer, transcriber = provider_speech
    pcm = synthesizer.synthesize("Good morning, everyone.", sample_rate=24000)
    encoder = StreamEncoder("mp3", sample_rate=24000)
    mp3 = encoder.push(pcm) + encoder.finish()
    heard = transcriber.transcribe(decode_audio(mp3, sample_rate=16000), sample_rate=16000)
    assert {"good", "morning"} <= set(heard.words)


async def test_non_streaming_chat_completion_carries_tool_calls_and_usage(
    fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    from sandbox.providers import Reply

    fake_openai.script(Reply(text="Checking.", tool_calls=(ToolCall(name="lookup", arguments={"id": 7}),)))
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "find order 7"}]}
    async with http.post(fake_openai.base_url + "/chat/completions", json=body, headers=BEARER) as response:
        completion = await response.json()
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"id": 7}
    assert completion["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"speed": 5.0}, "speed"),
        ({"response_format": "ogg"}, "response_format"),
        ({"input": ""}, "input"),
    ],
    ids=["speed", "format", "empty-input"],
)
async def test_speech_rejects_invalid_requests_like_openai(
    fake_openai: FakeOpenAI, http: aiohttp.ClientSession, change: dict[str, object], reason: str
) -> None:
    body = {"model": "tts-1", "voice": "alloy", "input": "hello", **change}
    async with http.post(fake_openai.base_url + "/audio/speech", json=body, headers=BEARER) as response:
        error = await response.json()
    assert response.status == 400
    assert error["error"]["type"] == "invalid_request_error"
    assert reason in error["error"]["message"]


async def test_chat_without_a_key_is_unauthorized(fake_openai: FakeOpenAI, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(fake_openai.base_url + "/chat/completions", json=body) as response:
        assert response.status == 401
    assert fake_openai.requests[0].auth_scheme is None


async def test_speak_websocket_clear_discards_queued_text(
    fake_deepgram: FakeDeepgram, http: aiohttp.ClientSession
) -> None:
    url = fake_deepgram.speak_url + "?model=aura-2-thalia-en&encoding=linear16&sample_rate=16000"
    async with http.ws_connect(url, headers=TOKEN) as ws:
        metadata = await ws.receive_json(timeout=10)
        await ws.send_str(json.dumps({"type": "Speak", "text": "This will be cleared. "}))
        await ws.send_str(json.dumps({"type": "Clear"}))
        cleared = await ws.receive_json(timeout=10)
        await ws.send_str(json.dumps({"type": "Speak", "text": "Hello there. "}))
        await ws.send_str(json.dumps({"type": "Flush"}))
        audio = bytearray()
        while True:
            message = await ws.receive(timeout=30)
            if message.type == aiohttp.WSMsgType.BINARY:
                audio += message.data
                continue
            flushed = json.loads(message.data)
            break
        await ws.send_str(json.dumps({"type": "Close"}))
    assert metadata["type"] == "Metadata"
    assert cleared["type"] == "Cleared"
    assert flushed == {"type": "Flushed", "sequence_id": 0}
    heard = speech.transcriber().transcribe(bytes(audio), sample_rate=16000)
    assert "hello" in heard.words
    assert "cleared" not in heard.words


@pytest.mark.parametrize("query", ["encoding=opus&sample_rate=48000", "sample_rate=fast"], ids=["opus", "malformed"])
async def test_listen_refuses_what_it_cannot_transcribe(
    fake_deepgram: FakeDeepgram, http: aiohttp.ClientSession, query: str
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await http.ws_connect(f"{fake_deepgram.listen_url}?{query}", headers=TOKEN)
    assert caught.value.status == 400


def test_fakes_refuse_a_non_loopback_address() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeOpenAI(host="0.0.0.0")


async def test_providers_command_prints_the_environment_and_serves(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "providers",
        "--openai-port",
        "0",
        "--deepgram-port",
        "0",
        "--no-preload",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        env: dict[str, str] = {}
        while len(env) < 4:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
            assert line, "the command exited before printing its environment"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value
        assert env["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")
        assert env["DEEPGRAM_BASE_URL"].startswith("http://127.0.0.1:")
        async with http.get(env["OPENAI_BASE_URL"] + "/models", headers=BEARER) as response:
            models = await response.json()
        assert "gpt-4o-mini" in [model["id"] for model in models["data"]]
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


def test_rms_of_silence_and_speech(provider_speech: tuple[speech.Synthesizer, speech.Transcriber]) -> None:
    assert speech.rms_dbfs(np.zeros(320, dtype=np.int16).tobytes()) == -120.0
    assert speech.rms_dbfs(provider_speech[0].synthesize("Hello.")) > -30.0


def test_repeated_text_is_synthesized_once(provider_speech: tuple[speech.Synthesizer, speech.Transcriber]) -> None:
    synthesizer = provider_speech[0]
    first = synthesizer.synthesize("Welcome to the sandbox.", speed=1.1, sample_rate=24000)
    assert synthesizer.synthesize("Welcome to the sandbox.", speed=1.1, sample_rate=24000) is first
    assert synthesizer.synthesize("Welcome to the sandbox.", speed=1.3, sample_rate=24000) is not first


async def test_wait_for_returns_once_the_request_arrived(fake_openai: FakeOpenAI, http: aiohttp.ClientSession) -> None:
    async def call() -> None:
        await asyncio.sleep(0.1)
        async with http.get(fake_openai.base_url + "/models", headers=BEARER) as response:
            await response.read()

    task = asyncio.create_task(call())
    async with asyncio.timeout(10):
        [request] = await fake_openai.wait_for("/v1/models")
    await task
    assert request.status == 200
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await fake_openai.wait_for("/v1/models", count=2)


def test_the_longest_matching_path_decides_the_latency() -> None:
    server = FakeOpenAI()
    server.set_latency(first_byte=0.05)
    server.set_latency(first_byte=0.1, path="/v1/audio")
    server.set_latency(first_byte=0.2, chunk_interval=0.01, path="/v1/audio/speech")
    controls = server.controls
    assert controls.latency_for("/v1/chat/completions").first_byte == 0.05
    assert controls.latency_for("/v1/audio/transcriptions").first_byte == 0.1
    assert controls.latency_for("/v1/audio/speech") == Latency(first_byte=0.2, chunk_interval=0.01)
    server.reset()
    assert controls.latency_for("/v1/audio/speech") == Latency()


async def test_a_client_leaving_mid_speech_is_recorded_as_499(
    fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    fake_openai.set_latency(chunk_interval=0.05, path="/v1/audio/speech")
    body = {"model": "tts-1", "voice": "alloy", "input": "Hello there. This is long.", "response_format": "pcm"}
    async with http.post(fake_openai.base_url + "/audio/speech", json=body, headers=BEARER) as response:
        assert await response.content.readany()
        response.close()
    async with asyncio.timeout(10):
        [request] = await fake_openai.wait_for("/v1/audio/speech", done=True)
    assert request.status == 499


async def test_a_recorded_json_request_is_never_seen_without_its_body(
    fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    # The body arrives in two parts 0.3 s apart; a test polling the list in between must not see `json` as None.
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()

    async def slowly() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(0.3)
        yield body[10:]

    async def watch() -> list[object]:
        # `wait_for` wakes as soon as the request is in the list, before the answer
        return [r.json for r in await fake_openai.wait_for("/v1/chat/completions")]

    watcher = asyncio.ensure_future(watch())
    url = f"{fake_openai.base_url}/chat/completions"
    headers = {**BEARER, "Content-Type": "application/json"}
    async with http.post(url, data=slowly(), headers=headers) as response:
        assert response.status == 200
    seen = await asyncio.wait_for(watcher, timeout=10)
    assert seen == [{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}]
