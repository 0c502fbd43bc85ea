"""The caller's voice: espeak-ng speech at the microphone's rate, made before the call starts."""

from __future__ import annotations

from collections.abc import Iterable

from sandbox.caller.plan import SPOKEN, CallerError, Step

MIC_RATE = 16000


def utterance(text: str) -> bytes:
    """16-bit mono PCM of ``text`` at `MIC_RATE`. Raises `CallerError` when espeak-ng cannot speak."""
    from sandbox.providers.speech import SpeechEngineError, espeak_utterance

    try:
        return espeak_utterance(text, sample_rate=MIC_RATE)
    except (SpeechEngineError, OSError) as exc:
        raise CallerError(f"cannot synthesize spoken text: {type(exc).__name__}") from None


def utterances(steps: Iterable[Step]) -> dict[str, bytes]:
    """The speech of every spoken step, by text (each text synthesized once)."""
    return {step.text: utterance(step.text) for step in steps if step.action in SPOKEN}
