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


def _pytest_in(tmp_path: Path, *, tests: str, conftest: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Runs pytest on `tests` (as ``test_inner.py``) in a process of its own; bounded far below any hang."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(tests))
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "pytest.ini").write_text(INI)
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _run_inner_suite(tmp_path: Path) -> dict[str, str]:
    """Runs the inner suite; returns each test's outcome: "passed" or its failure message."""
    report = tmp_path / "report.xml"
    _pytest_in(tmp_path, tests=HANGING_TESTS, conftest=CONFTEST, args=[f"--junitxml={report}", str(tmp_path)])
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


BLOCKING_TESTS = """
import asyncio
import time

import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def never_ready() -> None:
    await asyncio.get_running_loop().create_future()


@pytest.mark.timeout(1)
async def test_blocks_its_event_loop_in_a_synchronous_call() -> None:
    time.sleep(3600)


@pytest.mark.timeout(1)
async def test_waits_on_a_fixture_that_never_finishes(never_ready: None) -> None:
    pass


@pytest.mark.timeout(1)
def test_sleeps_synchronously() -> None:
    time.sleep(3600)
"""

# A short backstop, so that a run the thread method ends takes seconds here.
BLOCKING_CONFTEST = """
from tests.plugins import bounded_tests

bounded_tests.BACKSTOP_S = 2.0
pytest_plugins = ["tests.plugins.bounded_tests"]
"""


def _run_one(tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    """Runs one test of `BLOCKING_TESTS` in a pytest of its own."""
    return _pytest_in(tmp_path, tests=BLOCKING_TESTS, conftest=BLOCKING_CONFTEST, args=[f"test_inner.py::{name}"])


def test_an_async_test_blocking_its_event_loop_ends_the_run_with_its_name_after_the_backstop(tmp_path: Path) -> None:
    run = _run_one(tmp_path, "test_blocks_its_event_loop_in_a_synchronous_call")
    assert run.returncode != 0
    assert "Timeout: test_inner.py::test_blocks_its_event_loop_in_a_synchronous_call ran over 3 s" in run.stdout
    assert "in test_blocks_its_event_loop_in_a_synchronous_call" in run.stdout, "the stack dump shows where it is"


def test_an_async_fixture_that_never_finishes_ends_the_run_with_the_tests_name(tmp_path: Path) -> None:
    run = _run_one(tmp_path, "test_waits_on_a_fixture_that_never_finishes")
    assert run.returncode != 0
    assert "Timeout: test_inner.py::test_waits_on_a_fixture_that_never_finishes ran over 3 s" in run.stdout


def test_a_synchronous_test_that_overruns_fails_by_name_and_the_run_goes_on(tmp_path: Path) -> None:
    run = _run_one(tmp_path, "test_sleeps_synchronously")
    assert run.returncode == 1
    assert "FAILED test_inner.py::test_sleeps_synchronously - Failed: Timeout" in run.stdout
