"""Merged fields -> values the chosen providers accept. Runs once, after precedence has picked every field.

Each step reads and rewrites a `Draft`: the merged fields with their sources, and the *base* (built-in defaults
plus profiles) that a refused value falls back to. Provider knowledge comes from the one provider table,
`agent.providers`. In order:

1. languages: a BCP 47 code with a registered ISO 639 language (`agent.config.languages`; ``pt_br`` -> ``pt-BR``);
   anything else (``qq``, ``xyz-abcdefgh``) -> ``invalid_value`` and the profile's. A secondary with the primary's
   base language is dropped.
2. providers: ``stt.provider`` / ``tts.provider`` set by metadata or the caller must be the process's own
   (``WEBCALL_STT_PROVIDER`` / ``WEBCALL_TTS_PROVIDER``) or on ``WEBCALL_ALLOWED_STT_PROVIDERS`` /
   ``WEBCALL_ALLOWED_TTS_PROVIDERS``, else ``not_allowed`` and the profile's.
3. the caller's languages: a language the caller set must be one the call's STT model hears (and, for the
   primary, one the TTS provider speaks), else ``unsupported_language`` and the profile's.
4. ``tts.voice_gender`` -> a voice from the voice table for the TTS provider and primary language.
5. allowlists: ``llm.model``, ``tts.voice``, ``stt.model`` and ``tts.model`` (for a provider whose model is not its
   voice) set by metadata or the caller must be on ``WEBCALL_ALLOWED_LLM_MODELS`` / ``WEBCALL_ALLOWED_TTS_VOICES`` /
   ``WEBCALL_ALLOWED_STT_MODELS`` / ``WEBCALL_ALLOWED_TTS_MODELS``, else ``not_allowed`` and the profile's value.
   Profiles are configuration and are not checked.
6. provider fit: an STT model, TTS model or voice the provider does not have -> the profile's value if it fits,
   else the provider's default; ``invalid_value`` when the misfit came from metadata or the caller (a default or a
   profile meeting a provider chosen by settings is not reported). Deepgram's and piper's TTS model *is* the voice.
7. voice and language (`agent.config.voicing`): a voice that cannot speak the primary language is replaced,
   with ``unsupported_voice``.
8. ranges, ``clamped``: ``llm.temperature`` 0-2; ``tts.speed`` the provider's range; ``ambience.volume`` 0-1;
   the per-call limits at most the deployment's maxima (from any source, profiles too): ``limits.max_duration_s``
   (``WEBCALL_MAX_CALL_DURATION_S``), ``limits.user_silence_timeout_s`` (``WEBCALL_MAX_USER_SILENCE_TIMEOUT_S``),
   ``limits.silence_reprompts`` (``WEBCALL_MAX_SILENCE_REPROMPTS``), ``chat.max_message_chars``
   (``WEBCALL_MAX_MESSAGE_CHARS``). Their lower bounds are the schema's (a zero or negative value is
   ``invalid_value``).
9. ``stt.language``: see `agent.config.languages.stt_language`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container

from agent.config.call_config import SOURCES_BY_PRECEDENCE
from agent.config.diagnostics import warn
from agent.config.draft import Draft, Entry
from agent.config.fields import VoiceByGender
from agent.config.languages import language_code, stt_language
from agent.config.voices import VoiceTable, voice_for
from agent.config.voicing import fit_voice_to_language
from agent.providers import base_language, stt_spec, tts_spec
from agent.settings import Settings

__all__ = ["Draft", "Entry", "normalize"]


def normalize(draft: Draft, *, settings: Settings, voices: VoiceTable) -> None:
    """Apply steps 1-9 of the module docstring to `draft`, in place."""
    _languages(draft)
    _allowlist(draft, "stt.provider", {settings.stt_provider, *settings.allowed_stt_providers})
    _allowlist(draft, "tts.provider", {settings.tts_provider, *settings.allowed_tts_providers})
    _allowlist(draft, "stt.model", settings.allowed_stt_models)
    _fit_stt_model(draft)
    _caller_languages(draft)
    _voice_by_gender(draft, voices)
    _allowlist(draft, "llm.model", settings.allowed_llm_models)
    _allowlist(draft, "tts.voice", settings.allowed_tts_voices)
    if not tts_spec(draft.text("tts.provider")).model_is_voice:
        _allowlist(draft, "tts.model", settings.allowed_tts_models)
    _fit_tts(draft)
    fit_voice_to_language(draft, settings=settings, voices=voices)
    _clamp(draft, "llm.temperature", (0.0, 2.0))
    _clamp(draft, "tts.speed", tts_spec(draft.text("tts.provider")).speed)
    _clamp(draft, "ambience.volume", (0.0, 1.0))
    for path, maximum in deployment_maxima(settings).items():
        _cap(draft, path, maximum)
    _stt_language(draft)


def deployment_maxima(settings: Settings) -> dict[str, float]:
    """The largest value the deployment allows for each per-call limit."""
    return {
        "limits.max_duration_s": settings.max_call_duration_s,
        "limits.user_silence_timeout_s": settings.max_user_silence_timeout_s,
        "limits.silence_reprompts": settings.max_silence_reprompts,
        "chat.max_message_chars": settings.max_message_chars,
    }


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
    _drop_same_secondary(draft)


def _drop_same_secondary(draft: Draft) -> None:
    secondary = draft.value("language.secondary")
    if isinstance(secondary, str) and base_language(secondary) == base_language(draft.text("language.primary")):
        draft.set("language.secondary", None)


def _voice_by_gender(draft: Draft, voices: VoiceTable) -> None:
    provider, language = draft.text("tts.provider"), draft.text("language.primary")
    for view in (draft.base, draft.fields):
        value, source = view["tts.voice"].value, view["tts.voice"].source
        if isinstance(value, VoiceByGender):
            draft.gender = value.gender if view is draft.fields else draft.gender
            voice = voice_for(voices, provider=provider, language=language, gender=value.gender)
            default = Entry(tts_spec(provider).default_voice, "default")
            fallback = draft.base["tts.voice"] if view is draft.fields else default
            view["tts.voice"] = Entry(voice, source) if voice else fallback


def _allowlist(draft: Draft, path: str, allowed: Collection[str]) -> None:
    if not draft.trusted(path) and draft.value(path) not in set(allowed):
        draft.refuse(path, "not_allowed")


def _fit_stt_model(draft: Draft) -> None:
    spec = stt_spec(draft.text("stt.provider"))
    _fit(draft, "stt.model", spec.models, spec.default_model)


def _fit_tts(draft: Draft) -> None:
    spec = tts_spec(draft.text("tts.provider"))
    _fit(draft, "tts.voice", _Offered(spec.has), spec.default_voice)
    if spec.model_is_voice:
        draft.fields["tts.model"] = draft.fields["tts.voice"]
    else:
        _fit(draft, "tts.model", spec.models, spec.default_model)


class _Offered:
    """What a provider offers, as a membership test (a voice may be named by a pattern, not only listed)."""

    def __init__(self, has: Callable[[str], bool]) -> None:
        self._has = has

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._has(name)


def _fit(draft: Draft, path: str, offered: Container[str], default: str) -> None:
    """A value the provider does not have -> the base value if it fits, else the provider's default.

    Only values from metadata or the caller are reported: a built-in default or a profile written for another
    provider meeting the deployment's provider is configuration, and the provider's default is the expected result.
    """
    if draft.text(path) in offered:
        return
    if not draft.trusted(path):
        draft.warn("invalid_value", path)
    draft.fall_back(path)
    if draft.text(path) not in offered:
        draft.set(path, default, "default")


def _caller_languages(draft: Draft) -> None:
    """A language the caller chose must be heard by the call's STT model (and the primary spoken by its TTS)."""
    stt = stt_spec(draft.text("stt.provider"))
    tts = tts_spec(draft.text("tts.provider"))
    for path in ("language.primary", "language.secondary"):
        language = draft.value(path)
        if draft.source(path) != "caller" or not isinstance(language, str):
            continue
        spoken = path != "language.primary" or bool(tts.voices_for(language))
        if not (stt.hears(draft.text("stt.model"), language) and spoken):
            draft.refuse(path, "unsupported_language")
    _drop_same_secondary(draft)


def _clamp(draft: Draft, path: str, bounds: tuple[float, float]) -> None:
    value = draft.value(path)
    low, high = bounds
    if isinstance(value, int | float) and not low <= value <= high:
        draft.warn("clamped", path)
        draft.set(path, min(max(float(value), low), high))


def _cap(draft: Draft, path: str, maximum: float) -> None:
    value = draft.value(path)
    if isinstance(value, int | float) and value > maximum:
        draft.warn("clamped", path)
        # an int field keeps an int (the maximum of an int setting is one)
        draft.set(path, maximum)


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
        draft.warn("unsupported_language", unsupported)
