"""The exception tree of webcall-agent.

Callers branch on the type and the structured fields, never on message text. Messages never contain input
values: metadata is caller data, and a transport error can carry credentials in a URL. Each error's ``code`` is one
of a closed set, a `Literal` below (the warnings' codes are `agent.config.call_config.WarningCode`).

    WebcallError
    ├── SettingsError            process settings missing or invalid (exit non-zero at start)
    ├── ConfigError              per-call configuration could not be used as given
    │   ├── MetadataError        a metadata document is not usable JSON (too big, too deep, not an object, NaN)
    │   ├── DialectError         no dialect matches, or the markers of several conflict
    │   ├── ProfileError         an agent profile file is missing or invalid
    │   └── GoldenCaseError      a golden case file cannot be used (`agent.config.golden`)
    ├── TemplateError            a prompt template is malformed or references a missing prompt file
    ├── PipelineError            a provider could not be built from the config (retryable=False)
    ├── CorruptRecord            a call events' outbox file is not a record (torn, edited, foreign)
    └── LegacyChatError          a legacy ``ChatMessage`` packet could not be sent (`agent.legacy_chat`)
"""

from __future__ import annotations

from typing import Literal

from agent.providers import Role

MetadataErrorCode = Literal["not_utf8", "not_an_object", "too_large", "non_finite_number", "too_deep", "invalid_json"]
DialectErrorCode = Literal["unknown_dialect", "conflicting_dialect"]
ProfileErrorCode = Literal["unreadable_profile", "not_a_mapping"]
GoldenCaseCode = Literal["unreadable", "not_an_object", "unknown_key", "no_input", "no_expected", "invalid_value"]
ConfigErrorCode = MetadataErrorCode | DialectErrorCode | ProfileErrorCode | GoldenCaseCode
TemplateErrorCode = Literal["invalid_prompt_file_name", "prompt_file_not_found"]
PipelineErrorCode = Literal["missing_key"]


class WebcallError(Exception):
    """Base of every error this project raises on purpose."""

    retryable: bool = False


class SettingsError(WebcallError):
    """Process settings are missing or invalid."""

    def __init__(self, reason: str, *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


class ConfigError(WebcallError):
    """Per-call configuration could not be used as given.

    Attributes:
        source: where the document came from (``job_metadata``, ``room_metadata``, ...).
        field: dotted path of the offending field, if one is known.
        code: a stable machine-readable reason.
    """

    code: ConfigErrorCode

    def __init__(self, code: ConfigErrorCode, *, source: str | None = None, field: str | None = None) -> None:
        where = f" in {source}" if source else ""
        at = f" at {field}" if field else ""
        super().__init__(f"{code}{where}{at}")
        self.code = code
        self.source = source
        self.field = field


class MetadataError(ConfigError):
    """A metadata document is not a usable JSON object."""

    code: MetadataErrorCode

    def __init__(self, code: MetadataErrorCode, *, source: str | None = None) -> None:
        super().__init__(code, source=source)


class DialectError(ConfigError):
    """No dialect matches the document, or its markers conflict."""

    code: DialectErrorCode

    def __init__(self, code: DialectErrorCode, *, source: str | None = None, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(code, source=source)
        self.candidates = candidates


class ProfileError(ConfigError):
    """An agent profile is missing or invalid."""

    code: ProfileErrorCode

    def __init__(self, code: ProfileErrorCode, *, source: str | None = None) -> None:
        super().__init__(code, source=source)


class TemplateError(WebcallError):
    """A prompt template is malformed or references a missing prompt file."""

    def __init__(self, code: TemplateErrorCode, *, name: str | None = None) -> None:
        # `name` can come from metadata (a prompt file name): kept as a field, never put into the message.
        super().__init__(code)
        self.code = code
        self.name = name


class PipelineError(WebcallError):
    """A provider object could not be built from the config."""

    def __init__(self, code: PipelineErrorCode, *, role: Role, provider: str) -> None:
        super().__init__(f"{code} ({role}={provider})")
        self.code = code
        self.role = role
        self.provider = provider


class CorruptRecord(WebcallError):
    """A call events' outbox file cannot be read as a record (torn, edited, foreign).

    Attributes:
        name: the file's name (server-made: times, event and job ids), never its content.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class LegacyChatError(WebcallError):
    """The room could not send a legacy chat message.

    Attributes:
        reason: the SDK's reason (it never contains the message text).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
