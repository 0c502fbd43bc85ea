"""How soon a typed message's reply text reaches the caller, measured from the LLM's first token.

    python -m bench.chat_latency [--turns 20] [--ttft 0.3] [--tts-first-byte 0.15]

Runs the sandbox server in-process on 127.0.0.1, an in-process `AgentSession` started with RoomIO (a scripted
LLM streaming a 20-word reply of two sentences at one word per 20 ms, a tone TTS with the given first byte), and a
caller `rtc.Room` that types on `lk.chat` and timestamps every chunk it receives on `lk.transcription`. Both clocks
are the same `time.perf_counter` (one process). For each mode it prints p50/p95 of (first reply chunk at the
caller - the LLM's first token):

- ``voice``: the framework's behaviour for a typed message (spoken reply, transcription paced to the audio);
- ``auto``: `ChatChannel` answering a typed message in text (audio output off for the turn).

Measured here (2 cores shared with four other engineers' jobs; ``--turns 40``, defaults otherwise); "written" is
when RoomIO has written the chunk to the room (a tap at the end of its transcription chain), "at the caller" is
after the sandbox server's relay and the caller's SDK (same process and event loop):

    voice: first chunk written by the agent after LLM first token p50 696.2 ms p95 759.9 ms (mean 706.3 ms, n=40)
    voice: first chunk at the caller after LLM first token p50 697.9 ms p95 760.8 ms (mean 707.3 ms, n=40)
    auto: first chunk written by the agent after LLM first token p50 11.5 ms p95 17.6 ms (mean 12.0 ms, n=40)
    auto: first chunk at the caller after LLM first token p50 12.6 ms p95 23.5 ms (mean 14.6 ms, n=40)

An earlier run under heavier load gave ``auto`` at the caller p50 19.0 ms, p95 31.2 ms. In ``voice`` the text waits
for the first sentence, its synthesis (non-streaming TTS, 150 ms first byte) and playout to start.

Target: the LLM's first token + under 30 ms for a text reply.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import warnings
from typing import Literal

from agent.config.call_config import CallConfig, ChatConfig
from sandbox.server import running
from tests.chat.fakes import RecordingTextOutput, ScriptedLLM, ToneTTS
from tests.chat.room_harness import room_call

REPLY = "Yes, we are open today. " + " ".join(f"word{i}" for i in range(15)) + "."


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    mode: Literal["voice", "auto"], *, turns: int, ttft: float, tts_first_byte: float
) -> list[tuple[float, float]]:
    llm = ScriptedLLM(policy=lambda ctx: REPLY, ttft_s=ttft, chunk_delay_s=0.02)
    tts = ToneTTS(first_byte_s=tts_first_byte, ms_per_char=5.0)
    config = CallConfig(chat=ChatConfig(reply_mode=mode))
    delays: list[tuple[float, float]] = []
    tap = RecordingTextOutput()
    async with running(port=0) as server, room_call(server, config=config, llm=llm, tts=tts, text_tap=tap) as call:
        for turn in range(turns):
            before = len(call.reader.streams)
            await call.caller.local_participant.send_text(f"question {turn}", topic="lk.chat")
            async with asyncio.timeout(30):
                # polled: the reader's streams are filled by SDK callbacks
                while not any(s.done and s.text == REPLY for s in call.reader.streams[before:]):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await call.chat.wait_idle()
            stream = next(s for s in call.reader.streams[before:] if s.text == REPLY)
            first_token = llm.requests[-1].first_token_at
            assert first_token is not None
            written = next(seg for seg in reversed(tap.segments) if seg.text == REPLY)
            delays.append((written.chunks[0][0] - first_token, stream.chunks[0][0] - first_token))
            # let the agent finish playing out before the next question
            await asyncio.sleep(0.2)
    return delays


async def main_async(args: argparse.Namespace) -> None:
    for mode in ("voice", "auto"):
        pairs = await measure(mode, turns=args.turns, ttft=args.ttft, tts_first_byte=args.tts_first_byte)
        for where, delays in (
            ("written by the agent", [a for a, _ in pairs]),
            ("at the caller", [b for _, b in pairs]),
        ):
            print(
                f"{mode}: first chunk {where} after LLM first token "
                f"p50 {percentile(delays, 0.5) * 1000:.1f} ms p95 {percentile(delays, 0.95) * 1000:.1f} ms "
                f"(mean {statistics.mean(delays) * 1000:.1f} ms, n={len(delays)})"
            )


def main() -> None:
    # the sandbox signs tokens with livekit-server's documented dev secret, which PyJWT finds short
    warnings.filterwarnings("ignore", message="The HMAC key is")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--ttft", type=float, default=0.3, help="LLM time to first token, seconds")
    parser.add_argument("--tts-first-byte", type=float, default=0.15, help="TTS time to first audio, seconds")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
