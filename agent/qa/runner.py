"""Running scenarios against a live stack: for each, mark the providers' records, play the call with the sandbox
caller, read back the room's events and the requests made since the mark, and evaluate the checks.

Scenarios run one after another (each call has the stack to itself, so the requests after a mark are its own).
A call that cannot be attempted (server unreachable, keys refused) fails its scenario with the reason.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, assert_never

from agent.qa.checks import Check, Evidence, evaluate
from agent.qa.judge import JudgeSettings, judge_checks
from agent.qa.observe import EventSpool, Providers
from agent.qa.scenario import OBSERVABLE, BargeInStep, SayStep, Scenario, TypeStep, WaitStep
from agent.qa.scenario import Step as ScenarioStep
from sandbox.caller import CallerError, CallPlan, Step, run_call
from sandbox.caller.plan import DEFAULT_AGENT_NAME, DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_URL

# call.ended is written once the job has closed its session, after the caller left or the room was deleted.
EVENTS_WITHIN_S = 20.0
LISTEN_S = 0.5


@dataclass(frozen=True)
class Stack:
    """Where the scenarios run: the LiveKit server and keys, the agent's name, the fakes, the events spool."""

    url: str = DEFAULT_URL
    api_key: str = DEFAULT_API_KEY
    api_secret: str = field(default=DEFAULT_API_SECRET, repr=False)
    agent_name: str = DEFAULT_AGENT_NAME
    providers: Providers = field(default_factory=lambda: Providers(()))
    spool: EventSpool = field(default_factory=lambda: EventSpool(None))
    judge: JudgeSettings | None = None


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    checks: tuple[Check, ...]
    seconds: float
    room: str
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Something was checked and nothing failed (skipped checks do neither)."""
        counted = [check for check in self.checks if not check.skipped]
        return bool(counted) and all(check.ok for check in counted)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok and not check.skipped]

    def skipped(self) -> list[Check]:
        return [check for check in self.checks if check.skipped]


async def run_scenario(scenario: Scenario, *, stack: Stack) -> Outcome:
    started = time.monotonic()
    plan = plan_for(scenario, stack=stack)
    marks = await stack.providers.marks()
    try:
        report = await run_call(plan)
    except CallerError as error:
        failed = Check("call", False, str(error))
        return Outcome(scenario, (failed,), time.monotonic() - started, plan.room)
    types = {event.type for event in scenario.spec.expect.events} | (
        {"call.started"} if _needs_started(scenario) else set()
    )
    events = await stack.spool.wait_for(plan.room, types=types, within_s=EVENTS_WITHIN_S if types else 0.0)
    requests = await stack.providers.since(marks)
    checks = evaluate(scenario, Evidence(report=report, requests=requests, events=events))
    checks += await judge_checks(scenario.spec.expect.judge, report, settings=stack.judge)
    if not checks:
        checks = [Check("expectations", False, "the scenario expects nothing")]
    return Outcome(scenario, tuple(checks), time.monotonic() - started, plan.room, report)


def plan_for(scenario: Scenario, *, stack: Stack) -> CallPlan:
    """The caller's plan: the scenario's inputs, steps and timeout on the stack's server."""
    case = scenario.case
    welcome = scenario.spec.expect.welcome
    return CallPlan(
        room=case.room_name or f"qa-{scenario.name}-{uuid.uuid4().hex[:6]}",
        url=stack.url,
        api_key=stack.api_key,
        api_secret=stack.api_secret,
        agent_name=stack.agent_name,
        room_metadata=case.room_metadata,
        metadata=case.wire("job_metadata"),
        participant_metadata=case.wire("participant_metadata"),
        attributes=dict(case.attributes),
        steps=tuple(_step(step) for step in scenario.spec.steps),
        listen_s=LISTEN_S,
        timeout_s=scenario.spec.timeout_s,
        expected_welcome=welcome.text if welcome is not None else None,
    )


def _needs_started(scenario: Scenario) -> bool:
    return any(OBSERVABLE[name] == "event" for name in scenario.expected_config())


def _step(step: ScenarioStep) -> Step:
    match step:
        case "leave":
            return Step("leave")
        case WaitStep(wait=seconds):
            return Step("wait", seconds=seconds)
        case TypeStep(type=text):
            return Step("type", text)
        case SayStep(say=text):
            return Step("say", text)
        case BargeInStep(barge_in=text):
            return Step("barge_in", text)
    assert_never(step)
