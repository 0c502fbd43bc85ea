"""Deciding the end of a caller's turn: Silero VAD alone against the local end-of-turn model, on paused speech.

    .venv/bin/python -m bench.endpointing [--pauses 0.6 0.9] [--min-delay 0.2] [--native-silence 0.55 0.6]

The speech is espeak-ng at 140 words per minute, 16 kHz, fed through the framework's real VAD streams (10 ms
frames, as fast as they are taken, positions read from each event's ``samples_index``):

- complete: a whole sentence, then 3.5 s of silence; the turn should end soon after the last word;
- paused: the first part of a sentence ("I would like to book an appointment for"), a pause of each ``--pauses``
  length, the rest ("next Tuesday"), then silence; a turn that ends inside the pause is a false cut-off.

Each way of deciding is replayed as `livekit.agents.voice.audio_recognition` decides (endpointing ``min_delay``
0.5 s and ``max_delay`` 3.0 s, the framework's defaults, unless given):

- ``silero-0.55``: the project's and the baseline's VAD (``silero.VAD.load``, onnxruntime, 0.55 s of silence), turn
  detection ``vad``: the turn ends at the VAD's end of speech, no sooner than ``min_delay`` after the last speech;
- ``native-0.55``: the same with the framework's native VAD (``inference.VAD``, `livekit.local_inference`), one way
  per ``--native-silence`` value (its ``min_silence_duration``);
- ``eot``: the native VAD at its own 0.25 s and the local audio end-of-turn model (``EOT.predict`` over the last
  1.2 s, asked once 0.2 s of silence have passed, as the framework asks it): a probability at or above the English
  threshold (0.36) ends the turn ``--min-delay`` after the last speech, below it the turn waits for ``max_delay``
  (or for more speech);

and prints, per way: false cut-offs on the paused set, missed ends (no end within 3.5 s) and the median and p95
delay from the last word to the decision on the complete set, and the CPU each VAD took per second of audio and
each EOT prediction took.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from livekit import rtc
from livekit.agents import inference, vad
from livekit.local_inference import EOT, EOT_MAX_SAMPLES
from livekit.plugins import silero

from sandbox.providers import speech

RATE = 16000
FRAME = RATE // 100
TAIL_S = 3.5
MAX_DELAY = 3.0
EOT_THRESHOLD = 0.36  # the framework's LOCAL_LANGUAGES["en"] for turn-detector-v1-mini
EOT_AFTER_SILENCE = 0.2  # MIN_SILENCE_DURATION_MS
COMPLETE = (
    "I would like to book a table for four tonight.",
    "What time do you open tomorrow morning?",
    "Can I bring my dog to the terrace?",
    "Please put the booking under the name Smith.",
    "Do you have anything vegetarian on the menu?",
    "My order number is four five six seven.",
    "I need to change the delivery address.",
    "Thank you, that is all for today.",
)
PAUSED = (
    ("I would like to book an appointment for", "next Tuesday."),
    ("My name is", "John Smith."),
    ("Can you send it to", "my office address?"),
    ("I want to order two", "large pizzas."),
    ("The problem started when", "I updated the app."),
    ("I was wondering if", "you are open on Sunday."),
)


@dataclass(frozen=True)
class Clip:
    pcm: np.ndarray  # int16
    speech_ends: tuple[float, ...]  # seconds: where each voiced part ends
    resumes_at: float | None  # seconds: where speech starts again after the pause (paused clips)


VOICE = {"voice": "espeak"}


def _speak(text: str) -> bytes:
    if VOICE["voice"] == "piper":
        return speech.synthesizer().synthesize(text, sample_rate=RATE)
    return speech.espeak_utterance(text, sample_rate=RATE)


def _voiced(text: str) -> np.ndarray:
    samples = np.frombuffer(_speak(text), dtype=np.int16)
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > 500)[0]
    return samples[: int(loud[-1]) + 1] if loud.size else samples


def complete_clip(text: str) -> Clip:
    voice = _voiced(text)
    return Clip(np.concatenate([voice, np.zeros(int(RATE * TAIL_S), np.int16)]), (len(voice) / RATE,), None)


def paused_clip(first: str, rest: str, *, pause: float) -> Clip:
    one, two = _voiced(first), _voiced(rest)
    gap = np.zeros(int(RATE * pause), np.int16)
    pcm = np.concatenate([one, gap, two, np.zeros(int(RATE * TAIL_S), np.int16)])
    return Clip(pcm, (len(one) / RATE, (len(one) + len(gap) + len(two)) / RATE), (len(one) + len(gap)) / RATE)


@dataclass(frozen=True)
class Segment:
    """One VAD speech segment: where the speech ended and where the VAD said so (seconds of audio)."""

    speech_end: float
    reported_at: float


async def vad_segments(model: vad.VAD, clip: Clip) -> tuple[list[Segment], list[float], float]:
    """The END_OF_SPEECH events, the moments silence first reached 0.2 s in each segment, and the CPU used."""
    stream = model.stream()
    cpu = time.process_time()
    for start in range(0, len(clip.pcm), FRAME):
        chunk = clip.pcm[start : start + FRAME]
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))
    stream.end_input()
    segments: list[Segment] = []
    asks: list[float] = []
    speaking = False
    async for event in stream:
        at = event.samples_index / RATE
        if event.type == vad.VADEventType.START_OF_SPEECH:
            speaking, asked = True, False
        elif event.type == vad.VADEventType.INFERENCE_DONE and speaking and not asked:
            if event.raw_accumulated_silence >= EOT_AFTER_SILENCE:
                asks.append(at)
                asked = True
        elif event.type == vad.VADEventType.END_OF_SPEECH:
            speaking = False
            segments.append(Segment(speech_end=at - event.silence_duration, reported_at=at))
    used = time.process_time() - cpu
    await stream.aclose()
    return segments, asks, used


def vad_decision(segments: Sequence[Segment], *, min_delay: float) -> float | None:
    """Turn detection ``vad``: the first segment end commits the turn."""
    if not segments:
        return None
    first = segments[0]
    return max(first.reported_at, first.speech_end + min_delay)


def eot_decision(
    segments: Sequence[Segment], probabilities: Sequence[float], *, min_delay: float, clip: Clip
) -> float | None:
    """The end-of-turn model: likely ends commit ``min_delay`` after the speech, unlikely ones wait ``max_delay``."""
    for segment, probability in zip(segments, probabilities, strict=False):
        delay = min_delay if probability >= EOT_THRESHOLD else MAX_DELAY
        decided = max(segment.reported_at, segment.speech_end + delay)
        resumed = clip.resumes_at is not None and segment.speech_end < clip.resumes_at < decided
        if not resumed:
            return decided
    return None


@dataclass
class Tally:
    cutoffs: int = 0
    missed: int = 0
    paused: int = 0
    delays: list[float] | None = None

    def __post_init__(self) -> None:
        self.delays = []


def judge(tally: Tally, clip: Clip, decided: float | None) -> None:
    assert tally.delays is not None
    if clip.resumes_at is not None:
        tally.paused += 1
        if decided is not None and decided < clip.resumes_at:
            tally.cutoffs += 1
            return
    last = clip.speech_ends[-1]
    if decided is None or decided - last > TAIL_S:
        tally.missed += 1
    elif clip.resumes_at is None:
        tally.delays.append(decided - last)


async def evaluate(args: argparse.Namespace) -> None:
    VOICE["voice"] = args.voice
    clips = [complete_clip(text) for text in COMPLETE]
    clips += [paused_clip(a, b, pause=p) for p in args.pauses for a, b in PAUSED]
    models: dict[str, vad.VAD] = {
        "silero-0.55": silero.VAD.load(min_silence_duration=0.55),
        **{f"native-{s:.2f}": inference.VAD(min_silence_duration=s) for s in args.native_silence},
        "native-0.25": inference.VAD(),
    }
    vad_ways = ["silero-0.55", *(f"native-{s:.2f}" for s in args.native_silence)]
    eot = EOT()
    tallies = {name: Tally() for name in (*vad_ways, "eot")}
    vad_cpu: dict[str, float] = dict.fromkeys(models, 0.0)
    eot_cpu: list[float] = []
    probabilities: dict[str, list[float]] = {"complete": [], "paused": []}
    audio_s = sum(len(c.pcm) for c in clips) / RATE
    for clip in clips:
        found = {}
        for name, model in models.items():
            segments, asks, used = await vad_segments(model, clip)
            vad_cpu[name] += used
            found[name] = (segments, asks)
        for name in vad_ways:
            judge(tallies[name], clip, vad_decision(found[name][0], min_delay=0.5))
        segments, asks = found["native-0.25"]
        probs = []
        for ask in asks:
            end = int(ask * RATE)
            window = clip.pcm[max(0, end - EOT_MAX_SAMPLES) : end]
            began = time.process_time()
            probs.append(float(eot.predict(np.ascontiguousarray(window))))
            eot_cpu.append(time.process_time() - began)
        if probs:
            probabilities["paused" if clip.resumes_at is not None else "complete"].append(probs[0])
        judge(tallies["eot"], clip, eot_decision(segments, probs, min_delay=args.min_delay, clip=clip))
    print(f"{len(COMPLETE)} complete sentences, {len(PAUSED)} paused ones x pauses {args.pauses} s")
    print(f"{'way':<14}{'cut-offs':>10}{'missed':>8}{'delay p50':>11}{'delay p95':>11}")
    for name, tally in tallies.items():
        delays = sorted(tally.delays or [0.0])
        p95 = delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))]
        print(
            f"{name:<14}{tally.cutoffs:>5}/{tally.paused:<4}{tally.missed:>8}"
            f"{statistics.median(delays):>10.3f}s{p95:>10.3f}s"
        )
    for name, used in vad_cpu.items():
        print(f"VAD {name}: {used / audio_s * 1000:.2f} ms CPU per second of audio")
    print(f"EOT: {statistics.median(eot_cpu) * 1000:.0f} ms CPU per prediction (median of {len(eot_cpu)})")
    for kind, values in probabilities.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"EOT probability at the first 0.2 s of silence, {kind}: {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m bench.endpointing", description=__doc__)
    cli.add_argument("--pauses", type=float, nargs="*", default=[0.6, 0.9])
    cli.add_argument("--voice", choices=["espeak", "piper"], default="espeak", help="who speaks the sentences")
    cli.add_argument("--min-delay", type=float, default=0.2, help="endpointing min_delay with the EOT model")
    cli.add_argument(
        "--native-silence", type=float, nargs="*", default=[0.55], help="native VAD min_silence_duration(s) to try"
    )
    asyncio.run(evaluate(cli.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
