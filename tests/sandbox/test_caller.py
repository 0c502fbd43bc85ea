"""``python -m sandbox call``, the QA caller: its command line, and real calls through the sandbox server.

The calls run the command as a child process exactly as QA types it, against the sandbox server process, the fake
providers (in this test's event loop, so the child is awaited, never blocked on) and ``python -m agent start``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from livekit import api

from sandbox.caller import CallerError, Preset, Step, plan_from_args
from sandbox.server.process import ServerProcess
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.stack import room_name

E2E = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SECRET = "qa-secret-that-must-not-leak"


@dataclass
class CallResult:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        parsed = json.loads(self.stdout)
        assert isinstance(parsed, dict)
        return parsed


async def call(
    *args: str,
    server: ServerProcess | None = None,
    url: str = "",
    within_s: float = 120,
    command: tuple[str, ...] = ("sandbox", "call"),
) -> CallResult:
    """Run ``python -m sandbox call ARGS`` (or another ``command``) with the server's credentials in the
    environment, as QA would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    if server is not None:
        env |= {"LIVEKIT_URL": server.url, "LIVEKIT_API_KEY": server.api_key, "LIVEKIT_API_SECRET": server.api_secret}
    if url:
        env |= {"LIVEKIT_URL": url, "LIVEKIT_API_SECRET": SECRET}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *command,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), within_s)
    assert process.returncode is not None
    return CallResult(code=process.returncode, stdout=stdout.decode(), stderr=stderr.decode())


def audible_seconds(path: Path, *, rms_threshold: float = 300.0) -> float:
    """Seconds of 20 ms windows of a 16-bit mono WAV louder than the threshold."""
    with wave.open(str(path)) as recorded:
        assert recorded.getsampwidth() == 2
        assert recorded.getnchannels() == 1
        rate = recorded.getframerate()
        samples = np.frombuffer(recorded.readframes(recorded.getnframes()), dtype=np.int16).astype(np.float32)
    window = rate // 50
    frames = samples[: len(samples) // window * window].reshape(-1, window)
    return float((np.sqrt((frames**2).mean(axis=1)) > rms_threshold).sum()) * 0.02


# ---------------------------------------------------------------------------------------------------------------------
# The command line, without a server.


def test_steps_keep_the_order_they_were_given_in() -> None:
    plan = plan_from_args(["--say", "one", "--type", "two", "--say", "three"], env={})
    assert plan.steps == (Step("say", "one"), Step("type", "two"), Step("say", "three"))


def test_metadata_can_be_read_from_a_file_and_is_sent_as_written(tmp_path: Path) -> None:
    document = tmp_path / "job.json"
    document.write_text('{"agent_id":  "support"}\n')
    plan = plan_from_args(["--metadata", f"@{document}", "--room-metadata", '{"welcome": {"text": "Hi"}}'], env={})
    assert plan.metadata == '{"agent_id":  "support"}\n'
    assert plan.room_metadata == '{"welcome": {"text": "Hi"}}'


def test_the_server_and_keys_come_from_the_environment_else_the_sandbox_defaults() -> None:
    default = plan_from_args([], env={})
    assert (default.url, default.api_key, default.api_secret) == ("ws://127.0.0.1:7880", "devkey", "secret")
    assert default.room.startswith("qa-")
    assert default.agent_name == "webcall-agent"
    given = plan_from_args(
        [], env={"LIVEKIT_URL": "wss://lk.example", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": SECRET}
    )
    assert (given.url, given.api_key, given.api_secret) == ("wss://lk.example", "k", SECRET)
    assert SECRET not in repr(given)


def test_wait_barge_in_and_leave_are_steps_and_leave_must_come_last() -> None:
    plan = plan_from_args(["--barge-in", "stop", "--wait", "1.5", "--type", "bye", "--leave"], env={})
    assert plan.steps == (Step("barge_in", "stop"), Step("wait", seconds=1.5), Step("type", "bye"), Step("leave"))
    with pytest.raises(CallerError):
        plan_from_args(["--leave", "--type", "too late"], env={})


def test_a_preset_fills_what_the_command_line_leaves_unset_and_attributes_add_up() -> None:
    preset = Preset(room="scaiwave-c1", metadata='{"call_id": "c1"}', attributes={"a": "1", "b": "2"})
    plan = plan_from_args(["--attributes", "b=3", "--metadata", "{}"], env={}, preset=preset)
    assert (plan.room, plan.metadata, plan.room_metadata) == ("scaiwave-c1", "{}", None)
    assert plan.attributes == {"a": "1", "b": "3"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--metadata", "{not json"],
        ["--room-metadata", "[1,"],
        ["--metadata", "@/nonexistent/job.json"],
        ["--attributes", "no-equals-sign"],
        ["--timeout", "0"],
        ["--listen", "soon"],
        ["--wait", "-1"],
        ["--no-such-option"],
        ["--example", "config/examples/vaani/documented_body.json"],
    ],
    ids=[
        "bad-json",
        "bad-room-json",
        "missing-file",
        "bad-attribute",
        "zero-timeout",
        "bad-number",
        "negative-wait",
        "unknown-option",
        "example-is-agent-qa-call",
    ],
)
def test_unusable_arguments_are_refused_before_any_call(argv: list[str]) -> None:
    with pytest.raises(CallerError):
        plan_from_args(argv, env={})


async def test_bad_json_exits_2_with_one_line_on_stderr() -> None:
    result = await call("--metadata", '{"agent_id": ', url="ws://127.0.0.1:9")
    assert result.code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--metadata" in result.stderr
    assert "Traceback" not in result.stderr


async def test_an_unreachable_server_exits_2_with_one_line_and_no_secret() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    result = await call("--timeout", "2", url=f"ws://127.0.0.1:{port}", within_s=30)
    assert result.code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert SECRET not in result.stderr


async def test_refused_credentials_exit_2_without_the_secret(sandbox_server_process: ServerProcess) -> None:
    result = await call("--timeout", "2", url=sandbox_server_process.url, within_s=30)
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "unauthenticated" in lines[0]
    assert SECRET not in result.stderr


async def test_with_no_agent_running_the_call_exits_1_and_says_nothing_was_heard(
    sandbox_server_process: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "agent.wav"
    result = await call(
        "--timeout", "3", "--listen", "0", "--record", str(out), "--type", "hello?", server=sandbox_server_process
    )
    assert result.code == 1, result.stderr
    report = result.report
    assert report["ok"] is False
    assert report["welcome"] == {"text": None, "first_audio_s": None, "first_text_s": None}
    assert report["agent"]["identity"] is None
    assert report["steps"] == [], "the script waits for a welcome that never came"
    assert report["dispatch_id"]
    assert report["room_deleted"] is True
    assert audible_seconds(out) == 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Real calls: sandbox server, fake providers and the worker.


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(WEBCALL_CALLER_ALLOWED_FIELDS="variables.customer_name,language,tts.speed") as running:
        yield running


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_typed_and_spoken_steps_get_the_fake_llms_echo_in_order(stack: Stack) -> None:
    first_request = len(stack.openai.requests)
    result = await call(
        "--metadata",
        json.dumps({"welcome": {"text": "Hello.", "interruptible": True}}),
        "--type",
        "What are your opening hours?",
        "--say",
        "Do you have a table for four tonight?",
        "--listen",
        "0.5",
        server=stack.server,
    )

    assert result.code == 0, result.stderr
    typed, said = result.report["steps"]
    assert (typed["action"], said["action"]) == ("type", "say")
    assert typed["reply"] == "You said: What are your opening hours?"
    assert typed["at_s"] <= typed["reply_s"] <= said["at_s"]
    assert said["reply"].startswith("You said:")
    assert "table" in said["reply"].lower(), "the espeak utterance went through the microphone, STT and LLM"
    heard_caller = [s for s in result.report["transcript"] if s["speaker"] == "caller"]
    assert heard_caller, "the agent's transcription of the caller is reported as the caller's"
    assert "table" in heard_caller[0]["text"].lower()
    asked = [
        [str(m["content"]) for m in body["messages"] if m["role"] == "user"]
        for body in (r.json for r in stack.openai.requests[first_request:] if r.path == "/v1/chat/completions")
        if isinstance(body, dict)
    ]
    assert "What are your opening hours?" in asked[0], "the typed step reached the LLM first"
    assert any("table" in question.lower() for question in asked[-1]), "then the spoken one"


@pytest.mark.e2e
@pytest.mark.asyncio(loop_scope="module")
async def test_room_metadata_and_caller_attributes_reach_the_agent_and_keep_leaves_the_room(
    stack: Stack, tmp_path: Path
) -> None:
    room_document = tmp_path / "room.json"
    room_document.write_text(json.dumps({"welcome": {"text": "Hi {{customer_name | there}}, this is the room."}}))
    room = room_name("qa-keep")
    result = await call(
        "--room",
        room,
        "--room-metadata",
        f"@{room_document}",
        "--attributes",
        "webcall.variables.customer_name=Ada",
        "--listen",
        "0",
        "--keep",
        server=stack.server,
    )
    try:
        assert result.code == 0, result.stderr
        assert result.report["welcome"]["text"] == "Hi Ada, this is the room."
        assert result.report["room_deleted"] is False
        rooms = await stack.lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
        assert [r.metadata for r in rooms.rooms] == [room_document.read_text()]
    finally:
        await stack.lk.room.delete_room(api.DeleteRoomRequest(room=room))
