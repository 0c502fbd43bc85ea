"""The resolved config as the dev page shows it: the `CallConfig` JSON with the caller's data replaced.

Caller data is what the call events treat as content (`agent.events.payload`): prompt variables, pre-call
variables, the caller's name, the platform metadata's values and the recorded-but-unused fields. Their values become
``"[redacted]"`` (keys stay, so the provenance still reads), and where a variable's value was templated into the
instructions or the welcome, that text is replaced there too. Provenance, warnings, models, voices and limits stay.
"""

from __future__ import annotations

from typing import Final

from agent.config.call_config import CallConfig
from agent.log import REDACTED

# Shorter values ("", "a") would blank unrelated text when replaced inside the instructions.
MIN_REPLACED_CHARS: Final = 2


def redacted_config(config: CallConfig) -> dict[str, object]:
    """`config` as JSON with caller data replaced (see the module docstring)."""
    values = [*config.variables.values(), *config.call.pre_call_variables.values()]
    if config.call.participant_name:
        values.append(config.call.participant_name)
    call = config.call.model_dump(mode="json")
    call.update(
        participant_name=REDACTED if config.call.participant_name else None,
        pre_call_variables=_blank(config.call.pre_call_variables),
        metadata=_blank(config.call.metadata),
        recorded=_blank(config.call.recorded),
    )
    welcome = config.welcome.model_dump(mode="json")
    welcome["text"] = _without(config.welcome.text, values)
    body = config.model_dump(mode="json")
    body.update(
        call=call,
        welcome=welcome,
        variables=_blank(config.variables),
        instructions=_without(config.instructions, values),
    )
    return body


def _blank(mapping: dict[str, str] | dict[str, object]) -> dict[str, str]:
    return dict.fromkeys(mapping, REDACTED)


def _without(text: str, values: list[str]) -> str:
    # Longest first, so a value containing another is replaced whole.
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_REPLACED_CHARS:
            text = text.replace(value, REDACTED)
    return text
