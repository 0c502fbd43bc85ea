"""One call's provider usage for events: entries merged per provider and model, and the summary ``call.ended`` gives.

Entries are the framework's ``ModelUsage`` (``AgentSession.usage.model_usage``, plus what a call spent outside its
session, such as the welcome synthesized before it started). `usage_summary` is ``call.ended``'s ``usage``: LLM
tokens, TTS characters and audio seconds, STT audio seconds, one entry per provider/model, and ``totals``. Its cost
estimate is `agent.events.prices`.
"""

from __future__ import annotations

from collections.abc import Sequence

from livekit.agents.metrics.usage import LLMModelUsage, ModelUsage, STTModelUsage, TTSModelUsage


def merge_usage(usage: Sequence[ModelUsage]) -> list[ModelUsage]:
    """One entry per kind, provider and model, with the counts of entries that share them added up."""
    merged: dict[tuple[str, str, str], ModelUsage] = {}
    for entry in usage:
        key = (type(entry).__name__, entry.provider, entry.model)
        seen = merged.get(key)
        if seen is None:
            merged[key] = entry.model_copy()
            continue
        totals = {
            name: value + getattr(entry, name)
            for name, value in seen.model_dump().items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        merged[key] = seen.model_copy(update=totals)
    return list(merged.values())


def usage_summary(usage: Sequence[ModelUsage]) -> dict[str, object]:
    """Usage per provider/model and totals: LLM tokens, TTS characters and seconds, STT seconds."""
    llm = [u for u in usage if isinstance(u, LLMModelUsage)]
    tts = [u for u in usage if isinstance(u, TTSModelUsage)]
    stt = [u for u in usage if isinstance(u, STTModelUsage)]
    return {
        "llm": [
            {
                "provider": u.provider,
                "model": u.model,
                "input_tokens": u.input_tokens,
                "cached_input_tokens": u.input_cached_tokens,
                "output_tokens": u.output_tokens,
            }
            for u in llm
        ],
        "tts": [
            {
                "provider": u.provider,
                "model": u.model,
                "characters": u.characters_count,
                "audio_s": round(u.audio_duration, 3),
            }
            for u in tts
        ],
        "stt": [{"provider": u.provider, "model": u.model, "audio_s": round(u.audio_duration, 3)} for u in stt],
        "totals": {
            "llm_input_tokens": sum(u.input_tokens for u in llm),
            "llm_output_tokens": sum(u.output_tokens for u in llm),
            "tts_characters": sum(u.characters_count for u in tts),
            "tts_audio_s": round(sum(u.audio_duration for u in tts), 3),
            "stt_audio_s": round(sum(u.audio_duration for u in stt), 3),
        },
    }
