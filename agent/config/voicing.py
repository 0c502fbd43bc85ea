"""A voice that speaks the call's language: the last say on ``tts.voice`` (and, when it must, ``tts.provider``).

A voice the provider table says cannot speak the primary language (Deepgram's ``aura-2-thalia-en`` for an Arabic
call) is replaced, with ``unsupported_voice``:

1. by a voice of the same provider that speaks it: the voice table's row for the language (the gender a
   ``voice_gender`` asked for first, else female first),
   else the provider's first such voice in the table;
2. else by the process's TTS provider, then the allowed ones (``WEBCALL_ALLOWED_TTS_PROVIDERS``), the first with
   such a voice (the warning is then on ``tts.provider``);
3. else nothing can speak it: the voice stays and the warning says so.

Every candidate must be on ``WEBCALL_ALLOWED_TTS_VOICES``. Whether the deployment can reach the provider chosen in
step 2 is decided later, by the pipeline (``provider_unavailable``).
"""

from __future__ import annotations

from agent.config.draft import Draft
from agent.config.fields import Gender
from agent.config.voices import VoiceTable, voice_for
from agent.providers import tts_spec
from agent.settings import Settings


def fit_voice_to_language(draft: Draft, *, settings: Settings, voices: VoiceTable) -> None:
    """Replace a voice that cannot speak ``language.primary``, as the module docstring says."""
    language, provider = draft.text("language.primary"), draft.text("tts.provider")
    if tts_spec(provider).speaks(draft.text("tts.voice"), language):
        return
    voice = voice_speaking(provider, language, settings=settings, voices=voices, gender=draft.gender)
    if voice is not None:
        draft.warn("unsupported_voice", "tts.voice")
        _use(draft, provider, voice)
        return
    for other in dict.fromkeys((settings.tts_provider, *settings.allowed_tts_providers)):
        voice = voice_speaking(other, language, settings=settings, voices=voices, gender=draft.gender)
        if other != provider and voice is not None:
            draft.warn("unsupported_voice", "tts.provider")
            draft.set("tts.provider", other, "default")
            _use(draft, other, voice)
            return
    draft.warn("unsupported_voice", "tts.voice")


def voice_speaking(
    provider: str, language: str, *, settings: Settings, voices: VoiceTable, gender: Gender | None = None
) -> str | None:
    """An allowed voice of `provider` that speaks `language`: the voice table's (`gender` first, else female
    first), else the provider table's first."""
    spec = tts_spec(provider)
    allowed = set(settings.allowed_tts_voices)
    genders: tuple[Gender, ...] = ("male", "female") if gender == "male" else ("female", "male")
    preferred = [voice_for(voices, provider=provider, language=language, gender=g) for g in genders]
    candidates = [v for v in preferred if v] + list(spec.voices_for(language))
    return next((v for v in candidates if spec.speaks(v, language) and v in allowed), None)


def _use(draft: Draft, provider: str, voice: str) -> None:
    spec = tts_spec(provider)
    draft.set("tts.voice", voice, "default")
    if spec.model_is_voice:
        draft.set("tts.model", voice, "default")
    elif draft.text("tts.model") not in spec.models:
        draft.set("tts.model", spec.default_model, "default")
