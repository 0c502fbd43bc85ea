"""The exception tree of webcall-agent.

Callers branch on the type and the structured fields, never on message text. Messages never contain input
values: metadata is caller data, and a transport error can carry credentials in a URL.

    WebcallError
    ├── SettingsError            process settings missing or invalid (exit non-zero at start)
    ├── ConfigError              per-call configuration could not be used as given
    │   ├── MetadataError        a metadata document is not usable JSON (too big, too deep, not an object, NaN)
    │   ├── DialectError         no dialect matches, or the markers of several conflict
    │   └── ProfileError         an agent profile file is missing or invalid
    ├── TemplateError            a prompt template is malformed or references a missing prompt file
    ├── PipelineError            a provider could not be built from the config (retryable=False)
    └── CorruptRecord            a call events' outbox file is not a record (torn, edited, foreign)
"""

from __future__ import annotations


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

    def __init__(self, code: str, *, source: str | None = None, field: str | None = None) -> None:
        where = f" in {source}" if source else ""
        at = f" at {field}" if field else ""
        super().__init__(f"{code}{where}{at}")
        self.code = code
        self.source = source
        self.field = field


class MetadataError(ConfigError):
    """A metadata document is not a usable JSON object."""


class DialectError(ConfigError):
    """No dialect matches the document, or its markers conflict."""

    def __init__(
        self,
        code: str,
        *,
        source: str | None = None,
        candidates: tuple[str, ...] = (),
    ) -> None:
        super().__init__(code, source=source)
        self.candidates = candidates


class ProfileError(ConfigError):
    """An agent profile is missing or invalid."""


class TemplateError(WebcallError):
    """A prompt template is malformed or references a missing prompt file."""

    def __init__(self, code: str, *, name: str | None = None) -> None:
        # `name` can come from metadata (a prompt file name): kept as a field, never put into the message.
        super().__init__(code)
        self.code = code
        self.name = name


class PipelineError(WebcallError):
    """A provider object could not be built from the config."""

    def __init__(self, code: str, *, role: str, provider: str) -> None:
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
