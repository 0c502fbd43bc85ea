"""``python -m agent qa run``: the shipped scenarios pass against the sandbox stack, a failing one fails the run
and says why; scenario files that cannot be used are refused before any call."""

from __future__ import annotations

import asyncio
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agent.qa.checks import Check
from agent.qa.judge import NOT_CONFIGURED
from agent.qa.output import junit_xml
from agent.qa.run import load_all
from agent.qa.runner import Outcome
from agent.qa.scenario import ScenarioError, load_scenario
from tests.qa.conftest import QAStack

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "config" / "examples"
SHIPPED = sorted((REPO / "config" / "scenarios").glob("*.yaml"))
FAILING = Path(__file__).parent / "scenarios" / "failing.yaml"
DIALECTS = {"native", "sawt", "convoi", "vaani", "vyom", "scaiwave"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_dialect_has_a_shipped_scenario_built_from_its_golden_examples() -> None:
    scenarios = load_all(SHIPPED, examples=EXAMPLES)
    from_examples = [s for s in scenarios if s.spec.example is not None]
    assert {s.case.dialect for s in from_examples} == DIALECTS
    assert all(s.spec.expect.config == "example" for s in from_examples), "each checks its case's whole config"
    assert len({s.name for s in scenarios}) == len(scenarios), "names are unique (JUnit test case names)"


def test_a_misspelt_expectation_is_refused_with_its_location(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nexample: vyom/documented_body.json\nexpect: {welcom: {heard: true}}\n")
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path, examples=EXAMPLES)
    assert raised.value.code == "invalid"
    assert raised.value.problems == ("expect.welcom: extra_forbidden",)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("name: x\nexample: vyom/none.json\n", "unknown_example"),
        ("name: x\nexample: ../../etc/passwd\n", "unknown_example"),
        ("name: x\nexample: vyom/documented_body.json\nexpect: {config: {stt.model: nova-3}}\n", "not_observable"),
        ("name: x\ncall: {job_metadata: {}}\nsteps: [leave, {type: hi}]\n", "invalid"),
        ("name: x\ncall: {job_metadata: {}, secret: 1}\n", "invalid"),
        ("name: [x\n", "unreadable"),
    ],
    ids=["unknown-example", "path-outside", "unobservable-field", "leave-not-last", "not-a-case-key", "not-yaml"],
)
def test_a_scenario_that_cannot_be_used_is_refused(tmp_path: Path, text: str, code: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(write(tmp_path, text), examples=EXAMPLES)
    assert raised.value.code == code


def test_junit_xml_carries_each_failed_check_with_its_reason() -> None:
    scenario = load_scenario(FAILING, examples=EXAMPLES)
    checks = (Check("welcome.heard", True), Check("reply[1].contains", False, "'We open at nine' not in 'You said'"))
    outcome = Outcome(scenario=scenario, checks=checks, seconds=1.5, room="qa-x")

    suite = ET.fromstring(junit_xml([outcome])).find("testsuite")

    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "reply[1].contains"
    assert failure.text == "reply[1].contains: 'We open at nine' not in 'You said'"


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="package")
async def test_the_shipped_scenarios_pass_on_the_sandbox_and_the_failing_one_fails_with_its_reason(
    qa_stack: QAStack, tmp_path: Path
) -> None:
    junit = tmp_path / "qa.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_", "DEEPGRAM_", "WEBCALL_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent",
        "qa",
        "run",
        *map(str, SHIPPED),
        str(FAILING),
        "--junit",
        str(junit),
        env={**env, **qa_stack.env(), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 480)
    output = stdout.decode()

    assert process.returncode == 1, stderr.decode()[-3000:]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert len(cases) == len(SHIPPED) + 1
    failed = {name: case.find("failure") for name, case in cases.items() if case.find("failure") is not None}
    assert set(failed) == {"deliberately-failing"}, {n: f.text for n, f in failed.items() if f is not None}
    reason = failed["deliberately-failing"]
    assert reason is not None
    assert reason.get("message") == "reply[1].contains"
    assert "'We open at nine' not in 'You said: What are your opening hours?'" in (reason.text or "")
    assert f"{len(SHIPPED)}/{len(SHIPPED) + 1} scenarios passed" in output
    # no LLM for the judge here: its check is skipped, and the scenario passes on the others
    judged = cases["sawt-documented-body"].find("system-out")
    assert judged is not None
    assert f"judge[1] skipped ({NOT_CONFIGURED})" in (judged.text or "")
    assert "pass sawt-documented-body" in output
    assert "skipped: judge[1]" in output
    assert "FAIL deliberately-failing" in output
