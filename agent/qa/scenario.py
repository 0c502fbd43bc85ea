"""A QA scenario: one call with a script and expectations, as a YAML file under ``config/scenarios/``.

    name: vaani-documented-body
    description: Vaani's documented token body; the welcome in the configured voice, a typed question echoed.
    example: vaani/documented_body.json     # a golden case (under config/examples/): the call's inputs
    steps:                                  # after the welcome, each once the agent has answered the last
      - type: What are your opening hours?  # lk.chat
      - say: Do you have a table for four?  # espeak-ng into the microphone
      - barge_in: Sorry, one more thing     # spoken as soon as the agent is speaking
      - wait: 1.5                           # seconds of silence
      - leave                               # disconnect (last)
    expect:
      welcome: {heard: true, text: "Hello! How can I help you today?"}
      replies: [{step: 1, contains: opening hours}, {step: 2, matches: "(?i)table"}]
      transcript_contains: [opening hours]
      events: [{type: call.started, dialect: vaani}, {type: call.ended, end_reason: caller_left}]
      config: example                       # or {dotted.field: value, ...}
      instructions_contain: [Mohammed]
      judge: the agent answers the question it was asked   # or a list; an LLM decides (`agent.qa.judge`)

Instead of ``example``, ``call`` gives the inputs inline, in a golden case's keys and forms (``job_metadata``,
``room_metadata``, ``participant_metadata``, ``attributes``, ``room_name``; read by `agent.config.golden`).
``config: example`` checks every observable field of the case's expected config (`OBSERVABLE`); a mapping checks
the fields named. Loading is strict (``extra="forbid"``): a misspelt key is a `ScenarioError`, not a check that
silently passes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.config.golden import GoldenCase, GoldenCaseError, parse_case, read_case
from agent.errors import WebcallError

# The config fields a run can see, and where: the call.started event, the LLM request, the TTS requests, the
# welcome as heard.
OBSERVABLE: Mapping[str, str] = {
    "dialect": "event",
    "agent_id": "event",
    "profile": "event",
    "warnings": "event",
    "instructions": "llm",
    "llm.model": "llm",
    "llm.temperature": "llm",
    "tts.voice": "tts",
    "tts.speed": "tts",
    "welcome.text": "welcome",
}

ScenarioCode = Literal["unreadable", "invalid", "unknown_example", "not_observable"]


class ScenarioError(WebcallError):
    """A scenario file cannot be used. ``problems`` holds locations and type codes, never the file's values."""

    def __init__(self, code: ScenarioCode, *, path: Path, problems: tuple[str, ...] = ()) -> None:
        detail = f": {'; '.join(problems)}" if problems else ""
        super().__init__(f"{path.name}: {code}{detail}")
        self.code = code
        self.path = path
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TypeStep(_Model):
    type: str


class SayStep(_Model):
    say: str


class BargeInStep(_Model):
    barge_in: str


class WaitStep(_Model):
    wait: Annotated[float, Field(ge=0, le=60)]


Step = TypeStep | SayStep | BargeInStep | WaitStep | Literal["leave"]


class WelcomeExpectation(_Model):
    heard: bool = True
    text: str | None = None


class ReplyExpectation(_Model):
    step: Annotated[int, Field(ge=1)]
    """1-based, counting every step."""
    contains: str | None = None
    matches: str | None = None

    @field_validator("matches")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class EventExpectation(BaseModel):
    """``type`` and any number of dotted fields of the event with their expected values."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["call.started", "call.ended"]

    def fields(self) -> dict[str, object]:
        return dict(self.model_extra or {})


class Expectations(_Model):
    welcome: WelcomeExpectation | None = None
    replies: tuple[ReplyExpectation, ...] = ()
    transcript_contains: tuple[str, ...] = ()
    events: tuple[EventExpectation, ...] = ()
    config: Literal["example"] | dict[str, Any] | None = None
    instructions_contain: tuple[str, ...] = ()
    judge: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = ()
    """Criteria a real LLM decides over the call's transcript; skipped without one (`agent.qa.judge`)."""

    @field_validator("judge", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


class ScenarioFile(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,80}$")]
    description: str = ""
    example: str | None = None
    call: dict[str, Any] | None = None
    """The call's inputs as a golden case has them (no ``expected``)."""
    steps: tuple[Step, ...] = ()
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 30.0
    expect: Expectations = Field(default_factory=Expectations)

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioFile:
        if (self.example is None) == (self.call is None):
            raise ValueError("exactly one of example and call")
        if "leave" in self.steps[:-1]:
            raise ValueError("leave must be the last step")
        if any(reply.step > len(self.steps) for reply in self.expect.replies):
            raise ValueError("a reply expectation names a step the scenario does not have")
        if self.expect.config == "example" and self.example is None:
            raise ValueError("config: example needs an example")
        return self


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: the file, where it came from, and its call's inputs as a golden case."""

    path: Path
    spec: ScenarioFile
    case: GoldenCase

    @property
    def name(self) -> str:
        return self.spec.name

    def expected_config(self) -> dict[str, object]:
        """The config fields to check, each observable: the case's (``config: example``) or those named."""
        wanted = self.spec.expect.config
        if wanted == "example":
            return {name: dotted(self.case.expected, name) for name in OBSERVABLE}
        return dict(wanted or {})


def load_scenario(path: Path, *, examples: Path) -> Scenario:
    """Read and check one scenario file; its example is read from ``examples``. Raises `ScenarioError`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise ScenarioError("unreadable", path=path) from None
    try:
        spec = ScenarioFile.model_validate(data)
    except ValidationError as error:
        problems = tuple(f"{'.'.join(str(p) for p in e['loc']) or 'scenario'}: {e['type']}" for e in error.errors())
        raise ScenarioError("invalid", path=path, problems=problems) from None
    named = spec.expect.config if isinstance(spec.expect.config, dict) else {}
    unobservable = sorted(set(named) - set(OBSERVABLE))
    if unobservable:
        raise ScenarioError("not_observable", path=path, problems=tuple(unobservable))
    return Scenario(path=path, spec=spec, case=_case(spec, path=path, examples=examples))


def _case(spec: ScenarioFile, *, path: Path, examples: Path) -> GoldenCase:
    if spec.example is not None:
        # Looked up among the files found, never joined into a path from the scenario's text.
        found = {f"{p.parent.name}/{p.name}": p for p in examples.glob("*/*.json")}
        if spec.example not in found:
            raise ScenarioError("unknown_example", path=path, problems=(spec.example,))
        try:
            return read_case(found[spec.example])
        except GoldenCaseError as error:
            raise ScenarioError("unknown_example", path=path, problems=(str(error),)) from None
    assert spec.call is not None
    try:
        return parse_case({**spec.call, "expected": {}}, path=path)
    except GoldenCaseError as error:
        raise ScenarioError("invalid", path=path, problems=(f"call: {error}",)) from None


def dotted(document: Mapping[str, object], name: str) -> object:
    """The value at a dotted field name (``tts.voice``) of a nested document, ``None`` where there is none."""
    value: object = document
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value
