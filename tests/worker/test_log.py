"""Every logger of the agent's modules is named ``webcall.<module>`` and carries the caller-data redaction."""

from __future__ import annotations

import importlib
import logging

import pytest

from agent.log import REDACTED, RedactCallerData

MODULES = ["agent.chat", "agent.knowledge", "agent.subscriptions", "agent.worker", "agent.call", "agent.conversation"]


@pytest.mark.parametrize("module", MODULES, ids=MODULES)
def test_a_module_logger_is_named_webcall_and_redacts_caller_data(module: str) -> None:
    logger = importlib.import_module(module).logger
    assert isinstance(logger, logging.Logger)
    assert logger.name.startswith("webcall.")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "caller joined", (), None, extra={"pii.x": "Ana"}
    )
    assert any(isinstance(f, RedactCallerData) and f.filter(record) for f in logger.filters)
    assert vars(record)["pii.x"] == REDACTED
