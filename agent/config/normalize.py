"""Merged fields -> values the chosen providers accept. Runs once, after precedence has picked every field.

Each step reads and rewrites a `Draft`: the merged fields with their sources, and the *base* (built-in defaults
plus profiles) that a refused value falls back to. In order:

1. languages: a code like ``en`` / ``pt-BR`` (``_`` accepted, case fixed); anything else -> ``invalid_value`` and
   the profile's. A secondary with the primary's base language is dropped.
2. ``tts.voice_gender`` -> a voice from the voice table for the final TTS provider and primary language.
3. allowlists: ``llm.model`` and ``tts.voice`` set by metadata or the caller must be on
   ``WEBCALL_ALLOWED_LLM_MODELS`` / ``WEBCALL_ALLOWED_TTS_VOICES``, else ``not_allowed`` and the profile's value.
   Profiles are configuration and are not checked.
4. provider fit: an STT model, TTS model or voice the provider does not have -> the profile's value if it fits,
   else the provider's default; ``invalid_value`` when the misfit came from metadata or the caller (a default or a
   profile meeting a provider chosen by settings is not reported). Deepgram's and piper's TTS model *is* the voice.
5. ranges, ``clamped``: ``llm.temperature`` 0-2; ``tts.speed`` per provider (OpenAI 0.25-4.0, Deepgram 0.7-1.5,
   piper 0.5-2.0); ``ambience.volume`` 0-1.
6. ``stt.language``: see `stt_language`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from agent.config.call_config import SOURCES_BY_PRECEDENCE, ConfigWarning, Source, WarningCode
from agent.config.diagnostics import warn
from agent.config.fields import VoiceByGender
from agent.config.voices import VoiceTable, voice_for
from agent.settings import Settings

TRUSTED_AS_CONFIG: Final[frozenset[Source]] = frozenset({"default", "profile"})
# Deepgram nova-3 "multi" (code-switching) hears any mix of these languages.
DEEPGRAM_MULTI_LANGUAGES: Final = frozenset({"en", "es", "fr", "de", "hi", "ru", "pt", "ja", "it", "nl"})
OPENAI_VOICES: Final = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"}
)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    default: str
    fits: Callable[[str], bool]
    speed: tuple[float, float] = (0.0, 0.0)
    model_is_voice: bool = False


STT_MODELS: Final[dict[str, ProviderSpec]] = {
    "deepgram": ProviderSpec(default="nova-3", fits=lambda m: m.startswith("nova-")),
    "openai": ProviderSpec(
        default="gpt-4o-mini-transcribe",
        fits=lambda m: m in {"gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1"},
    ),
    # The offline model bundled with the `offline` extra; it hears English only.
    "whisper": ProviderSpec(default="tiny.en", fits=lambda m: m == "tiny.en"),
}
TTS_VOICES: Final[dict[str, ProviderSpec]] = {
    "openai": ProviderSpec(default="alloy", fits=OPENAI_VOICES.__contains__, speed=(0.25, 4.0)),
    "deepgram": ProviderSpec(
        default="aura-2-thalia-en", fits=lambda v: v.startswith("aura-"), speed=(0.7, 1.5), model_is_voice=True
    ),
    "piper": ProviderSpec(
        default="en_US-joe-medium", fits=lambda v: v == "en_US-joe-medium", speed=(0.5, 2.0), model_is_voice=True
    ),
}
OPENAI_TTS_MODELS: Final = ProviderSpec(
    default="gpt-4o-mini-tts", fits=lambda m: m in {"gpt-4o-mini-tts", "tts-1", "tts-1-hd"}
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One field's value and the source that set it."""

    value: object
    source: Source


@dataclass
class Draft:
    """Merged fields and the base they fall back to, both as dotted field -> `Entry`."""

    fields: dict[str, Entry]
    base: dict[str, Entry]
    warnings: list[ConfigWarning] = field(default_factory=list)

    def value(self, path: str) -> object:
        return self.fields[path].value

    def text(self, path: str) -> str:
        return str(self.fields[path].value)

    def source(self, path: str) -> Source:
        return self.fields[path].source

    def set(self, path: str, value: object, source: Source | None = None) -> None:
        self.fields[path] = Entry(value, self.source(path) if source is None else source)

    def fall_back(self, path: str) -> None:
        self.fields[path] = self.base[path]

    def refuse(self, path: str, code: WarningCode = "invalid_value") -> None:
        """Warn (unless the refused value is a built-in default) and fall back to the base value."""
        if self.source(path) != "default":
            self.warnings.append(warn(code, path, source=self.source(path)))
        self.fall_back(path)


def normalize(draft: Draft, *, settings: Settings, voices: VoiceTable) -> None:
    """Apply steps 1-6 of the module docstring to `draft`, in place."""
    _languages(draft)
    _voice_by_gender(draft, voices)
    _allowlist(draft, "llm.model", settings.allowed_llm_models)
    _allowlist(draft, "tts.voice", settings.allowed_tts_voices)
    _fit_stt_model(draft)
    _fit_tts(draft)
    _clamp(draft, "llm.temperature", (0.0, 2.0))
    _clamp(draft, "tts.speed", TTS_VOICES[draft.text("tts.provider")].speed)
    _clamp(draft, "ambience.volume", (0.0, 1.0))
    _stt_language(draft)


def language_code(value: object) -> str | None:
    """``en``, ``pt-BR``, ``zh-Hant``: a normalized language code, or None when `value` is not one."""
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value.strip()):
        return None
    first, *rest = re.split(r"[-_]", value.strip())
    tail = [p.upper() if len(p) == 2 and p.isalpha() else p.title() if len(p) == 4 else p.lower() for p in rest]
    return "-".join([first.lower(), *tail])


def _languages(draft: Draft) -> None:
    for view in (draft.base, draft.fields):
        for path in ("language.primary", "language.secondary"):
            value, source = view[path].value, view[path].source
            code = language_code(value)
            if value is None and path == "language.secondary":
                continue
            if code is not None:
                view[path] = Entry(code, source)
            elif view is draft.base:
                draft.warnings.append(warn("invalid_value", path, source=source))
                view[path] = Entry("en" if path == "language.primary" else None, "default")
            else:
                draft.refuse(path)
    secondary = draft.value("language.secondary")
    if isinstance(secondary, str) and _base(secondary) == _base(draft.text("language.primary")):
        draft.set("language.secondary", None)


def _voice_by_gender(draft: Draft, voices: VoiceTable) -> None:
    provider, language = draft.text("tts.provider"), draft.text("language.primary")
    for view in (draft.base, draft.fields):
        value, source = view["tts.voice"].value, view["tts.voice"].source
        if isinstance(value, VoiceByGender):
            voice = voice_for(voices, provider=provider, language=language, gender=value.gender)
            fallback = (
                draft.base["tts.voice"] if view is draft.fields else Entry(TTS_VOICES[provider].default, "default")
            )
            view["tts.voice"] = Entry(voice, source) if voice else fallback


def _allowlist(draft: Draft, path: str, allowed: Iterable[str]) -> None:
    if draft.source(path) not in TRUSTED_AS_CONFIG and draft.value(path) not in set(allowed):
        draft.refuse(path, "not_allowed")


def _fit_stt_model(draft: Draft) -> None:
    _fit(draft, "stt.model", STT_MODELS[draft.text("stt.provider")])


def _fit_tts(draft: Draft) -> None:
    spec = TTS_VOICES[draft.text("tts.provider")]
    _fit(draft, "tts.voice", spec)
    if spec.model_is_voice:
        draft.fields["tts.model"] = draft.fields["tts.voice"]
    else:
        _fit(draft, "tts.model", OPENAI_TTS_MODELS)


def _fit(draft: Draft, path: str, spec: ProviderSpec) -> None:
    """A value the provider does not have -> the base value if it fits, else the provider's default.

    Only values from metadata or the caller are reported: a built-in default or a profile written for another
    provider meeting the deployment's provider is configuration, and the provider's default is the expected result.
    """
    if spec.fits(draft.text(path)):
        return
    if draft.source(path) not in TRUSTED_AS_CONFIG:
        draft.warnings.append(warn("invalid_value", path, source=draft.source(path)))
    draft.fall_back(path)
    if not spec.fits(draft.text(path)):
        draft.set(path, spec.default, "default")


def _clamp(draft: Draft, path: str, bounds: tuple[float, float]) -> None:
    value = draft.value(path)
    low, high = bounds
    if isinstance(value, int | float) and not low <= value <= high:
        draft.warnings.append(warn("clamped", path, source=draft.source(path)))
        draft.set(path, min(max(float(value), low), high))


def stt_language(*, provider: str, model: str, primary: str, secondary: str | None) -> tuple[str, str | None]:
    """The STT provider's language code for the call, and the language field it cannot honour, if any.

    Both languages must be heard when there is a secondary. Deepgram: ``multi`` on nova-3 when both are in its
    code-switching set, else the primary (the secondary is unsupported). OpenAI: ``multi``, which the pipeline
    turns into the model's own language detection (it hears both). Offline whisper (the bundled English-only
    model): ``en``, and any other language is unsupported.
    """
    match provider:
        case "deepgram":
            if secondary is None:
                return primary, None
            if model.startswith("nova-3") and {_base(primary), _base(secondary)} <= DEEPGRAM_MULTI_LANGUAGES:
                return "multi", None
            return primary, "language.secondary"
        case "openai":
            return ("multi" if secondary else primary), None
        case _:
            if _base(primary) != "en":
                return "en", "language.primary"
            return "en", None if secondary is None else "language.secondary"


def _base(language: str) -> str:
    return language.split("-")[0]


def _stt_language(draft: Draft) -> None:
    secondary = draft.value("language.secondary")
    code, unsupported = stt_language(
        provider=draft.text("stt.provider"),
        model=draft.text("stt.model"),
        primary=draft.text("language.primary"),
        secondary=secondary if isinstance(secondary, str) else None,
    )
    paths = ["language.primary"] + (["language.secondary"] if secondary else [])
    source = max((draft.source(path) for path in paths), key=SOURCES_BY_PRECEDENCE.index)
    draft.fields["stt.language"] = Entry(code, source)
    if unsupported is not None:
        draft.warnings.append(warn("unsupported_language", unsupported, source=draft.source(unsupported)))
