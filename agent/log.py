"""Logging for the worker: one logger per module, per-call context, caller data redacted on every handler.

Contract:
- Every module logs through ``logger = get_logger(__name__)``: the logger of ``agent/events/outbox.py`` is
  ``webcall.events.outbox``, under the caller-data filter.
- Messages are static strings; data goes in ``extra`` under plain snake_case keys (``job_id``, ``code``, ``count``),
  caller data under ``pii.<key>``.
- Caller data (names, numbers, prompt variables, transcripts, metadata) goes only under redactable keys: our own
  ``pii.*`` keys, the framework's PII keys (``lk.pii.*`` and the GenAI content attributes, as
  ``livekit.agents.telemetry.pii.is_pii_attribute`` decides) and the framework's keys listed in
  `FRAMEWORK_CALLER_KEYS` (whole job requests with their metadata, participant identities).
- One `RedactCallerData` filter replaces those values with ``"[redacted]"`` unless
  ``WEBCALL_REDACT_CALLER_DATA=false``. `install_redaction` attaches it to every handler of the root logger, which
  every record passes: in the main process at worker start (job processes' records are re-emitted there through
  the root handlers, which skip logger-level filters) and in each job process at its setup (its one handler is the
  IPC queue to the main process, so a redacted value never leaves the job process). `get_logger` also puts it on
  our own loggers, for code that runs where no root handler was set up (tests, the CLI).
- `call_log_fields` is what the entrypoint sets as ``ctx.log_context_fields``: room, call id, dialect, agent id.
"""

from __future__ import annotations

import functools
import logging
from typing import Final

from agent.config.call_config import CallConfig, ConfigWarning
from agent.config.fields import names_input_key

PII_PREFIX = "pii."
REDACTED = "[redacted]"
_ROOT = "webcall"
# Keys livekit-agents 1.8.9 logs caller data under without a ``pii`` marker: the job request and assignment (their
# job and room metadata), and the linked participant's identity.
FRAMEWORK_CALLER_KEYS: Final = frozenset({"job_request", "job", "participant"})


@functools.cache
def is_caller_data(key: str) -> bool:
    """Whether a record attribute named `key` holds caller data (and is redacted). Cached: records have few keys."""
    if key.startswith(PII_PREFIX) or key in FRAMEWORK_CALLER_KEYS:
        return True
    # Imported on first use: `agent.config` logs through this module and must not import LiveKit when loaded
    # (``python -m agent resolve`` stays fast).
    from livekit.agents.telemetry.pii import is_pii_attribute

    return is_pii_attribute(key)


class RedactCallerData(logging.Filter):
    """Replaces every caller-data attribute of a record (`is_caller_data`) with a placeholder."""

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled

    def filter(self, record: logging.LogRecord) -> bool:
        if self.enabled:
            for key in list(vars(record)):
                if is_caller_data(key):
                    setattr(record, key, REDACTED)
        return True


_redactor = RedactCallerData()


def set_redaction(*, enabled: bool) -> None:
    """Turn redaction on or off everywhere the one filter is attached (default: on)."""
    _redactor.enabled = enabled


def install_redaction(*, enabled: bool) -> None:
    """Attach the redaction filter to every handler the root logger has now, and set it on or off."""
    set_redaction(enabled=enabled)
    for handler in logging.getLogger().handlers:
        if _redactor not in handler.filters:
            handler.addFilter(_redactor)


def get_logger(name: str) -> logging.Logger:
    """The logger of module `name` (``__name__``): ``agent.x.y`` logs as ``webcall.x.y``; the caller-data filter
    is attached."""
    logger = logging.getLogger(f"{_ROOT}.{name.removeprefix('agent.')}")
    if _redactor not in logger.filters:
        logger.addFilter(_redactor)
    return logger


def warning_fields(warning: ConfigWarning) -> dict[str, str]:
    """A config warning as log extras: a canonical field path as ``field``; one naming an input key (a variable's
    name, an unknown key) as ``pii.field``, since the caller may have chosen it."""
    key = f"{PII_PREFIX}field" if names_input_key(warning.field) else "field"
    return {"code": warning.code, key: warning.field}


def call_log_fields(config: CallConfig, *, room_name: str, job_id: str) -> dict[str, str]:
    """The per-call fields every log record of a job carries. None of them is caller-typed text."""
    fields = {"room": room_name, "job_id": job_id, "dialect": config.dialect, "profile": config.profile}
    if config.call.call_id:
        fields["call_id"] = config.call.call_id
    if config.agent_id:
        fields["agent_id"] = config.agent_id
    return fields
