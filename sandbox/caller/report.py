"""The report of one call: what the caller got, as the JSON object ``python -m sandbox call`` prints.

``summary`` gives ``ok`` (a welcome heard or read within the timeout), ``welcome`` (its text and first audio/text
times, compared with an expected text when the plan has one), ``agent`` (identity, join time, attributes, state
changes), ``transcript`` (every segment in arrival order) and ``audio`` (the agent's tracks; the recorded WAV).
"""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

from sandbox.caller.participant import LISTEN_RATE, LiveCall
from sandbox.caller.plan import CallPlan


def summary(call: LiveCall, plan: CallPlan) -> dict[str, Any]:
    first_audio = call.first_audio_s()
    agent_text = call.agent_segments()
    welcome_text = agent_text[0].text.strip() if agent_text else None
    in_time = [t for t in (first_audio, agent_text[0].at_s if agent_text else None) if t is not None]
    ok = bool(in_time) and min(in_time) <= plan.timeout_s
    welcome: dict[str, Any] = {
        "text": welcome_text,
        "first_audio_s": first_audio,
        "first_text_s": agent_text[0].at_s if agent_text else None,
    }
    if plan.expected_welcome is not None:
        welcome["expected"] = plan.expected_welcome
        welcome["as_expected"] = _words(welcome_text or "") == _words(plan.expected_welcome)
    return {
        "ok": ok,
        "welcome": welcome,
        "agent": {
            "identity": call.agent_identity,
            "joined_s": call.agent_joined_s,
            "attributes": call.agent_attributes(),
            "states": call.agent_states,
        },
        "transcript": [
            {"speaker": s.speaker, "topic": s.topic, "text": s.text, "at_s": s.at_s, "final": s.final}
            for s in sorted(call.segments.values(), key=lambda s: s.at_s)
        ],
        "audio": _audio(call, plan.record),
    }


def _words(text: str) -> str:
    return " ".join(text.split())


def _audio(call: LiveCall, record: Path | None) -> dict[str, Any]:
    tracks = [
        {
            "name": t.name,
            "frames": t.frames,
            "first_frame_s": t.first_frame_s,
            "audible_s": round(t.audible_s, 3),
            "first_audio_s": t.first_audio_s,
            "peak_dbfs": round(20 * math.log10(t.peak / 32768), 1) if t.peak else None,
        }
        for t in call.tracks.values()
    ]
    audio: dict[str, Any] = {"tracks": tracks}
    if record is not None:
        pcm = b"".join(chunk for t in call.voice_tracks() for chunk in t.pcm)
        write_wav(record, pcm)
        audio["record"] = str(record)
        audio["record_s"] = round(len(pcm) / 2 / LISTEN_RATE, 3)
    return audio


def write_wav(path: Path, pcm: bytes) -> None:
    """16-bit mono WAV at the caller's listening rate; frames in the order they were received."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(LISTEN_RATE)
        out.writeframes(pcm)
