"""Process settings, read once from the environment (and an optional `.env`).

These are not per-call configuration: nothing here ever comes from room, dispatch or participant metadata.
Keys are `SecretStr` so they never print; `Settings.require_livekit()` is the start-up check that turns a missing
LiveKit URL or key into a typed `SettingsError` (the framework itself would log and exit 0).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.errors import SettingsError
from agent.providers import (
    DEFAULT_ALLOWED_STT,
    DEFAULT_ALLOWED_TTS,
    LLM_MODELS,
    LlmProvider,
    SttProvider,
    TtsProvider,
    all_stt_models,
    all_tts_models,
    all_voices,
)

__all__ = ["LlmProvider", "Settings", "SttProvider", "TtsProvider", "get_settings"]

OpenAITtsFormat = Literal["pcm", "wav", "mp3", "opus", "aac", "flac"]
Dialect = Literal["native", "sawt", "convoi", "vaani", "vyom", "scaiwave"]
LogFormat = Literal["json", "text"]
VadEngine = Literal["silero", "native"]

# Fields a caller (browser-settable participant attributes/metadata) may set by default. Variables are named one by
# one (``variables.customer_name``); a bare ``variables`` entry is refused (`Settings._no_blanket_variables`).
DEFAULT_CALLER_ALLOWED: tuple[str, ...] = ("language", "tts.speed")

# A call ended by its duration limit says goodbye (up to 20 s) and sends call.ended (up to about 11 s) after it.
DRAIN_MARGIN_S = 40.0

# A list setting from the environment: comma-separated (`a,b,c`) or a JSON array (`["a", "b"]`).
NameList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """Everything the worker reads from its environment."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    # LiveKit
    livekit_url: str | None = Field(default=None, validation_alias="LIVEKIT_URL")
    livekit_api_key: SecretStr | None = Field(default=None, validation_alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr | None = Field(default=None, validation_alias="LIVEKIT_API_SECRET")
    agent_name: str = Field(
        default="webcall-agent",
        validation_alias=AliasChoices("LIVEKIT_AGENT_NAME", "WEBCALL_AGENT_NAME"),
    )

    # Providers
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    deepgram_api_key: SecretStr | None = Field(default=None, validation_alias="DEEPGRAM_API_KEY")
    deepgram_base_url: str | None = Field(default=None, validation_alias="DEEPGRAM_BASE_URL")

    # webcall-agent's own
    config_dir: Path = Field(default=Path("config"), validation_alias="WEBCALL_CONFIG_DIR")
    prompts_dir: Path = Field(default=Path("prompts"), validation_alias="WEBCALL_PROMPTS_DIR")
    dialect: Dialect | None = Field(default=None, validation_alias="WEBCALL_DIALECT")
    stt_provider: SttProvider = Field(default="deepgram", validation_alias="WEBCALL_STT_PROVIDER")
    tts_provider: TtsProvider = Field(default="openai", validation_alias="WEBCALL_TTS_PROVIDER")
    # Raw PCM needs no decoding: the first frame is out as soon as its bytes arrive (mp3 costs 35-90 ms more here,
    # `bench/providers.py`). A compatible server without `pcm` can be given another format.
    openai_tts_format: OpenAITtsFormat = Field(default="pcm", validation_alias="WEBCALL_OPENAI_TTS_FORMAT")
    llm_model: str = Field(default="gpt-4o-mini", validation_alias="WEBCALL_LLM_MODEL")
    # The same Silero model either way: `native` runs it in the framework's livekit-local-inference build
    # (`inference.VAD`), at less than half the CPU per stream of `silero` (onnxruntime, the plugin), with the same
    # end-of-turn decisions at its silence wait (`agent.pipeline.SILENCE_WAIT_S`, `bench/endpointing.py`).
    vad_engine: VadEngine = Field(default="native", validation_alias="WEBCALL_VAD")
    # What metadata may choose (`agent.providers`); the provider table is the default. The process's own
    # WEBCALL_STT_PROVIDER / WEBCALL_TTS_PROVIDER is always allowed.
    allowed_stt_providers: Annotated[tuple[SttProvider, ...], NoDecode] = Field(
        default=DEFAULT_ALLOWED_STT, validation_alias="WEBCALL_ALLOWED_STT_PROVIDERS"
    )
    allowed_tts_providers: Annotated[tuple[TtsProvider, ...], NoDecode] = Field(
        default=DEFAULT_ALLOWED_TTS, validation_alias="WEBCALL_ALLOWED_TTS_PROVIDERS"
    )
    allowed_llm_models: NameList = Field(default=LLM_MODELS["openai"], validation_alias="WEBCALL_ALLOWED_LLM_MODELS")
    # Every voice of the provider table by default; a voice must also be one the call's TTS provider has.
    allowed_tts_voices: NameList = Field(default=all_voices(), validation_alias="WEBCALL_ALLOWED_TTS_VOICES")
    # Every model of the provider table by default; a model must also be one the call's provider has.
    allowed_stt_models: NameList = Field(default=all_stt_models(), validation_alias="WEBCALL_ALLOWED_STT_MODELS")
    allowed_tts_models: NameList = Field(default=all_tts_models(), validation_alias="WEBCALL_ALLOWED_TTS_MODELS")
    caller_allowed_fields: NameList = Field(
        default=DEFAULT_CALLER_ALLOWED, validation_alias="WEBCALL_CALLER_ALLOWED_FIELDS"
    )
    redact_caller_data: bool = Field(default=True, validation_alias="WEBCALL_REDACT_CALLER_DATA")
    # Deployment maxima of the per-call limits (`agent.config.normalize` clamps to them, ``clamped``). A call may
    # last up to the maximum duration; a rollout drains for WEBCALL_DRAIN_TIMEOUT_S, so keep the two (and the pod's
    # terminationGracePeriodSeconds) consistent.
    max_call_duration_s: float = Field(default=1800.0, gt=0, validation_alias="WEBCALL_MAX_CALL_DURATION_S")
    max_user_silence_timeout_s: float = Field(
        default=300.0, gt=0, validation_alias="WEBCALL_MAX_USER_SILENCE_TIMEOUT_S"
    )
    max_silence_reprompts: int = Field(default=3, ge=0, validation_alias="WEBCALL_MAX_SILENCE_REPROMPTS")
    max_message_chars: int = Field(default=4000, ge=1, validation_alias="WEBCALL_MAX_MESSAGE_CHARS")
    # Also post each text reply whole on `lk.chat` (it always streams on `lk.transcription`), for frontends that
    # show only `lk.chat` (`agent.chat`).
    chat_replies_on_chat: bool = Field(default=False, validation_alias="WEBCALL_CHAT_REPLIES_ON_CHAT")
    # 8 on 2 cores (deploy/k8s/worker.yaml) is 4 calls per core, under the measured knee of 4.3-5.1 calls per worker
    # core (bench.compare runs 1 and 3, BENCHMARKS.md "Results").
    max_concurrent_calls: int = Field(default=8, ge=1, validation_alias="WEBCALL_MAX_CALLS")
    # Warm job processes kept ready (each ~150 MiB PSS, `bench/worker_footprint.py`). Unset: the framework's
    # default (one per CPU it sees, 0 in dev mode) capped at WEBCALL_MAX_CALLS.
    idle_processes: int | None = Field(default=None, ge=0, validation_alias="WEBCALL_IDLE_PROCESSES")
    log_level: str = Field(default="INFO", validation_alias="WEBCALL_LOG_LEVEL")
    # After the first SIGTERM, live calls may end on their own for this long (`agent.drain`); then each hears a
    # goodbye and ends with reason `shutdown`. Unset: the longest call (WEBCALL_MAX_CALL_DURATION_S) plus
    # `DRAIN_MARGIN_S` for its own goodbye and call.ended, so a call started just before the signal still ends on its
    # own. deploy/k8s's grace period (1920 s) fits the default: 5 s preStop + 1840 s + the 30 s goodbye grace.
    drain_timeout: float | None = Field(default=None, gt=0, validation_alias="WEBCALL_DRAIN_TIMEOUT_S")
    # How long a dispatched job waits for its caller to join before it ends with reason `no_caller`.
    join_timeout_s: float = Field(default=60.0, gt=0, validation_alias="WEBCALL_JOIN_TIMEOUT_S")
    # One JSON object per line (the default of `start`) or colored text (the default of `dev`).
    log_format: LogFormat | None = Field(default=None, validation_alias="WEBCALL_LOG_FORMAT")
    # Failed connections to LiveKit in a row before the worker gives up and exits 1 (the framework's default: 16,
    # about 2.5 min of backoff; the pause grows by 2 s per attempt up to 10 s).
    livekit_max_retry: int = Field(default=16, ge=0, validation_alias="WEBCALL_LIVEKIT_MAX_RETRY")

    # Provider failures (`agent.pipeline`, `agent.faults`). Each attempt is bounded: an LLM that has sent no token
    # after `llm_timeout_s` has failed (a fallback is tried, else the caller hears the apology), likewise a TTS or
    # STT connection. Behind each cloud STT/TTS stands every other configured one unless `provider_fallback` is off.
    llm_timeout_s: float = Field(default=4.0, gt=0, le=60, validation_alias="WEBCALL_LLM_TIMEOUT_S")
    tts_timeout_s: float = Field(default=5.0, gt=0, le=60, validation_alias="WEBCALL_TTS_TIMEOUT_S")
    stt_timeout_s: float = Field(default=5.0, gt=0, le=60, validation_alias="WEBCALL_STT_TIMEOUT_S")
    stt_retries: int = Field(default=2, ge=0, le=10, validation_alias="WEBCALL_STT_RETRIES")
    provider_fallback: bool = Field(default=True, validation_alias="WEBCALL_PROVIDER_FALLBACK")
    # A second OpenAI-compatible endpoint and/or model behind the call's LLM (same key unless one is given).
    llm_fallback_base_url: str | None = Field(default=None, validation_alias="WEBCALL_LLM_FALLBACK_BASE_URL")
    llm_fallback_api_key: SecretStr | None = Field(default=None, validation_alias="WEBCALL_LLM_FALLBACK_API_KEY")
    llm_fallback_model: str | None = Field(default=None, validation_alias="WEBCALL_LLM_FALLBACK_MODEL")

    # Call events (`agent.events`): a JSONL spool directory and/or a signed webhook; both off by default.
    events_dir: Path | None = Field(default=None, validation_alias="WEBCALL_EVENTS_DIR")
    events_url: str | None = Field(default=None, validation_alias="WEBCALL_EVENTS_URL")
    events_secret: SecretStr | None = Field(default=None, validation_alias="WEBCALL_EVENTS_SECRET")
    # Caller data in events: transcript text, variables, the caller's name, metadata values (never in logs).
    events_include_transcript: bool = Field(
        default=True,
        validation_alias=AliasChoices("WEBCALL_EVENTS_INCLUDE_CONTENT", "WEBCALL_EVENTS_INCLUDE_TRANSCRIPT"),
    )
    # An event's JSON is cut to this size (`agent.events.bounds`): receivers refuse large bodies with a 413.
    events_max_bytes: int = Field(default=512 * 1024, ge=16 * 1024, validation_alias="WEBCALL_EVENTS_MAX_BYTES")
    # Also send the pre-Standard-Webhooks `Webcall-Signature` header (kept for one release).
    events_legacy_signature: bool = Field(default=False, validation_alias="WEBCALL_EVENTS_LEGACY_SIGNATURE")
    # Plain `http://` webhook URLs are refused unless this is set (development stacks only).
    events_allow_http: bool = Field(default=False, validation_alias="WEBCALL_EVENTS_ALLOW_HTTP")
    # A 401/403 is retried this long after the event was made (clock skew, a secret rotation), then dead.
    events_auth_retry_s: float = Field(default=3600.0, ge=0, validation_alias="WEBCALL_EVENTS_AUTH_RETRY_S")
    # Files in the outbox's dead/ and corrupt/ are deleted this long after they were set aside.
    events_outbox_retention_s: float = Field(
        default=7 * 86_400.0, gt=0, validation_alias="WEBCALL_EVENTS_OUTBOX_RETENTION_S"
    )
    # The webhook's outbox (`agent.events.outbox`): events the webhook could not take, kept on disk and re-sent.
    # Unset: `<WEBCALL_EVENTS_DIR>/outbox` with a spool, else `events-outbox` under the working directory.
    events_outbox_dir: Path | None = Field(default=None, validation_alias="WEBCALL_EVENTS_OUTBOX_DIR")
    events_outbox_max_age_s: float = Field(default=86_400.0, gt=0, validation_alias="WEBCALL_EVENTS_OUTBOX_MAX_AGE_S")
    events_redeliver_interval_s: float = Field(
        default=30.0, gt=0, validation_alias="WEBCALL_EVENTS_REDELIVER_INTERVAL_S"
    )

    @field_validator(
        "allowed_stt_providers",
        "allowed_tts_providers",
        "allowed_llm_models",
        "allowed_tts_voices",
        "allowed_stt_models",
        "allowed_tts_models",
        "caller_allowed_fields",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return tuple(item.strip() for item in text.split(",") if item.strip())

    @field_validator("caller_allowed_fields")
    @classmethod
    def _no_blanket_variables(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "variables" in value:
            raise ValueError("name each variable the caller may set (variables.<name>); a bare `variables` is refused")
        return value

    @property
    def drain_timeout_s(self) -> float:
        """How long a stopping worker waits for its live calls: the setting, else the longest call and a margin."""
        if self.drain_timeout is not None:
            return self.drain_timeout
        return self.max_call_duration_s + DRAIN_MARGIN_S

    def outbox_dir(self) -> Path:
        """Where undelivered webhook events wait: the setting, else beside the spool, else ``events-outbox``."""
        if self.events_outbox_dir is not None:
            return self.events_outbox_dir
        if self.events_dir is not None:
            return self.events_dir / "outbox"
        return Path("events-outbox")

    def journal_dir(self) -> Path:
        """Where job processes note which call events they handed over (`agent.events.journal`): in the outbox's
        directory, ``.journal``."""
        return self.outbox_dir() / ".journal"

    def require_livekit(self) -> None:
        """Raise `SettingsError` naming every missing LiveKit setting (never their values)."""
        missing = tuple(
            name
            for name, value in (
                ("LIVEKIT_URL", self.livekit_url),
                ("LIVEKIT_API_KEY", self.livekit_api_key),
                ("LIVEKIT_API_SECRET", self.livekit_api_secret),
            )
            if not value
        )
        if missing:
            raise SettingsError("missing LiveKit settings: " + ", ".join(missing), fields=missing)


def secret_value(value: SecretStr | None) -> str | None:
    """The text of a secret setting, for the one client that needs it (never for a log, an event or the LLM)."""
    return value.get_secret_value() if value is not None else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process settings, read once."""
    return Settings()
