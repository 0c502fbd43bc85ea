"""Latency of the fake providers' real speech (piper TTS, whisper STT) on this machine, over loopback HTTP/websocket.

Run: ``.venv/bin/python -m bench.providers [--runs 10]``. Prints the median and max of each measurement:

- TTS time to first byte for one sentence (61 characters), measured at the client from request sent to first body
  byte: OpenAI ``/v1/audio/speech`` with ``response_format=pcm`` and with ``mp3`` over SSE, and Deepgram
  ``POST /v1/speak``. The fakes synthesize sentence by sentence, so this is piper's time for the first sentence
  (plus encoding). ``set_latency(first_byte=...)`` adds to it.
- STT latency for a 2.0 s espeak utterance: OpenAI ``/v1/audio/transcriptions`` (upload to JSON), and Deepgram's
  streaming ``/v1/listen`` from the last audio byte (utterance plus 0.4 s of silence, enough to endpoint) to the
  ``speech_final`` result (whisper tiny.en int8 on 2 threads).

Measured 2026-11-21 on the 2-vCPU box, 10 runs after a warm-up, models preloaded. The box was shared with other
test runs, and the numbers move with that load (column heads: 1-minute load average during the run):

    run                       load 1.2                  load 2.7-3.7
    openai tts pcm ttfb      median 0.234 s  max 0.544   median 0.533 s  max 0.656
    openai tts mp3/sse ttfb  median 0.221 s  max 0.275   median 0.760 s  max 1.000
    deepgram speak ttfb      median 0.178 s  max 0.361   median 0.799 s  max 1.246
    openai stt 2.0 s         median 0.447 s  max 0.990   median 1.124 s  max 1.622
    deepgram listen 2.0 s    median 0.412 s  max 0.586   median 0.599 s  max 0.611

The plugin rows (added 2026-11-22, load 0.7) time ``livekit.plugins.openai.TTS`` to its first audio frame with the
sentence cached by the fake and a 100 ms first byte: ``pcm`` median 0.107 s (max 0.109), ``mp3`` median 0.135 s (max
0.147; 0.141-0.200 s for a fresh process's first request). The worker asks for ``pcm`` (``WEBCALL_OPENAI_TTS_FORMAT``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import numpy as np
from livekit.plugins import openai as lk_openai
from openai import AsyncOpenAI

from sandbox.providers import FakeDeepgram, FakeOpenAI, speech

SENTENCE = "Thanks for calling, how can I help you with your order today?"
UTTERANCE = "Please send the invoice to my office."
RATE = 16000
AUTH_OPENAI = {"Authorization": "Bearer bench"}
AUTH_DEEPGRAM = {"Authorization": "Token bench"}


def _two_seconds() -> bytes:
    pcm = speech.espeak_utterance(UTTERANCE, sample_rate=RATE, words_per_minute=185)
    target = 2 * RATE * 2
    return (pcm + bytes(target))[:target]


def _wav(pcm: bytes) -> bytes:
    header = b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + RATE.to_bytes(4, "little")
    header += (RATE * 2).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    return header + b"data" + len(pcm).to_bytes(4, "little") + pcm


async def _ttfb(http: aiohttp.ClientSession, url: str, *, body: dict[str, object], headers: dict[str, str]) -> float:
    start = time.perf_counter()
    async with http.post(url, json=body, headers=headers) as response:
        response.raise_for_status()
        await response.content.readany()
        elapsed = time.perf_counter() - start
        await response.read()
    return elapsed


async def _openai_stt(http: aiohttp.ClientSession, url: str, *, wav: bytes) -> float:
    form = aiohttp.FormData()
    form.add_field("file", wav, filename="utterance.wav", content_type="audio/wav")
    form.add_field("model", "whisper-1")
    start = time.perf_counter()
    async with http.post(url, data=form, headers=AUTH_OPENAI) as response:
        response.raise_for_status()
        await response.json()
    return time.perf_counter() - start


async def _deepgram_listen(http: aiohttp.ClientSession, url: str, *, pcm: bytes) -> float:
    query = "?encoding=linear16&sample_rate=16000&interim_results=false&endpointing=300&vad_events=false"
    async with http.ws_connect(url + query, headers=AUTH_DEEPGRAM) as ws:
        await ws.send_bytes(pcm + np.zeros(int(RATE * 0.4), dtype=np.int16).tobytes())
        start = time.perf_counter()
        while True:
            message = await ws.receive_json(timeout=30)
            if message.get("speech_final"):
                elapsed = time.perf_counter() - start
                break
        await ws.send_str('{"type": "CloseStream"}')
    return elapsed


async def _plugin_first_frame(tts: lk_openai.TTS) -> float:
    start = time.perf_counter()
    async with tts.synthesize(SENTENCE) as stream:
        async for _ in stream:
            elapsed = time.perf_counter() - start
            break
    return elapsed


async def _measure(label: str, probe: Callable[[], Awaitable[float]], *, runs: int) -> None:
    await probe()  # warm-up: connection pool, first inference
    samples = [await probe() for _ in range(runs)]
    print(f"{label:<24} median {statistics.median(samples):.3f} s  max {max(samples):.3f} s")


async def run(runs: int) -> None:
    synthesizer, _ = speech.load_all()
    # measure synthesis, not the fakes' cache of repeated sentences
    synthesizer.cache_size = 0
    pcm = _two_seconds()
    wav = _wav(pcm)
    tts_body: dict[str, object] = {"model": "tts-1", "voice": "alloy", "input": SENTENCE}
    async with FakeOpenAI() as openai, FakeDeepgram() as deepgram, aiohttp.ClientSession() as http:
        speech_url = openai.base_url + "/audio/speech"
        pcm_body = {**tts_body, "response_format": "pcm"}
        sse_body = {**tts_body, "model": "gpt-4o-mini-tts", "response_format": "mp3", "stream_format": "sse"}
        speak_url = deepgram.speak_url + "?model=aura-2-thalia-en&encoding=linear16&container=none&sample_rate=24000"
        transcriptions = openai.base_url + "/audio/transcriptions"
        probes: list[tuple[str, Callable[[], Awaitable[float]]]] = [
            ("openai tts pcm ttfb", lambda: _ttfb(http, speech_url, body=pcm_body, headers=AUTH_OPENAI)),
            ("openai tts mp3/sse ttfb", lambda: _ttfb(http, speech_url, body=sse_body, headers=AUTH_OPENAI)),
            ("deepgram speak ttfb", lambda: _ttfb(http, speak_url, body={"text": SENTENCE}, headers=AUTH_DEEPGRAM)),
            ("openai stt 2.0 s", lambda: _openai_stt(http, transcriptions, wav=wav)),
            ("deepgram listen 2.0 s", lambda: _deepgram_listen(http, deepgram.listen_url, pcm=pcm)),
        ]
        for label, probe in probes:
            await _measure(label, probe, runs=runs)

        # What the worker's OpenAI TTS (the livekit plugin) hands on: time to its first audio frame, by response
        # format, the sentence cached by the fake and its first byte held back 100 ms.
        synthesizer.cache_size = 256
        openai.set_latency(first_byte=0.1)
        client = AsyncOpenAI(api_key="bench", base_url=openai.base_url)
        for fmt in ("pcm", "mp3"):
            tts = lk_openai.TTS(client=client, response_format=fmt)
            await _measure(f"plugin {fmt} first frame", functools.partial(_plugin_first_frame, tts), runs=runs)
            await tts.aclose()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.providers", description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    asyncio.run(run(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
