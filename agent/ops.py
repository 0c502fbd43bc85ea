"""Operational state of one worker process: how loaded it is and whether it takes another call.

Load is active calls over ``WEBCALL_MAX_CALLS``, not CPU: the framework's CPU-based default reads 0.999 on an idle
2-core machine, so a default worker there would never take a job. `Capacity` is consulted by ``on_request``
(reject while draining or full) and by the framework's ``load_fnc`` (reported to the server, which stops
dispatching at the threshold).

The decision counts reservations as well as running calls: a job accepted in ``on_request`` holds its slot from the
accept until it runs (or never starts), so a burst of requests answered before any job launched cannot take more
than ``WEBCALL_MAX_CALLS``. ``draining`` is set at the first stop signal (`agent.drain`), before the framework's own
flag: from then on every request is refused, and readiness fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    draining: bool = False
    _reserved: set[str] = field(default_factory=set)

    def active_calls(self, server: ServerState) -> int:
        return sum(1 for job in server.active_jobs if not job.fake_job)

    def load(self, server: ServerState) -> float:
        """Active calls over the maximum, 0.0 to 1.0 (the framework adds its own estimate for pending requests)."""
        return min(1.0, self.active_calls(server) / self.max_calls)

    def held(self, server: ServerState) -> int:
        """Running calls plus the slots reserved for accepted jobs that do not run yet."""
        running = {job.job.id for job in server.active_jobs if not job.fake_job}
        return len(running) + len(self._reserved - running)

    def is_draining(self, server: ServerState) -> bool:
        return self.draining or server.draining

    def decide(self, server: ServerState) -> Decision:
        if self.is_draining(server):
            return "draining"
        if self.held(server) >= self.max_calls:
            return "at_capacity"
        return "accept"

    @contextmanager
    def reserve(self, job_id: str) -> Iterator[None]:
        """Hold a slot for `job_id` while it is accepted and launched; released however that ends."""
        self._reserved.add(job_id)
        try:
            yield
        finally:
            self._reserved.discard(job_id)

    def start_draining(self) -> None:
        self.draining = True


def load_threshold(max_calls: int) -> float:
    """The load at which the server stops sending jobs: just under 'full', so the last slot is still offered."""
    return (max_calls - 0.5) / max_calls
