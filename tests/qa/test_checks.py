"""`agent.qa.checks` on hand-made evidence: each kind of expectation passes on what matches and fails with a reason
on what does not, and evidence nobody could observe fails its checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.qa.checks import Check, Evidence, evaluate
from agent.qa.observe import CallEvents, ProviderRequests
from agent.qa.scenario import Scenario, load_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
SCENARIO = """
name: checks
example: vyom/documented_body.json
steps: [{type: "What are your opening hours?"}, leave]
expect:
  welcome: {heard: true}
  replies: [{step: 1, contains: opening hours}]
  events: [{type: call.ended, end_reason: caller_left}]
  config: {dialect: vyom, warnings: [], llm.temperature: 0.7, tts.voice: alloy}
  instructions_contain: [John Doe]
"""


def scenario(tmp_path: Path) -> Scenario:
    path = tmp_path / "checks.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path, examples=EXAMPLES)


def evidence(*, reply: str, end_reason: str, voices: tuple[str, ...], llm: bool = True) -> Evidence:
    report: dict[str, Any] = {
        "welcome": {"text": "Hi John Doe!", "first_audio_s": 0.4},
        "steps": [{"action": "type", "reply": reply}, {"action": "leave"}],
        "transcript": [],
    }
    system = {"role": "system", "content": "You are talking to John Doe."}
    body = {"model": "gpt-4o-mini", "temperature": 0.7, "messages": [system]}
    requests = [{"path": "/v1/audio/speech", "voice": voice, "started": 1.0} for voice in voices]
    if llm:
        requests.append({"path": "/v1/chat/completions", "json": body, "started": 2.0})
    events = (
        {"type": "call.started", "dialect": "vyom", "warnings": []},
        {"type": "call.ended", "end_reason": end_reason},
    )
    return Evidence(report=report, requests=ProviderRequests(tuple(requests)), events=CallEvents(events))


def failed(checks: list[Check]) -> dict[str, str]:
    return {check.name: check.reason for check in checks if not check.ok}


def test_matching_evidence_passes_every_check(tmp_path: Path) -> None:
    checks = evaluate(
        scenario(tmp_path),
        evidence(reply="You said: opening hours?", end_reason="caller_left", voices=("nova", "alloy")),
    )
    assert failed(checks) == {}
    assert len(checks) == 9


def test_each_mismatch_fails_its_own_check_with_what_was_seen(tmp_path: Path) -> None:
    checks = evaluate(scenario(tmp_path), evidence(reply="Closed.", end_reason="max_duration", voices=("nova",)))
    assert failed(checks) == {
        "reply[1].contains": "'opening hours' not in 'Closed.'",
        "event.call.ended.end_reason": "expected 'caller_left', got 'max_duration'",
        "config.tts.voice": "expected 'alloy', TTS was asked for ['nova']",
    }


def test_evidence_nobody_could_observe_fails_its_checks(tmp_path: Path) -> None:
    unseen = evidence(reply="You said: opening hours", end_reason="caller_left", voices=(), llm=False)
    blind = Evidence(
        report=unseen.report,
        requests=ProviderRequests(unobservable="not a sandbox fake"),
        events=CallEvents(unobservable="no events directory"),
    )
    reasons = failed(evaluate(scenario(tmp_path), blind))
    assert reasons["event.call.ended"] == "no events directory"
    assert reasons["config.dialect"] == "no events directory"
    assert reasons["config.llm.temperature"] == "not a sandbox fake"
    assert reasons["instructions.contains"] == "not a sandbox fake"
    assert reasons["config.tts.voice"] == "not a sandbox fake"
