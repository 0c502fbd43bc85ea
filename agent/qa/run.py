"""``python -m agent qa run``: run QA scenarios against a running stack and say which passed.

    python -m agent qa run [SCENARIO.yaml ...] [--junit FILE] [--events-dir DIR] [--examples DIR]

With no file named, every ``config/scenarios/*.yaml`` runs. The stack comes from the environment, defaulting to
``make run``'s sandbox: ``LIVEKIT_URL`` / ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` (``ws://127.0.0.1:7880``,
``devkey``, ``secret``), ``LIVEKIT_AGENT_NAME``, ``OPENAI_BASE_URL`` and ``DEEPGRAM_BASE_URL`` (the fakes, read
through ``GET /sandbox/requests``; the sandbox's ports without ``LIVEKIT_URL``) and ``WEBCALL_EVENTS_DIR`` (the
worker's events spool, also ``--events-dir``); the LLM judge's from ``WEBCALL_QA_JUDGE_*`` (`agent.qa.judge`).
Exit codes: 0 every scenario passed (skipped checks aside), 1 one failed, 2 a scenario file or an option cannot be
used (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import jwt.warnings
from rich.console import Console

from agent.qa.judge import JudgeSettings
from agent.qa.observe import EventSpool, Providers
from agent.qa.output import progress_line, summary_table, write_junit
from agent.qa.runner import Outcome, Stack, run_scenario
from agent.qa.scenario import Scenario, ScenarioError, load_scenario
from sandbox.caller.plan import DEFAULT_AGENT_NAME, DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_URL

REPO = Path(__file__).resolve().parents[2]
SANDBOX_PROVIDERS = ("http://127.0.0.1:7890/v1", "http://127.0.0.1:7891/v1")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent qa run", description="Run QA scenarios against a running stack; exit 1 when one fails."
    )
    p.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO.yaml", help="default: config/scenarios/")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML")
    p.add_argument("--events-dir", type=Path, metavar="DIR", help="the worker's WEBCALL_EVENTS_DIR")
    p.add_argument("--examples", type=Path, metavar="DIR", default=REPO / "config" / "examples")
    p.add_argument("--log-level", default="CRITICAL", help="log level of the LiveKit SDK (stderr)")
    return p


def stack_from(env: Mapping[str, str], *, events_dir: Path | None) -> Stack:
    url = env.get("LIVEKIT_URL") or ""
    providers = [env.get("OPENAI_BASE_URL") or "", env.get("DEEPGRAM_BASE_URL") or ""]
    if not url and not any(providers):
        providers = list(SANDBOX_PROVIDERS)
    spool = events_dir or (Path(env["WEBCALL_EVENTS_DIR"]) if env.get("WEBCALL_EVENTS_DIR") else None)
    return Stack(
        url=url or DEFAULT_URL,
        api_key=env.get("LIVEKIT_API_KEY") or DEFAULT_API_KEY,
        api_secret=env.get("LIVEKIT_API_SECRET") or DEFAULT_API_SECRET,
        agent_name=env.get("LIVEKIT_AGENT_NAME") or DEFAULT_AGENT_NAME,
        providers=Providers(providers),
        spool=EventSpool(spool),
        judge=JudgeSettings.from_env(env),
    )


def load_all(paths: Sequence[Path], *, examples: Path) -> list[Scenario]:
    """The scenarios named, else every one under config/scenarios/. Raises `ScenarioError`."""
    files = list(paths) or sorted((REPO / "config" / "scenarios").glob("*.yaml"))
    return [load_scenario(path, examples=examples) for path in files]


async def run_all(scenarios: Sequence[Scenario], *, stack: Stack, console: Console) -> list[Outcome]:
    outcomes = []
    for scenario in scenarios:
        with console.status(f"running {scenario.name}"):
            outcome = await run_scenario(scenario, stack=stack)
        progress_line(outcome, console=console)
        outcomes.append(outcome)
    return outcomes


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    level = logging.getLevelName(str(args.log_level).upper())
    logging.basicConfig(level=level if isinstance(level, int) else logging.CRITICAL)
    # PyJWT warns on every token signed with a short secret such as the sandbox's "secret"; stderr is for errors.
    warnings.filterwarnings("ignore", category=jwt.warnings.InsecureKeyLengthWarning)
    try:
        scenarios = load_all(args.scenarios, examples=args.examples)
    except ScenarioError as error:
        print(f"qa run: {error}", file=sys.stderr)
        return 2
    if not scenarios:
        print("qa run: no scenarios", file=sys.stderr)
        return 2
    console = Console()
    stack = stack_from(os.environ, events_dir=args.events_dir)
    outcomes = asyncio.run(run_all(scenarios, stack=stack, console=console))
    console.print(summary_table(outcomes))
    if args.junit is not None:
        write_junit(args.junit, outcomes)
    return 0 if all(outcome.ok for outcome in outcomes) else 1
