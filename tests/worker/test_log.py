"""Every logger of the agent's modules is named ``webcall.<module>`` and carries the caller-data redaction; the
same filter on the root handlers redacts the framework's caller keys in every record, job processes' included."""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.diagnostics import warn
from agent.log import (
    REDACTED,
    RedactCallerData,
    install_redaction,
    is_caller_data,
    set_redaction,
    warning_fields,
)

AGENT = Path(__file__).resolve().parents[2] / "agent"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(AGENT.parent).with_suffix("").parts)


# Every module of agent/ that logs: it has a module-level `logger`.
MODULES = sorted(_module(p) for p in AGENT.rglob("*.py") if re.search(r"^logger = ", p.read_text(), re.M))


def test_every_module_that_logs_is_found() -> None:
    assert {"agent.chat", "agent.config.resolve", "agent.events.locks", "agent.offline.whisper_stt"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_a_module_logger_is_named_webcall_and_redacts_caller_data(module: str) -> None:
    logger = importlib.import_module(module).logger
    assert isinstance(logger, logging.Logger)
    assert logger.name == "webcall." + module.removeprefix("agent.")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "caller joined", (), None, extra={"pii.x": "Ana"}
    )
    assert any(isinstance(f, RedactCallerData) and f.filter(record) for f in logger.filters)
    assert vars(record)["pii.x"] == REDACTED


@pytest.fixture
def root_handler() -> Iterator[CapturingHandler]:
    handler = CapturingHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        set_redaction(enabled=True)


class CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


FRAMEWORK_EXTRAS = {
    "lk.pii.user_transcript": "my card number is 4111",
    "lk.pii.text": "Hello Ana",
    "gen_ai.input.messages": "[...]",
    "job_request": "JobRequest(metadata=...)",
    "participant": "caller-ana",
    "pii.name": "Ana",
}


def test_a_record_re_emitted_through_the_root_handlers_has_every_caller_key_redacted(
    root_handler: CapturingHandler,
) -> None:
    # A job process's record reaches the main process as a whole record passed to `callHandlers`, which runs the
    # handlers' filters and not the loggers': the filter must sit on the root handler.
    install_redaction(enabled=True)
    framework = logging.getLogger("livekit.agents")
    record = framework.makeRecord(
        framework.name, logging.DEBUG, __file__, 1, "received user transcript", (), None, extra=FRAMEWORK_EXTRAS
    )
    framework.callHandlers(record)
    assert root_handler.records == [record]
    assert {key: vars(record)[key] for key in FRAMEWORK_EXTRAS} == dict.fromkeys(FRAMEWORK_EXTRAS, REDACTED)


def test_with_redaction_off_the_root_handler_passes_caller_keys_unchanged(root_handler: CapturingHandler) -> None:
    install_redaction(enabled=False)
    framework = logging.getLogger("livekit.agents")
    record = framework.makeRecord(framework.name, logging.INFO, __file__, 1, "x", (), None, extra=FRAMEWORK_EXTRAS)
    framework.callHandlers(record)
    assert vars(root_handler.records[0])["lk.pii.text"] == "Hello Ana"


def test_installing_twice_attaches_the_filter_once(root_handler: CapturingHandler) -> None:
    install_redaction(enabled=True)
    install_redaction(enabled=True)
    assert sum(isinstance(f, RedactCallerData) for f in root_handler.filters) == 1


@pytest.mark.parametrize(
    "key", ["room", "job_id", "code", "field", "lk.agent_state", "duration_s"], ids=lambda k: str(k)
)
def test_operational_keys_are_not_caller_data(key: str) -> None:
    assert not is_caller_data(key)


def test_a_warning_about_a_canonical_field_logs_it_plainly() -> None:
    assert warning_fields(warn("clamped", "limits.max_duration_s")) == {
        "code": "clamped",
        "field": "limits.max_duration_s",
    }


def test_a_warning_naming_an_input_key_logs_it_under_a_redacted_key() -> None:
    # a variable's name (or an unknown key) may be the caller's own words
    assert warning_fields(warn("caller_not_allowed", "variables.ana_4111")) == {
        "code": "caller_not_allowed",
        "pii.field": "variables.ana_4111",
    }


def test_no_module_makes_a_logger_of_its_own_outside_get_logger() -> None:
    # The framework's loggers (livekit.*) and the root logger are configured, never logged to, by our modules.
    own = re.compile(r"logging\.getLogger\((?!\)|\"livekit)")
    makers = [_module(p) for p in AGENT.rglob("*.py") if p.name != "log.py" and own.search(p.read_text())]
    assert makers == []
