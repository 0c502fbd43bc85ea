"""`python -m agent resolve`, run as QA runs it: a subprocess, files or stdin, the golden example files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.config.golden import GoldenCase, read_case
from tests.cli.commands import agent_command
from tests.config.conftest import EXAMPLES

SEED_BODY = EXAMPLES / "sawt" / "documented_body.json"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return agent_command("resolve", *args, stdin=stdin)


def example(name: str) -> GoldenCase:
    return read_case(EXAMPLES / name)


def write_json(path: Path, value: object) -> str:
    """A file holding ``value``: a string as written (a document's text), anything else as JSON."""
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return str(path)


def test_resolve_prints_the_expected_config_for_a_seed_body_file(tmp_path: Path) -> None:
    case = example("sawt/documented_body.json")
    result = run("--job-metadata", write_json(tmp_path / "job.json", case.job_metadata))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == case.expected


def test_resolve_reads_job_metadata_from_stdin(tmp_path: Path) -> None:
    case = example("convoi/with_overrides.json")
    result = run("--job-metadata", "-", stdin=case.job_metadata)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == case.expected


def test_resolve_combines_room_metadata_and_attributes_files(tmp_path: Path) -> None:
    case = example("native/precedence.json")
    result = run(
        "--job-metadata",
        write_json(tmp_path / "job.json", case.job_metadata),
        "--room-metadata",
        write_json(tmp_path / "room.json", case.room_metadata),
        "--attributes",
        write_json(tmp_path / "attributes.json", dict(case.attributes)),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == case.expected


def test_resolve_reads_room_metadata_from_stdin_too(tmp_path: Path) -> None:
    case = example("scaiwave/initiate_in_room.json")
    empty = write_json(tmp_path / "job.json", "")
    result = run(
        "--job-metadata",
        empty,
        "--room-metadata",
        "-",
        "--room-name",
        "scaiwave-call-4d2e9a",
        stdin=case.room_metadata,
    )
    assert json.loads(result.stdout) == case.expected


def test_strict_exits_1_on_any_warning_and_still_prints_the_config(tmp_path: Path) -> None:
    case = example("convoi/with_overrides.json")
    result = run("--job-metadata", write_json(tmp_path / "job.json", case.job_metadata), "--strict")
    assert result.returncode == 1
    assert json.loads(result.stdout)["warnings"][0]["code"] == "not_allowed"


def test_strict_exits_0_without_warnings(tmp_path: Path) -> None:
    result = run(
        "--job-metadata",
        write_json(tmp_path / "job.json", example("sawt/documented_body.json").job_metadata),
        "--strict",
    )
    assert result.returncode == 0, result.stderr


def test_bad_metadata_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    result = run("--job-metadata", write_json(tmp_path / "job.json", "{not json"))
    assert result.returncode == 0
    assert json.loads(result.stdout)["warnings"][0]["code"] == "invalid_metadata"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_qa_checks_every_example_file_with_the_command(path: Path) -> None:
    result = run("--example", str(path), "--check")
    assert result.returncode == 0, result.stderr


def test_check_exits_1_with_a_diff_when_the_result_differs(tmp_path: Path) -> None:
    case = json.loads((EXAMPLES / "vyom" / "documented_body.json").read_text(encoding="utf-8"))
    case["expected"] = {**case["expected"], "profile": "something-else"}
    result = run("--example", write_json(tmp_path / "case.json", case), "--check")
    assert result.returncode == 1
    assert '-  "profile": "something-else"' in result.stderr


def test_an_examples_env_is_applied_to_the_command() -> None:
    result = run("--example", str(EXAMPLES / "convoi" / "metadata_object_only.json"))
    assert json.loads(result.stdout)["call"]["metadata"] == {"source": "pricing-page", "campaign": "spring"}


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("--job-metadata", "/no/such/file"), None),
        (("--job-metadata", "-", "--room-metadata", "-"), "{}"),
        (("--job-metadata", "-", "--attributes", str(SEED_BODY)), "{}"),
        (("--example", "/no/such/file"), None),
        ((), None),
    ],
    ids=["missing-file", "two-stdins", "attributes-not-strings", "missing-example", "no-input"],
)
def test_unusable_command_lines_exit_2(args: tuple[str, ...], stdin: str | None) -> None:
    assert run(*args, stdin=stdin).returncode == 2
