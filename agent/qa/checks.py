"""The verdicts of one scenario: each expectation against what the caller got (the `sandbox.caller` report), what
the providers were asked (`ProviderRequests`) and the events the worker emitted (`CallEvents`).

Every check yields a `Check` with a stable name (``welcome.heard``, ``reply[2].contains``, ``config.tts.voice``,
``event.call.ended.end_reason``...) and, when it fails, the reason: what was expected and what was seen instead.
A check whose evidence cannot be observed fails, so a scenario never passes on what nobody looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from agent.qa.observe import CallEvents, ProviderRequests
from agent.qa.scenario import OBSERVABLE, Scenario, dotted

SHOWN_CHARS = 120


@dataclass(frozen=True)
class Check:
    """One verdict. A skipped check (the LLM judge with no LLM configured) neither passes nor fails: `reason` says
    why it did not run."""

    name: str
    ok: bool
    reason: str = ""
    skipped: bool = False

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else "pass" if self.ok else "fail"


@dataclass(frozen=True)
class Evidence:
    """Everything one call left to look at."""

    report: Mapping[str, Any]
    requests: ProviderRequests
    events: CallEvents


def evaluate(scenario: Scenario, evidence: Evidence) -> list[Check]:
    """Every check of ``scenario``, in the order the scenario lists its expectations."""
    expect = scenario.spec.expect
    checks = list(_welcome(scenario, evidence.report))
    checks += _replies(scenario, evidence.report)
    transcript = " ".join(str(s.get("text", "")) for s in evidence.report.get("transcript", ()))
    for text in expect.transcript_contains:
        checks.append(_contains("transcript.contains", transcript, text))
    checks += _events(scenario, evidence.events)
    checks += _config(scenario, evidence)
    for text in expect.instructions_contain:
        prompt = evidence.requests.system_prompt()
        if prompt is None:
            checks.append(Check("instructions.contains", False, _no_llm(evidence.requests)))
        else:
            checks.append(_contains("instructions.contains", prompt, text))
    return checks


def _welcome(scenario: Scenario, report: Mapping[str, Any]) -> Iterator[Check]:
    wanted = scenario.spec.expect.welcome
    if wanted is None:
        return
    welcome = report.get("welcome") or {}
    if wanted.heard:
        heard = welcome.get("first_audio_s") is not None
        yield Check("welcome.heard", heard, "" if heard else "no audible agent audio before the timeout")
    if wanted.text is not None:
        yield _equal("welcome.text", _words(welcome.get("text")), _words(wanted.text))


def _replies(scenario: Scenario, report: Mapping[str, Any]) -> Iterator[Check]:
    steps = list(report.get("steps") or ())
    for wanted in scenario.spec.expect.replies:
        name = f"reply[{wanted.step}]"
        reply = steps[wanted.step - 1].get("reply") if wanted.step <= len(steps) else None
        if reply is None:
            reason = "no reply" if wanted.step <= len(steps) else "the step did not run (no welcome?)"
            yield Check(name, False, reason)
            continue
        if wanted.contains is not None:
            yield _contains(f"{name}.contains", str(reply), wanted.contains)
        if wanted.matches is not None:
            found = re.search(wanted.matches, str(reply)) is not None
            yield Check(f"{name}.matches", found, "" if found else f"{_shown(reply)} does not match {wanted.matches!r}")


def _events(scenario: Scenario, events: CallEvents) -> Iterator[Check]:
    for wanted in scenario.spec.expect.events:
        name = f"event.{wanted.type}"
        if events.unobservable:
            yield Check(name, False, events.unobservable)
            continue
        found = events.of_type(wanted.type)
        yield Check(name, bool(found), "" if found else f"no {wanted.type} event for the room")
        for field, value in wanted.fields().items():
            if found:
                yield _equal(f"{name}.{field}", dotted(found[-1], field), value)


def _config(scenario: Scenario, evidence: Evidence) -> Iterator[Check]:
    for field, value in scenario.expected_config().items():
        seen = _observe(field, evidence)
        name = f"config.{field}"
        if isinstance(seen, _Unseen):
            yield Check(name, False, seen.reason)
        elif isinstance(seen, _AskedFor):
            # The welcome may be synthesized before the caller's attributes are read, with a voice the final
            # config drops: the configured one must be among those asked for.
            ok = value in seen.values
            yield Check(name, ok, "" if ok else f"expected {value!r}, TTS was asked for {seen.values!r}")
        elif field == "warnings":
            yield _equal(name, seen, _codes(value))
        elif field == "welcome.text":
            yield _equal(name, seen, _words(value))
        else:
            yield _equal(name, seen, value)


@dataclass(frozen=True)
class _Unseen:
    reason: str


@dataclass(frozen=True)
class _AskedFor:
    """A TTS field's value in each TTS request."""

    values: list[object]


def _observe(field: str, evidence: Evidence) -> object:
    """The value of a config field as the stack showed it, or `_Unseen` with the reason."""
    where = OBSERVABLE[field]
    if where == "event":
        if evidence.events.unobservable:
            return _Unseen(evidence.events.unobservable)
        started = evidence.events.of_type("call.started")
        if not started:
            return _Unseen("no call.started event for the room")
        return _codes(started[-1].get(field)) if field == "warnings" else started[-1].get(field)
    if where == "welcome":
        return _words((evidence.report.get("welcome") or {}).get("text"))
    requests = evidence.requests
    if where == "llm":
        bodies = requests.llm()
        if not bodies:
            return _Unseen(_no_llm(requests))
        if field == "instructions":
            return requests.system_prompt()
        return bodies[0].get(field.removeprefix("llm."))
    tts = requests.tts()
    if not tts:
        return _Unseen(requests.unobservable or "no TTS request seen")
    return _AskedFor([r.get(field.removeprefix("tts.")) for r in tts])


def _no_llm(requests: ProviderRequests) -> str:
    return requests.unobservable or "no LLM request seen (the scenario needs a typed or spoken step)"


def _codes(warnings: object) -> list[tuple[str, str]]:
    if not isinstance(warnings, list):
        return []
    return sorted((str(w.get("code")), str(w.get("field"))) for w in warnings if isinstance(w, dict))


def _equal(name: str, seen: object, wanted: object) -> Check:
    ok = seen == wanted
    return Check(name, ok, "" if ok else f"expected {_shown(wanted)}, got {_shown(seen)}")


def _contains(name: str, text: str, wanted: str) -> Check:
    ok = wanted.casefold() in text.casefold()
    return Check(name, ok, "" if ok else f"{_shown(wanted)} not in {_shown(text)}")


def _words(text: object) -> str | None:
    return " ".join(str(text).split()) if isinstance(text, str) else None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."
