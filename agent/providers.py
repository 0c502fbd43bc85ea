"""The provider table: what each STT, TTS and LLM provider offers, as plain data (no LiveKit import).

Normalization (`agent.config.normalize`), the settings' allowlist defaults (`agent.settings`), the pipeline
(`agent.pipeline`) and mid-call changes (`agent.conversation`) all read this one table: models, voices, the
languages each voice speaks and each STT model hears, the speed range, the defaults, whether the TTS model is the
voice, and which option a mid-call voice change sets.

Languages are base ISO 639 codes (``pt`` for ``pt-BR``); ``None`` means "any language". The Deepgram lists are
Deepgram's documented ones (Aura-2 voices per language, Nova-3 and Nova-2 languages, as of 2026). A Deepgram voice
not listed that follows Deepgram's naming (``aura-2-<name>-<language>``) is accepted when it is on
``WEBCALL_ALLOWED_TTS_VOICES``; the default allowlist is the table's voices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

SttProvider = Literal["deepgram", "openai", "whisper"]
TtsProvider = Literal["openai", "deepgram", "piper"]
LlmProvider = Literal["openai"]
# The three roles of a call's pipeline.
Role = Literal["stt", "llm", "tts"]
Languages = frozenset[str] | None


@dataclass(frozen=True, kw_only=True)
class SttSpec:
    """One speech-to-text provider."""

    # Model -> the base languages it hears (None: any).
    models: Mapping[str, Languages]
    default_model: str
    # Models with a code-switching mode (Deepgram ``multi``) and the languages it hears together.
    multi_models: frozenset[str] = frozenset()
    multi_languages: frozenset[str] = frozenset()
    # The model detects the language itself when two must be heard (OpenAI).
    detects_language: bool = False
    offline: bool = False

    def hears(self, model: str, language: str) -> bool:
        languages = self.models.get(model, frozenset())
        return languages is None or base_language(language) in languages


@dataclass(frozen=True, kw_only=True)
class TtsSpec:
    """One text-to-speech provider."""

    # Voice -> the base languages it speaks (None: any).
    voices: Mapping[str, Languages]
    default_voice: str
    # Models other than the voice; empty when the model *is* the voice (Deepgram, piper).
    models: frozenset[str]
    default_model: str
    speed: tuple[float, float]
    # The ``update_options`` keyword a mid-call voice change sets on the built TTS (``speed`` is always set too).
    voice_option: Literal["voice", "model"]
    # Voices beyond the table that follow the provider's naming; the group ``language`` is the one they speak.
    voice_pattern: re.Pattern[str] | None = None
    offline: bool = False

    @property
    def model_is_voice(self) -> bool:
        return not self.models

    def has(self, voice: str) -> bool:
        return voice in self.voices or bool(self.voice_pattern and self.voice_pattern.fullmatch(voice))

    def speaks(self, voice: str, language: str) -> bool:
        if voice in self.voices:
            languages = self.voices[voice]
            return languages is None or base_language(language) in languages
        named = self.voice_pattern.fullmatch(voice) if self.voice_pattern else None
        return named is not None and named["language"] == base_language(language)

    def voices_for(self, language: str) -> tuple[str, ...]:
        """The voices that speak `language`, in table order."""
        return tuple(voice for voice in self.voices if self.speaks(voice, language))

    def voice_for_language(self, language: str) -> str:
        """The first voice that speaks `language`, else the default voice."""
        return next(iter(self.voices_for(language)), self.default_voice)

    def clamp(self, speed: float) -> float:
        return min(max(speed, self.speed[0]), self.speed[1])


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def base_language(code: str) -> str:
    """``pt-BR`` -> ``pt``. For an STT language, ``multi`` (two languages heard together) -> ``en``."""
    base = code.split("-")[0].lower()
    return "en" if base == "multi" else base


_NOVA_3: Final = _words(
    "en es fr de it pt nl sv da no fi tr id bg cs hi hu ja ko pl ru uk vi ca et el lv lt ms ro sk be bn"
    " bs hr kn mk mr sr sl ta tl te zh th he fa ur"
)
_NOVA_2: Final = _words(
    "bg ca zh cs da nl en et fi fr de el hi hu id it ja ko lv lt ms no pl pt ro ru sk es sv th tr uk vi"
)
_AURA_2: Final[dict[str, str]] = {
    "en": "thalia andromeda helena apollo arcas aries amalthea asteria athena atlas aurora callista cora cordelia"
    " delia draco electra harmonia hera hermes hyperion iris janus juno jupiter luna mars minerva neptune odysseus"
    " ophelia orion orpheus pandora phoebe pluto saturn selene theia vesta zeus",
    "es": "celeste estrella nestor sirio carina alvaro diana aquila selena javier agustina antonia",
    "fr": "agathe",
    "de": "aurelia elara",
    "nl": "beatrix cornelia daphne",
    "it": "cesare cinzia demetra dionisio",
    "ja": "ama ebisu",
}
_AURA_1_EN: Final = "asteria luna stella athena hera orion arcas perseus angus orpheus helios zeus"
_OPENAI_VOICES: Final = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


def _deepgram_voices() -> dict[str, Languages]:
    voices: dict[str, Languages] = {
        f"aura-2-{name}-{language}": frozenset({language})
        for language, names in _AURA_2.items()
        for name in names.split()
    }
    voices.update({f"aura-{name}-en": frozenset({"en"}) for name in _AURA_1_EN.split()})
    return voices


STT: Final[Mapping[SttProvider, SttSpec]] = {
    "deepgram": SttSpec(
        models={
            **dict.fromkeys(("nova-3", "nova-3-general"), _NOVA_3),
            "nova-3-medical": frozenset({"en"}),
            **dict.fromkeys(("nova-2", "nova-2-general"), _NOVA_2),
            **dict.fromkeys(("nova-2-meeting", "nova-2-phonecall", "nova-2-conversationalai"), frozenset({"en"})),
        },
        default_model="nova-3",
        multi_models=frozenset({"nova-3", "nova-3-general"}),
        multi_languages=frozenset({"en", "es", "fr", "de", "hi", "ru", "pt", "ja", "it", "nl"}),
    ),
    "openai": SttSpec(
        models=dict.fromkeys(("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1"), None),
        default_model="gpt-4o-mini-transcribe",
        detects_language=True,
    ),
    # The offline model bundled with the `offline` extra; it hears English only.
    "whisper": SttSpec(models={"tiny.en": frozenset({"en"})}, default_model="tiny.en", offline=True),
}

TTS: Final[Mapping[TtsProvider, TtsSpec]] = {
    "openai": TtsSpec(
        voices=dict.fromkeys(_OPENAI_VOICES, None),
        default_voice="alloy",
        models=frozenset({"gpt-4o-mini-tts", "tts-1", "tts-1-hd"}),
        default_model="gpt-4o-mini-tts",
        speed=(0.25, 4.0),
        voice_option="voice",
    ),
    "deepgram": TtsSpec(
        voices=_deepgram_voices(),
        default_voice="aura-2-thalia-en",
        models=frozenset(),
        default_model="aura-2-thalia-en",
        speed=(0.7, 1.5),
        voice_option="model",
        # Deepgram names its voices model-name-language: ``aura-2-hector-fr``, ``aura-luna-en``.
        voice_pattern=re.compile(r"aura(?:-2)?-[a-z]+-(?P<language>[a-z]{2})"),
    ),
    # The one bundled offline voice. `PiperTTS` takes this range too (speed divides its phoneme length scale).
    "piper": TtsSpec(
        voices={"en_US-joe-medium": frozenset({"en"})},
        default_voice="en_US-joe-medium",
        models=frozenset(),
        default_model="en_US-joe-medium",
        speed=(0.25, 4.0),
        voice_option="voice",
        offline=True,
    ),
}

LLM_MODELS: Final[Mapping[LlmProvider, tuple[str, ...]]] = {
    "openai": ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"),
}

# What metadata may choose when the deployment names no allowlist: the cloud providers. The offline ones (whisper,
# piper: about 0.3 CPU and 0.4 GiB per call) only when the deployment runs them itself or allows them.
DEFAULT_ALLOWED_STT: Final[tuple[SttProvider, ...]] = ("deepgram", "openai")
DEFAULT_ALLOWED_TTS: Final[tuple[TtsProvider, ...]] = ("openai", "deepgram")
# The order in which fallbacks are tried after the call's own provider.
CLOUD_STT: Final[tuple[SttProvider, ...]] = tuple(p for p, spec in STT.items() if not spec.offline)
CLOUD_TTS: Final[tuple[TtsProvider, ...]] = tuple(p for p, spec in TTS.items() if not spec.offline)


def stt_spec(provider: str) -> SttSpec:
    """The table row of an STT provider named by a validated config (KeyError for any other name)."""
    return STT[provider]  # type: ignore[index]


def tts_spec(provider: str) -> TtsSpec:
    """The table row of a TTS provider named by a validated config (KeyError for any other name)."""
    return TTS[provider]  # type: ignore[index]


def all_voices() -> tuple[str, ...]:
    """Every voice of every TTS provider in the table."""
    return tuple(voice for spec in TTS.values() for voice in spec.voices)


def all_stt_models() -> tuple[str, ...]:
    """Every model of every STT provider in the table."""
    return tuple(model for spec in STT.values() for model in spec.models)


def all_tts_models() -> tuple[str, ...]:
    """Every model of every TTS provider in the table whose model is not its voice (for those, the voice is the
    model and the voice allowlist decides)."""
    return tuple(model for spec in TTS.values() for model in sorted(spec.models))
