"""The QA scenarios' optional LLM judge: when it runs, what it sends (OpenAI's chat completion wire format, checked
on the sandbox's fake OpenAI server), how its answers are read, and the ``skipped`` status without an LLM."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from agent.qa.checks import Check
from agent.qa.judge import NOT_CONFIGURED, OPENAI_URL, JudgeSettings, judge_checks, parse_verdict, transcript_lines
from agent.qa.output import junit_xml, summary_table
from agent.qa.runner import Outcome
from agent.qa.scenario import load_scenario
from sandbox.providers.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"

REPORT: Mapping[str, Any] = {
    "transcript": [
        {"speaker": "agent", "topic": "lk.transcription", "text": "Hello, Harbor Clinic.", "at_s": 1.0, "final": True},
        {"speaker": "agent", "topic": "lk.transcription", "text": "We have Tuesday at", "at_s": 4.0, "final": False},
        {"speaker": "agent", "topic": "lk.transcription", "text": "We have Tuesday at 9.", "at_s": 4.1, "final": True},
    ],
    "steps": [
        {"action": "type", "text": "Can I see a doctor this week?", "at_s": 3.0, "reply": "We have Tuesday at 9."}
    ],
}


def test_the_judge_reads_the_call_in_time_order_with_typed_messages_and_final_segments_only() -> None:
    assert transcript_lines(REPORT) == (
        "agent: Hello, Harbor Clinic.\ncaller: Can I see a doctor this week?\nagent: We have Tuesday at 9."
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        # a run against the sandbox: OPENAI_BASE_URL is the fakes', whose LLM echoes
        ({"OPENAI_API_KEY": "sandbox", "OPENAI_BASE_URL": "http://127.0.0.1:7890/v1"}, None),
        ({"OPENAI_API_KEY": "sk-real"}, JudgeSettings(base_url=OPENAI_URL, api_key="sk-real")),
        (
            {"WEBCALL_QA_JUDGE_BASE_URL": "http://127.0.0.1:11434/v1/", "WEBCALL_QA_JUDGE_MODEL": "llama3.2"},
            JudgeSettings(base_url="http://127.0.0.1:11434/v1", model="llama3.2"),
        ),
    ],
    ids=["nothing", "sandbox-fakes", "openai-key", "judge-url"],
)
def test_the_judge_is_configured_only_by_a_real_llm_in_the_environment(
    env: dict[str, str], expected: JudgeSettings | None
) -> None:
    assert JudgeSettings.from_env(env) == expected


def test_the_judges_key_is_never_shown() -> None:
    assert "sk-secret" not in repr(JudgeSettings(base_url=OPENAI_URL, api_key="sk-secret"))


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ('{"verdict": "pass", "reason": "Tuesday at 9 is offered"}', (True, "Tuesday at 9 is offered")),
        ('```json\n{"verdict": "FAIL", "reason": "no time offered"}\n```', (False, "no time offered")),
        ('Here you go: {"note": 1} then {"verdict": "pass"}', (True, "")),
        ("PASS: the agent offers Tuesday.", (True, "the agent offers Tuesday")),
        ("fail - nothing offered", (False, "nothing offered")),
        ('{"verdict": "maybe"}', None),
        ("I think the agent did fine overall.", None),
        ("", None),
    ],
    ids=["json", "fenced-json", "second-object", "pass-word", "fail-word", "unknown-verdict", "prose", "empty"],
)
def test_a_verdict_is_read_from_json_or_a_leading_word_and_nothing_else(
    answer: str, verdict: tuple[bool, str] | None
) -> None:
    assert parse_verdict(answer) == verdict


async def test_without_an_llm_each_criterion_is_a_skipped_check_that_says_why() -> None:
    checks = await judge_checks(("offers an appointment", "is polite"), REPORT, settings=None)
    assert [(c.name, c.status, c.reason) for c in checks] == [
        ("judge[1]", "skipped", NOT_CONFIGURED),
        ("judge[2]", "skipped", NOT_CONFIGURED),
    ]


async def test_each_criterion_is_one_chat_completion_in_openais_wire_format_and_its_verdict_is_the_check() -> None:
    async with FakeOpenAI() as server:
        server.script('{"verdict": "pass", "reason": "Tuesday at 9"}', '{"verdict": "fail", "reason": "curt"}')
        settings = JudgeSettings(base_url=server.base_url, model="judge-model", api_key="sk-judge")
        checks = await judge_checks(("offers an appointment", "is warm"), REPORT, settings=settings)

        requests = server.requests_to("/v1/chat/completions")
    assert [(c.name, c.status) for c in checks] == [("judge[1]", "pass"), ("judge[2]", "fail")]
    assert checks[1].reason == "'is warm': curt"
    assert [r.method for r in requests] == ["POST", "POST"]
    assert {r.auth_scheme for r in requests} == {"Bearer"}
    body = requests[0].json
    assert isinstance(body, dict)
    assert (body["model"], body["temperature"], body.get("stream", False)) == ("judge-model", 0, False)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "JSON" in body["messages"][0]["content"]
    user = body["messages"][1]["content"]
    assert user.startswith("Criterion: offers an appointment\n")
    assert user.endswith(transcript_lines(REPORT))


async def test_a_judge_that_fails_or_answers_nonsense_fails_its_check_without_the_servers_message() -> None:
    async with FakeOpenAI() as server:
        server.fail_next(500, path="/v1/chat/completions")
        server.script("The call went well.")
        settings = JudgeSettings(base_url=server.base_url, api_key="sk-judge")
        failed, unreadable = await judge_checks(("offers", "offers again"), REPORT, settings=settings)

    assert (failed.status, failed.reason) == ("fail", "the judge's request failed (InternalServerError)")
    assert unreadable.status == "fail"
    assert unreadable.reason.startswith("the judge's answer says neither pass nor fail")


def test_a_scenario_takes_one_criterion_or_a_list(tmp_path: Path) -> None:
    base = "name: judged\nexample: sawt/documented_body.json\nsteps: [{type: hi}]\nexpect:\n"
    one = tmp_path / "one.yaml"
    one.write_text(base + "  judge: the agent greets the caller\n", encoding="utf-8")
    many = tmp_path / "many.yaml"
    many.write_text(base + "  judge: [greets the caller, answers in English]\n", encoding="utf-8")

    assert load_scenario(one, examples=EXAMPLES).spec.expect.judge == ("the agent greets the caller",)
    assert load_scenario(many, examples=EXAMPLES).spec.expect.judge == ("greets the caller", "answers in English")


def test_a_skipped_judge_neither_passes_nor_fails_its_scenario_and_the_outputs_say_skipped(tmp_path: Path) -> None:
    path = tmp_path / "judged.yaml"
    path.write_text("name: judged\nexample: sawt/documented_body.json\nexpect: {judge: polite}\n", encoding="utf-8")
    scenario = load_scenario(path, examples=EXAMPLES)
    skipped = Check("judge[1]", False, NOT_CONFIGURED, skipped=True)
    passing = Outcome(scenario=scenario, checks=(Check("welcome.heard", True), skipped), seconds=1.0, room="qa-a")
    only_skipped = Outcome(scenario=scenario, checks=(skipped,), seconds=1.0, room="qa-b")

    assert passing.ok
    assert passing.failures() == []
    assert not only_skipped.ok, "a scenario that checked nothing does not pass"
    table = summary_table([passing])
    assert list(table.columns[2].cells) == ["1/1, 1 skipped"]
    case = ET.fromstring(junit_xml([passing])).find("testsuite/testcase")
    assert case is not None
    assert case.find("failure") is None
    system_out = case.find("system-out")
    assert system_out is not None
    assert f"judge[1] skipped ({NOT_CONFIGURED})" in (system_out.text or "")
