"""``python -m agent qa call --example``: a golden case replayed through the sandbox caller."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from livekit import api

from agent.config.golden import read_case
from agent.qa.replay import preset
from sandbox.caller import plan_from_args
from tests.qa.conftest import QAStack
from tests.sandbox.test_caller import audible_seconds, call

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


def test_a_golden_case_supplies_metadata_attributes_and_the_expected_welcome() -> None:
    case = read_case(EXAMPLES / "sawt" / "caller_attributes.json")
    plan = plan_from_args(["--attributes", "webcall.tts.speed=1.1"], env={}, preset=preset(case))
    assert case.job_metadata is not None
    assert plan.metadata == case.job_metadata
    assert plan.room_metadata is None, "no room metadata in the case: the room is not created with any"
    assert plan.attributes["webcall.variables.customer_name"] == "Mo"
    assert plan.attributes["webcall.tts.speed"] == "1.1", "an explicit attribute wins over the case's"
    assert plan.expected_welcome == case.expected_welcome()


def test_a_golden_cases_deployment_settings_are_carried_into_the_plan() -> None:
    case = read_case(EXAMPLES / "vyom" / "metadata_object_only.json")
    plan = plan_from_args([], env={}, preset=preset(case))
    assert case.env
    assert plan.example_env == case.env


async def test_a_file_that_is_not_a_golden_case_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "case.json"
    bad.write_text(json.dumps({"job_metadata": {}}))
    result = await call("--example", str(bad), url="ws://127.0.0.1:9", command=("agent", "qa", "call"))
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        "agent qa call: --example: not a golden case (no_expected in golden_case)"
    ]


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="package")
async def test_a_vaani_case_is_welcomed_with_its_welcome_message_heard_and_recorded(
    qa_stack: QAStack, tmp_path: Path
) -> None:
    stack = qa_stack.stack
    example = EXAMPLES / "vaani" / "documented_body.json"
    welcome_message = json.loads(example.read_text())["job_metadata"]["welcome_message"]
    out = tmp_path / "agent.wav"
    room = f"qa-vaani-{os.getpid()}"
    result = await call(
        "--example",
        str(example),
        "--room",
        room,
        "--record",
        str(out),
        "--listen",
        "1",
        server=stack.server,
        command=("agent", "qa", "call"),
    )

    assert result.code == 0, result.stderr
    report = result.report
    assert report["ok"] is True
    assert report["welcome"]["text"] == welcome_message
    assert report["welcome"]["as_expected"] is True
    assert 0 < report["agent"]["joined_s"] < report["welcome"]["first_audio_s"] < 30
    assert report["agent"]["attributes"]["lk.agent.state"] in {"listening", "speaking", "thinking"}
    assert "speaking" in [s["state"] for s in report["agent"]["states"]]
    assert [s["speaker"] for s in report["transcript"]] == ["agent"]
    spoken = [r for r in stack.openai.requests if r.path == "/v1/audio/speech" and r.text == welcome_message]
    assert spoken, "the welcome was synthesized by the fake TTS"
    assert audible_seconds(out) > 1.0, "the recording holds the spoken welcome, not silence"
    assert report["audio"]["record_s"] > 1.0
    listed = await stack.lk.room.list_rooms(api.ListRoomsRequest())
    assert room not in [r.name for r in listed.rooms], "the room is deleted at the end"
