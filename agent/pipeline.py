"""Every STT, LLM, TTS and VAD object of the worker is built here, from a `CallConfig` and the process `Settings`.

Contract:
- The provider named by the call config comes first. Every other cloud provider whose credentials are set in the
  environment follows it in a ``FallbackAdapter`` chain (OpenAI and Deepgram both configured: two STTs, two TTSs).
  The TTS chain is `agent.tts_chain.SentenceFallbackTTS`: asked one sentence at a time, it has the next TTS speak a
  sentence again whose speech the failing one had started.
  Offline providers (whisper, piper) never get a fallback: they are for development and tests.
- Base URLs come from settings (``OPENAI_BASE_URL``, ``DEEPGRAM_BASE_URL``), so self-hosted and proxy endpoints work.
  With a base URL but no key (a local OpenAI-compatible server) a placeholder key is passed, because the OpenAI
  client refuses to start without one.
- Voice, speed and language are translated into each provider's own terms from the provider table
  (`agent.providers`: speed ranges, whether the model is the voice, the defaults); a voice from another provider's
  vocabulary falls back to that provider's default rather than failing the call. A fallback TTS speaks the call's
  language with its first voice that does, and is left out of the chain when none of its voices does.
- One OpenAI HTTP client per process (`Shared`, made in the worker's ``setup_fnc`` with the VAD), on one TLS context
  (`tls_context`) that the forkserver builds before it forks (`agent.prefork`): parsing the CA bundle costs tens of
  ms of CPU, which would otherwise be paid per process, or per call.
- The LLM gets a fallback when one is configured: ``WEBCALL_LLM_FALLBACK_BASE_URL`` (a second OpenAI-compatible
  endpoint, with ``WEBCALL_LLM_FALLBACK_API_KEY`` or the OpenAI key) and/or ``WEBCALL_LLM_FALLBACK_MODEL`` (another
  model, on that endpoint or else the primary one). ``WEBCALL_PROVIDER_FALLBACK=false`` keeps every STT/TTS alone.
- Failures are bounded (`session_conn_options`, the adapters' attempt time-outs): an LLM attempt has
  ``WEBCALL_LLM_TIMEOUT_S`` to answer and is never retried in place (the fallback is tried, else the turn fails and
  `agent.provider_faults` apologizes); the STT stream reconnects ``WEBCALL_STT_RETRIES`` times; a TTS attempt has
  ``WEBCALL_TTS_TIMEOUT_S`` (to its first audio, `agent.openai_tts`) and is not retried. A fallback LLM
  regenerates a reply cut mid-stream from the start.
- Nothing here reads metadata, and no key ever leaves through a log message or an error.
- The config it builds from has already been fitted to this deployment (`agent.deployment.resolve_for_deployment`:
  a provider it cannot serve is replaced, with a ``provider_unavailable`` warning, so the call goes on). Only a
  role nothing can serve (no LLM client at all, no STT or TTS provider anywhere) raises `PipelineError`
  (``retryable=False``).
"""

from __future__ import annotations

import functools
import importlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar, assert_never

import httpx2
import openai as openai_sdk
from livekit.agents import APIConnectOptions, inference, llm, stt, tts, vad
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import deepgram, openai, silero

from agent.config.call_config import CallConfig, SttConfig, TtsConfig
from agent.deployment import can_serve, openai_configured, tts_config_for
from agent.errors import PipelineError
from agent.openai_tts import BoundedOpenAITTS
from agent.providers import CLOUD_STT, CLOUD_TTS, STT, TTS, Role, SttProvider, TtsProvider, base_language
from agent.settings import Settings, VadEngine, secret_value
from agent.tts_chain import SentenceFallbackTTS

# Sent to a local OpenAI-compatible server that needs no key; never sent to api.openai.com (no base URL there).
LOCAL_PLACEHOLDER_KEY: Final = "not-needed"

SttEngine: TypeAlias = stt.STT[Any]
LlmEngine: TypeAlias = llm.LLM[Any]
TtsEngine: TypeAlias = tts.TTS[Any]


@dataclass(frozen=True, kw_only=True)
class Shared:
    """What one process builds once and every call in it reuses."""

    vad: vad.VAD
    openai_client: openai_sdk.AsyncClient | None = None
    # the client of WEBCALL_LLM_FALLBACK_BASE_URL, when one is set
    fallback_llm_client: openai_sdk.AsyncClient | None = None


def load_shared(settings: Settings) -> Shared:
    """The VAD and the OpenAI clients (when OpenAI / an LLM fallback is configured), for the process's
    ``setup_fnc``."""
    client = None
    key = None
    if openai_configured(settings):
        key = secret_value(settings.openai_api_key) or LOCAL_PLACEHOLDER_KEY
        client = _openai_sdk_client(key, _openai_base_url(settings))
        _import_lazy_paths(client)
    fallback = None
    if settings.llm_fallback_base_url:
        fallback_key = secret_value(settings.llm_fallback_api_key) or key or LOCAL_PLACEHOLDER_KEY
        fallback = _openai_sdk_client(fallback_key, settings.llm_fallback_base_url.rstrip("/"))
    _load_offline_models(settings)
    return Shared(vad=load_vad(settings.vad_engine), openai_client=client, fallback_llm_client=fallback)


def _openai_sdk_client(key: str, base_url: str | None) -> openai_sdk.AsyncClient:
    # The SDK's own retries are off: the framework's conn options and fallback adapters decide.
    return openai_sdk.AsyncClient(
        api_key=key,
        base_url=base_url,
        max_retries=0,
        http_client=httpx2.AsyncClient(
            verify=tls_context(),
            timeout=httpx2.Timeout(connect=15.0, read=5.0, write=5.0, pool=5.0),
            follow_redirects=True,
            limits=httpx2.Limits(max_connections=50, max_keepalive_connections=50, keepalive_expiry=120),
        ),
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every OpenAI client of the process uses: httpx's default one, built once (made in the
    forkserver by `agent.prefork`, so job processes inherit it; parsing the CA bundle costs tens of ms)."""
    return httpx2.create_ssl_context()


def _import_lazy_paths(client: openai_sdk.AsyncClient) -> None:
    """Import what the OpenAI SDK and anyio import on a process's first request, before any call needs it.

    The first welcome synthesis in a fresh job process otherwise pays for these imports on the call's critical path
    (about 30 ms of the 70 ms a first request costs over a warm one on the 2-vCPU box).
    """
    for module in ("anyio._backends._asyncio", "anyio._core._sockets"):  # httpx's async connections
        importlib.import_module(module)
    _ = (client.audio.speech, client.audio.transcriptions, client.chat.completions)  # lazily imported resources


def _load_offline_models(settings: Settings) -> None:
    if settings.stt_provider == "whisper":
        from agent.offline.whisper_stt import WhisperSTT

        WhisperSTT.load()
    if settings.tts_provider == "piper":
        from agent.offline.piper_tts import PiperTTS

        PiperTTS.load()


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """The provider objects of one call."""

    stt: SttEngine
    llm: LlmEngine
    tts: TtsEngine
    conn_options: SessionConnectOptions = field(default_factory=SessionConnectOptions)


# The silence that ends a turn, per runtime of the same Silero model. The native runtime reports the end of speech
# about 20 ms sooner on the same audio: at 0.55 s it cut off 14 of 18 paused sentences where onnxruntime cut off 10;
# at 0.60 s it cuts off 9 (piper's voice: 8 against 9) and ends complete turns 14-23 ms later, at half the CPU
# (`bench.endpointing --native-silence 0.55 0.6 --pauses 0.6 0.65 0.9`, BENCHMARKS.md).
SILENCE_WAIT_S: Final[dict[VadEngine, float]] = {"silero": 0.55, "native": 0.60}


def load_vad(engine: VadEngine = "native") -> vad.VAD:
    """Silero VAD, loaded once per process: ``native`` (the framework's livekit-local-inference build) or in
    onnxruntime (``silero``, the plugin; its model ships in its wheel)."""
    match engine:
        case "silero":
            return silero.VAD.load(min_silence_duration=SILENCE_WAIT_S[engine], activation_threshold=0.5)
        case "native":
            return inference.VAD(min_silence_duration=SILENCE_WAIT_S[engine], activation_threshold=0.5)
        case _ as unreachable:
            assert_never(unreachable)


def build(config: CallConfig, *, settings: Settings, shared: Shared) -> Pipeline:
    """All providers of one call, each with its fallback chain."""
    return Pipeline(
        stt=build_stt(config.stt, settings=settings, shared=shared),
        llm=build_llm(config, settings=settings, shared=shared),
        tts=build_tts(config.tts, settings=settings, shared=shared, language=config.language.primary),
        conn_options=session_conn_options(settings),
    )


def session_conn_options(settings: Settings) -> SessionConnectOptions:
    """How long the session waits for each provider and how often it retries in place (see the module doc)."""
    return SessionConnectOptions(
        stt_conn_options=APIConnectOptions(
            max_retry=settings.stt_retries, retry_interval=0.5, timeout=settings.stt_timeout_s
        ),
        llm_conn_options=APIConnectOptions(max_retry=0, retry_interval=0.5, timeout=settings.llm_timeout_s),
        tts_conn_options=APIConnectOptions(max_retry=0, retry_interval=0.5, timeout=settings.tts_timeout_s),
    )


def build_llm(config: CallConfig, *, settings: Settings, shared: Shared) -> LlmEngine:
    """The call's LLM, then the configured fallback (another endpoint and/or model) in a ``FallbackAdapter``."""
    match config.llm.provider:
        case "openai":
            chain: list[LlmEngine] = [
                openai.LLM(
                    model=config.llm.model,
                    temperature=config.llm.temperature,
                    client=_openai_client(shared, role="llm"),
                )
            ]
        case _ as unreachable:
            assert_never(unreachable)
    fallback_client = shared.fallback_llm_client or shared.openai_client
    fallback_model = settings.llm_fallback_model or config.llm.model
    if fallback_client is not None and (shared.fallback_llm_client is not None or fallback_model != config.llm.model):
        chain.append(openai.LLM(model=fallback_model, temperature=config.llm.temperature, client=fallback_client))
    if len(chain) == 1:
        return chain[0]
    # A reply cut mid-stream is regenerated by the next LLM: the caller hears the cut fragment, then a whole reply.
    return llm.FallbackAdapter(
        chain, attempt_timeout=settings.llm_timeout_s, max_retry_per_llm=0, retry_on_chunk_sent=True
    )


def build_stt(config: SttConfig, *, settings: Settings, shared: Shared) -> SttEngine:
    """The configured STT, then every other configured cloud STT as fallbacks."""

    def one(provider: SttProvider) -> SttEngine:
        spec = config if provider == config.provider else SttConfig(provider=provider, language=config.language)
        return _one_stt(spec, settings=settings, shared=shared)

    chain = fallback_chain(config.provider, CLOUD_STT, one, settings=settings, shared=shared)
    if len(chain) == 1:
        return chain[0]
    return stt.FallbackAdapter(
        chain, vad=shared.vad, attempt_timeout=settings.stt_timeout_s, max_retry_per_stt=1, retry_interval=0.5
    )


def build_tts(config: TtsConfig, *, settings: Settings, shared: Shared, language: str | None = None) -> TtsEngine:
    """The configured TTS, then every other configured cloud TTS as fallbacks.

    A fallback speaks with its first voice for `language` (the call's primary); with `language` given, a provider
    none of whose voices speaks it is left out. Without it, each fallback has its default voice.
    """

    def one(provider: TtsProvider) -> TtsEngine:
        spec = (
            config if provider == config.provider else tts_config_for(provider, language=language, speed=config.speed)
        )
        return _one_tts(spec, settings=settings, shared=shared)

    def speaks(provider: TtsProvider) -> bool:
        return language is None or provider == config.provider or bool(TTS[provider].voices_for(language))

    chain = fallback_chain(config.provider, tuple(filter(speaks, CLOUD_TTS)), one, settings=settings, shared=shared)
    return chain[0] if len(chain) == 1 else SentenceFallbackTTS(chain, max_retry_per_tts=0)


_Provider = TypeVar("_Provider", SttProvider, TtsProvider)
_Engine = TypeVar("_Engine")


def fallback_chain(
    asked: _Provider,
    cloud: tuple[_Provider, ...],
    one: Callable[[_Provider], _Engine],
    *,
    settings: Settings,
    shared: Shared,
) -> list[_Engine]:
    """`asked`'s engine, then one for each other cloud provider this deployment can serve, in `cloud` order.

    An offline provider (not in `cloud`) gets no fallbacks: it is for development and tests; with
    ``WEBCALL_PROVIDER_FALLBACK=false`` no provider gets any.
    """
    chain = [one(asked)]
    if asked in cloud and settings.provider_fallback:
        chain += [one(p) for p in cloud if p != asked and can_serve(p, settings=settings, shared=shared)]
    return chain


def _one_stt(config: SttConfig, *, settings: Settings, shared: Shared) -> SttEngine:
    spec = STT[config.provider]
    model = config.model if config.model in spec.models else spec.default_model
    match config.provider:
        case "deepgram":
            return deepgram.STT(
                model=model,
                language=config.language,
                api_key=_deepgram_key(settings, role="stt"),
                base_url=_deepgram_url(settings, "listen"),
            )
        case "openai":
            return openai.STT(
                model=model,
                # OpenAI has no "multi": with two languages it detects the language itself.
                language=base_language(config.language),
                detect_language=config.language == "multi",
                client=_openai_client(shared, role="stt"),
            )
        case "whisper":
            from agent.offline.whisper_stt import WhisperSTT  # optional extra

            return WhisperSTT(language=base_language(config.language))
        case _ as unreachable:
            assert_never(unreachable)


def _one_tts(config: TtsConfig, *, settings: Settings, shared: Shared) -> TtsEngine:
    options = tts_options(config)
    match config.provider:
        case "openai":
            spec = TTS["openai"]
            return BoundedOpenAITTS(
                first_audio_s=settings.tts_timeout_s,
                model=config.model if config.model in spec.models else spec.default_model,
                voice=str(options["voice"]),
                speed=options["speed"],
                response_format=settings.openai_tts_format,
                client=_openai_client(shared, role="tts"),
            )
        case "deepgram":
            return deepgram.TTS(
                model=str(options["model"]),
                speed=options["speed"],
                api_key=_deepgram_key(settings, role="tts"),
                base_url=_deepgram_url(settings, "speak"),
            )
        case "piper":
            from agent.offline.piper_tts import PiperTTS  # optional extra

            return PiperTTS(voice=str(options["voice"]), speed=options["speed"])
        case _ as unreachable:
            assert_never(unreachable)


def provider_voice(config: TtsConfig) -> str:
    """The voice in the provider's terms: the configured one if the provider has it, for a provider whose model is
    the voice the model if that is one, else the provider's default."""
    spec = TTS[config.provider]
    candidates = (config.voice, config.model) if spec.model_is_voice else (config.voice,)
    return next((c for c in candidates if spec.has(c)), spec.default_voice)


def tts_options(config: TtsConfig) -> dict[str, Any]:
    """The voice and speed in the provider's terms: what it is built with, and what a mid-call change passes to
    ``update_options`` (the voice under ``voice`` or ``model``, as the provider table says)."""
    spec = TTS[config.provider]
    return {spec.voice_option: provider_voice(config), "speed": spec.clamp(config.speed)}


def _openai_base_url(settings: Settings) -> str | None:
    return settings.openai_base_url.rstrip("/") if settings.openai_base_url else None


def _openai_client(shared: Shared, *, role: Role) -> openai_sdk.AsyncClient:
    if shared.openai_client is None:
        raise PipelineError("missing_key", role=role, provider="openai")
    return shared.openai_client


def _deepgram_key(settings: Settings, *, role: Role) -> str:
    key = secret_value(settings.deepgram_api_key)
    if key:
        return key
    if settings.deepgram_base_url:
        return LOCAL_PLACEHOLDER_KEY
    raise PipelineError("missing_key", role=role, provider="deepgram")


def _deepgram_url(settings: Settings, endpoint: str) -> str:
    """``DEEPGRAM_BASE_URL`` is the API root (``https://api.deepgram.com/v1``); the plugins want the endpoint."""
    root = (settings.deepgram_base_url or "https://api.deepgram.com/v1").rstrip("/")
    for suffix in ("/listen", "/speak"):
        root = root.removesuffix(suffix)
    if not root.endswith("/v1"):
        root += "/v1"
    return f"{root}/{endpoint}"
