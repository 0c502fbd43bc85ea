"""The suite's own guarantee: a test that overruns its bound fails with its name instead of hanging the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

HANGING_TESTS = """
import asyncio
import time

import pytest


async def _busy() -> None:
    while True:
        time.sleep(0.02)  # keeps the loop in another task's frame most of the time
        await asyncio.sleep(0)


@pytest.mark.timeout(2)
async def test_waits_forever_while_another_task_runs() -> None:
    task = asyncio.create_task(_busy())
    await asyncio.get_running_loop().create_future()
    task.cancel()


@pytest.mark.timeout(2)
async def test_raises_its_own_timeout() -> None:
    await asyncio.wait_for(asyncio.sleep(10), 0.05)


async def test_finishes() -> None:
    await asyncio.sleep(0)
"""

CONFTEST = """
pytest_plugins = ["tests.plugins.bounded_tests"]
"""

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout = 300
"""


def _run_inner_suite(tmp_path: Path) -> dict[str, str]:
    """Runs the inner suite; returns each test's outcome: "passed" or its failure message."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(HANGING_TESTS))
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text(INI)
    root = Path(__file__).resolve().parents[2]
    report = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", str(tmp_path)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        failure = case.find("failure")
        outcomes[case.attrib["name"]] = "passed" if failure is None else failure.attrib.get("message", "")
    return outcomes


def test_an_async_test_waiting_forever_fails_by_name_while_another_task_holds_the_loop(tmp_path: Path) -> None:
    outcomes = _run_inner_suite(tmp_path)
    assert outcomes["test_waits_forever_while_another_task_runs"].startswith("Failed: test timed out after 2 s")
    assert outcomes["test_finishes"] == "passed"


def test_a_timeout_error_the_test_raises_itself_is_reported_as_its_own(tmp_path: Path) -> None:
    outcomes = _run_inner_suite(tmp_path)
    assert outcomes["test_raises_its_own_timeout"].startswith("TimeoutError")
