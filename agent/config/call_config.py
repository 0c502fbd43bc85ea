"""The canonical, frozen per-call configuration.

Everything after the resolver reads a `CallConfig`; nothing after it takes a `dict`. Its JSON form
(`CallConfig.model_dump(mode="json")`) is what `python -m agent resolve` prints, and its top-level keys are a
stable contract for QA, support and tests:

    dialect, agent_id, profile, instructions, welcome, language, stt, llm, tts, ambience, variables, call,
    knowledge_base_ids, chat, limits, provenance, warnings

`provenance` maps a dotted field (``"tts.speed"``) to the source that set it: ``default`` (built-in),
``caller`` (only for a field no trusted source set), ``profile``, ``room_name`` (ScaiWave's
``scaiwave-<call_id>``), ``room_metadata`` or ``job_metadata``. `warnings` lists what was clamped, ignored, refused
or missing; a call with warnings still runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.providers import LLM_MODELS, STT, TTS, LlmProvider, SttProvider, TtsProvider
from agent.settings import Dialect

Source = Literal["default", "profile", "room_name", "room_metadata", "job_metadata", "caller"]
# Lowest first. The caller (the browser) sits below every trusted source: it only fills what they left unset.
SOURCES_BY_PRECEDENCE: tuple[Source, ...] = (
    "default",
    "caller",
    "profile",
    "room_name",
    "room_metadata",
    "job_metadata",
)

WarningCode = Literal[
    "unknown_agent",
    "missing_variable",
    "clamped",
    "invalid_value",
    "ignored_field",
    "not_allowed",
    "caller_not_allowed",
    "caller_overridden",
    "invalid_metadata",
    "unknown_dialect",
    "conflicting_dialect",
    "unknown_knowledge_base",
    "unsupported_language",
    "unsupported_voice",
    "truncated",
    "provider_unavailable",
]

WelcomeMode = Literal["say", "generate", "none"]
ReplyMode = Literal["auto", "text", "voice", "both"]
CallType = Literal["web", "audio", "video"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConfigWarning(_Frozen):
    """Something in the inputs that was not used as given. `message` never contains input values."""

    code: WarningCode
    field: str
    message: str


class Welcome(_Frozen):
    text: str = ""
    interruptible: bool = True
    mode: WelcomeMode = "say"


class Language(_Frozen):
    primary: str = "en"
    secondary: str | None = None


# A config's defaults are the provider table's (`agent.providers`): the models and voice of the default providers.
class SttConfig(_Frozen):
    provider: SttProvider = "deepgram"
    model: str = STT["deepgram"].default_model
    # Provider terms: "multi" when both languages must be heard (`agent.config.languages.stt_language`), else a
    # BCP 47 code.
    language: str = "en"


class LlmConfig(_Frozen):
    provider: LlmProvider = "openai"
    model: str = LLM_MODELS["openai"][0]
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)


class TtsConfig(_Frozen):
    provider: TtsProvider = "openai"
    model: str = TTS["openai"].default_model
    voice: str = TTS["openai"].default_voice
    speed: float = Field(default=1.0, gt=0.0)


class Ambience(_Frozen):
    enabled: bool = False
    clip: str = "office_ambience"
    volume: float = Field(default=0.6, ge=0.0, le=1.0)
    # Keyboard typing on the ambience track while the agent is thinking (LLM and tool calls), at `volume`.
    thinking: bool = False


class Recording(_Frozen):
    audio: bool = False
    video: bool = False
    transcript: bool = False


class CallInfo(_Frozen):
    """Facts about the call that are recorded (events, logs under PII keys), not obeyed as behaviour."""

    user_ref: str | None = None
    participant_name: str | None = None
    source: str | None = None
    call_id: str | None = None
    room_id: str | None = None
    type: CallType = "web"
    # ScaiWave: with transcript=True the agent is a scribe (transcribes everyone, silent unless addressed).
    transcript: bool = False
    recording: Recording = Recording()
    # Free-form platform metadata, kept verbatim for call events (Convoi `metadata`, Vaani `metadata`, ...).
    metadata: dict[str, object] = Field(default_factory=dict)
    # Variables that are kept apart for events (Sawt `preCallVariables`); also usable in templates.
    pre_call_variables: dict[str, str] = Field(default_factory=dict)
    # Fields recorded but deliberately not obeyed (Vaani `websocket_url`, `env_flag`).
    recorded: dict[str, str] = Field(default_factory=dict)


class ChatConfig(_Frozen):
    """`lk.chat` behaviour. `auto`: typed messages get text replies, spoken ones get voice."""

    reply_mode: ReplyMode = "auto"
    max_message_chars: int = Field(default=4000, ge=1)


class Limits(_Frozen):
    max_duration_s: float = Field(default=1800.0, gt=0)
    user_silence_timeout_s: float = Field(default=30.0, gt=0)
    silence_reprompts: int = Field(default=1, ge=0)


class CallConfig(_Frozen):
    """One call's resolved configuration."""

    dialect: Dialect = "native"
    agent_id: str | None = None
    profile: str = "default"
    instructions: str = ""
    welcome: Welcome = Welcome()
    language: Language = Language()
    stt: SttConfig = SttConfig()
    llm: LlmConfig = LlmConfig()
    tts: TtsConfig = TtsConfig()
    ambience: Ambience = Ambience()
    variables: dict[str, str] = Field(default_factory=dict)
    call: CallInfo = CallInfo()
    knowledge_base_ids: tuple[str, ...] = ()
    chat: ChatConfig = ChatConfig()
    limits: Limits = Limits()
    provenance: dict[str, Source] = Field(default_factory=dict)
    warnings: tuple[ConfigWarning, ...] = ()

    @property
    def is_scribe(self) -> bool:
        """ScaiWave calls with `transcript: true`: transcribe everyone, speak only when addressed."""
        return self.dialect == "scaiwave" and self.call.transcript
