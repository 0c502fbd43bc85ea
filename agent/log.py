"""Logging for the worker: one logger per module, per-call context, caller data redacted at the source.

Contract:
- Messages are static strings; data goes in ``extra``.
- Caller data (names, numbers, prompt variables, transcripts) goes only under keys starting with ``pii.``; the
  filter that `get_logger` installs replaces those values with ``"[redacted]"`` unless
  ``WEBCALL_REDACT_CALLER_DATA=false``. Redaction happens when the record is made, in the job process, so no
  handler (console, JSON, the IPC queue to the worker process) ever sees the value.
- `call_log_fields` is what the entrypoint sets as ``ctx.log_context_fields``: room, call id, dialect, agent id.
"""

from __future__ import annotations

import logging

from agent.config.call_config import CallConfig

PII_PREFIX = "pii."
REDACTED = "[redacted]"
_ROOT = "webcall"


class RedactCallerData(logging.Filter):
    """Replaces every ``pii.*`` attribute of a record with a placeholder."""

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled

    def filter(self, record: logging.LogRecord) -> bool:
        if self.enabled:
            for key in list(vars(record)):
                if key.startswith(PII_PREFIX):
                    setattr(record, key, REDACTED)
        return True


_redactor = RedactCallerData()


def set_redaction(*, enabled: bool) -> None:
    """Turn redaction of ``pii.*`` fields on or off for every logger made by `get_logger` (default: on)."""
    _redactor.enabled = enabled


def get_logger(name: str) -> logging.Logger:
    """The logger ``webcall.<name>``, with the caller-data filter attached."""
    logger = logging.getLogger(f"{_ROOT}.{name}")
    if _redactor not in logger.filters:
        logger.addFilter(_redactor)
    return logger


def call_log_fields(config: CallConfig, *, room_name: str, job_id: str) -> dict[str, str]:
    """The per-call fields every log record of a job carries. None of them is caller-typed text."""
    fields = {"room": room_name, "job_id": job_id, "dialect": config.dialect, "profile": config.profile}
    if config.call.call_id:
        fields["call_id"] = config.call.call_id
    if config.agent_id:
        fields["agent_id"] = config.agent_id
    return fields
