"""Operational state of one worker process: how loaded it is and whether it takes another call.

Load is active calls over ``WEBCALL_MAX_CALLS``, not CPU: the framework's CPU-based default reads 0.999 on an idle
2-core machine, so a default worker there would never take a job. `Capacity` is consulted by ``on_request``
(reject while draining or full) and by the framework's ``load_fnc`` (reported to the server, which stops
dispatching at the threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from livekit.agents.job import RunningJobInfo

Decision = Literal["accept", "draining", "at_capacity"]


class ServerState(Protocol):
    """The part of `livekit.agents.AgentServer` that capacity reads."""

    @property
    def active_jobs(self) -> Sequence[RunningJobInfo]: ...

    @property
    def draining(self) -> bool: ...


@dataclass(kw_only=True)
class Capacity:
    """Active-call accounting for the process that runs the `AgentServer`."""

    max_calls: int

    def active_calls(self, server: ServerState) -> int:
        return sum(1 for job in server.active_jobs if not job.fake_job)

    def load(self, server: ServerState) -> float:
        """Active calls over the maximum, 0.0 to 1.0."""
        return min(1.0, self.active_calls(server) / self.max_calls)

    def decide(self, server: ServerState) -> Decision:
        if server.draining:
            return "draining"
        if self.active_calls(server) >= self.max_calls:
            return "at_capacity"
        return "accept"


def load_threshold(max_calls: int) -> float:
    """The load at which the server stops sending jobs: just under 'full', so the last slot is still offered."""
    return (max_calls - 0.5) / max_calls
