"""Load is active calls over the configured maximum; requests are refused while draining or full."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from livekit.agents.job import JobAcceptArguments, RunningJobInfo
from livekit.protocol import agent as agent_proto

from agent.ops import Capacity, load_threshold


def running(job_id: str, *, fake: bool = False) -> RunningJobInfo:
    return RunningJobInfo(
        accept_arguments=JobAcceptArguments(name="", identity="", metadata=""),
        job=agent_proto.Job(id=job_id),
        url="",
        token="",
        worker_id="w",
        fake_job=fake,
    )


@dataclass
class Server:
    jobs: list[RunningJobInfo] = field(default_factory=list)
    is_draining: bool = False

    @property
    def active_jobs(self) -> Sequence[RunningJobInfo]:
        return self.jobs

    @property
    def draining(self) -> bool:
        return self.is_draining


def test_an_idle_worker_reports_zero_load_and_accepts() -> None:
    capacity = Capacity(max_calls=4)
    assert capacity.load(Server()) == 0.0
    assert capacity.decide(Server()) == "accept"


def test_load_is_active_calls_over_the_maximum() -> None:
    capacity = Capacity(max_calls=4)
    assert capacity.load(Server(jobs=[running("a"), running("b"), running("c")])) == 0.75


def test_a_full_worker_rejects_with_at_capacity() -> None:
    capacity = Capacity(max_calls=2)
    full = Server(jobs=[running("a"), running("b")])
    assert capacity.decide(full) == "at_capacity"
    assert capacity.load(full) == 1.0


def test_a_draining_worker_rejects_even_when_idle() -> None:
    assert Capacity(max_calls=2).decide(Server(is_draining=True)) == "draining"


def test_console_and_simulated_jobs_do_not_count_as_calls() -> None:
    assert Capacity(max_calls=1).decide(Server(jobs=[running("console", fake=True)])) == "accept"


def test_the_server_stops_offering_jobs_only_when_every_slot_is_taken() -> None:
    threshold = load_threshold(4)
    capacity = Capacity(max_calls=4)
    three = Server(jobs=[running(str(i)) for i in range(3)])
    four = Server(jobs=[running(str(i)) for i in range(4)])
    assert capacity.load(three) < threshold <= capacity.load(four)


def test_warm_processes_are_the_setting_or_the_framework_default_capped_at_the_call_limit() -> None:
    from livekit.agents.worker import ServerEnvOption

    from agent.settings import Settings
    from agent.worker import build_server, idle_processes

    assert idle_processes(Settings.model_validate({"WEBCALL_IDLE_PROCESSES": "3"})) == 3
    capped = idle_processes(Settings.model_validate({"WEBCALL_MAX_CALLS": "1"}))
    assert isinstance(capped, ServerEnvOption)
    assert (capped.dev_default, capped.prod_default) == (0, 1)
    server = build_server(Settings.model_validate({"WEBCALL_IDLE_PROCESSES": "0"}))
    assert ServerEnvOption.getvalue(server._num_idle_processes, False) == 0


def test_an_accepted_job_holds_its_slot_until_it_runs() -> None:
    capacity = Capacity(max_calls=2)
    idle = Server()
    with capacity.reserve("a"), capacity.reserve("b"):
        assert capacity.decide(idle) == "at_capacity"
    assert capacity.decide(idle) == "accept"


def test_a_reserved_job_that_starts_running_counts_once() -> None:
    capacity = Capacity(max_calls=2)
    with capacity.reserve("a"):
        assert capacity.held(Server(jobs=[running("a")])) == 1
        assert capacity.decide(Server(jobs=[running("a")])) == "accept"


def test_a_job_that_never_starts_gives_its_slot_back() -> None:
    capacity = Capacity(max_calls=1)
    try:
        with capacity.reserve("a"):
            raise TimeoutError("no assignment")
    except TimeoutError:
        pass
    assert capacity.decide(Server()) == "accept"


def test_a_worker_told_to_stop_rejects_before_the_framework_drains() -> None:
    capacity = Capacity(max_calls=2)
    capacity.start_draining()
    assert capacity.decide(Server()) == "draining"
    assert capacity.is_draining(Server())
