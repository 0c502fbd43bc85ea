"""Stopping the worker: drain on the first SIGTERM (or SIGINT), a goodbye to each remaining call after that.

Main process (`run`):
1. The first stop signal: `Capacity.start_draining` (every request is refused and readiness fails at once), then
   `AgentServer.drain` (LiveKit is told the worker is full). Live calls go on until they end on their own, for up to
   ``WEBCALL_DRAIN_TIMEOUT_S``; their ``call.ended`` is sent from their own job process as usual. In dev mode there
   is no drain: step 2 follows at once, as the framework's ``dev`` stops without one.
2. The drain timeout or a second signal: each job process still running a call gets `GOODBYE_SIGNAL`. Its call says
   a short goodbye and ends with reason ``shutdown`` (`agent.call`); the worker waits up to `GOODBYE_GRACE_S`.
3. `AgentServer.aclose`: processes still running are asked to stop, and killed after the framework's timeouts.
   The exit code is 0, or 1 when the worker's connection to LiveKit failed for good. A third signal exits at once
   with 1.

Job processes (`ignore_stop_signals`, `GoodbyeRequest`): SIGTERM and SIGINT are ignored in every process of the
worker but the main one. An init system that signals the whole process group, and Ctrl-C in a terminal, reach the
forkserver and the job processes too and would end live calls instead of draining them (under the forkserver, the
framework's own ignore never runs in job processes). The forkserver runs none of our code but the preloaded modules:
importing this module in a process of the worker other than its main one (`WORKER_PID_ENV` names that one) ignores
both signals, and the job processes forked from it inherit that.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Final, Literal

from livekit.agents import AgentServer

from agent import framework
from agent.log import get_logger
from agent.ops import Capacity

logger = get_logger(__name__)

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
# SIGUSR1 is the framework's (a job process dumps its stacks).
GOODBYE_SIGNAL: Final = signal.SIGUSR2
# A goodbye plays within 10 s (`agent.call`), its call.ended is delivered or in the outbox within about 11 s more.
GOODBYE_GRACE_S: Final = 30.0
WORKER_PID_ENV: Final = "WEBCALL_WORKER_PID"


def ignore_stop_signals() -> None:
    """In a job process or the forkserver: SIGTERM and SIGINT are the main process's to handle.

    `GOODBYE_SIGNAL` is ignored too until a job listens for it (`GoodbyeRequest.listen`): a process without a call
    has nothing to end.
    """
    for sig in (*STOP_SIGNALS, GOODBYE_SIGNAL):
        signal.signal(sig, signal.SIG_IGN)


def _in_worker_child() -> bool:
    main_pid = os.environ.get(WORKER_PID_ENV)
    return main_pid is not None and main_pid != str(os.getpid())


if _in_worker_child():
    ignore_stop_signals()


class GoodbyeRequest:
    """In a job process: whether the main process asked this job to end its call now (`GOODBYE_SIGNAL`)."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self._callbacks: list[Callable[[], None]] = []

    @classmethod
    def listen(cls) -> GoodbyeRequest:
        request = cls()
        # Only the main thread of a process can take signals (a thread executor or a test runs elsewhere).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(GOODBYE_SIGNAL, request.fire)
        return request

    def fire(self) -> None:
        if self.requested.is_set():
            return
        logger.info("worker stopping, ending the call")
        self.requested.set()
        for callback in self._callbacks:
            callback()

    def then(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the goodbye is requested (now, if it already was)."""
        if self.requested.is_set():
            callback()
        else:
            self._callbacks.append(callback)


class StopSignals:
    """SIGTERM/SIGINT as the main process counts them: the first drains, the second ends the calls, a third exits
    at once (in dev mode, where the first already ends the calls, the second does)."""

    def __init__(self, *, dev: bool = False) -> None:
        self.first = asyncio.Event()
        self.second = asyncio.Event()
        self._dev = dev

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.received, sig)

    def received(self, signum: int) -> None:
        if self.second.is_set() or (self._dev and self.first.is_set()):
            logger.warning("exiting at once", extra={"signal": signum})
            os._exit(1)
        logger.info("stop signal received", extra={"signal": signum, "first": not self.first.is_set()})
        (self.second if self.first.is_set() else self.first).set()


def run(
    server: AgentServer, *, capacity: Capacity, drain_timeout_s: float, dev: bool, unregistered: bool = False
) -> int:
    """Run `server` until it is stopped (see the module docstring); returns the process exit code.

    An `unregistered` server never connects to LiveKit as a worker: it runs only the jobs it is given
    (``python -m agent connect``).
    """
    # Before the process pool starts the forkserver, which inherits the environment.
    os.environ[WORKER_PID_ENV] = str(os.getpid())
    return asyncio.run(
        serve(server, capacity=capacity, drain_timeout_s=drain_timeout_s, dev=dev, unregistered=unregistered)
    )


async def serve(
    server: AgentServer, *, capacity: Capacity, drain_timeout_s: float, dev: bool, unregistered: bool = False
) -> int:
    signals = StopSignals(dev=dev)
    signals.install()
    running = asyncio.create_task(server.run(devmode=dev, unregistered=unregistered), name="webcall.worker")
    stop = asyncio.create_task(signals.first.wait(), name="webcall.stop_signal")
    await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if not running.done():
        capacity.start_draining()
        ended = "no_drain" if dev else await _drain(server, signals=signals, timeout_s=drain_timeout_s)
        if ended != "drained":
            await _goodbyes(server, ended=ended)
    await server.aclose()
    try:
        await running
    except Exception:
        logger.exception("worker failed")
        return 1
    return 0


async def _drain(
    server: AgentServer, *, signals: StopSignals, timeout_s: float
) -> Literal["drained", "drain_timeout", "second_signal"]:
    """Wait for the live calls to end on their own, up to `timeout_s` or a second signal."""
    logger.info("draining", extra={"calls": len(framework.job_process_ids(server)), "timeout_s": timeout_s})
    drain = asyncio.create_task(server.drain(timeout=None), name="webcall.drain")
    second = asyncio.create_task(signals.second.wait(), name="webcall.second_signal")
    done, _ = await asyncio.wait({drain, second}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    second.cancel()
    if drain in done:
        drain.result()
        logger.info("drained")
        return "drained"
    # The framework's drain holds the server's lock until it ends; aclose needs it.
    drain.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drain
    return "second_signal" if second in done else "drain_timeout"


async def _goodbyes(server: AgentServer, *, ended: str) -> None:
    """Each remaining call says goodbye and ends; bounded by `GOODBYE_GRACE_S`."""
    pids = framework.job_process_ids(server)
    logger.warning("ending live calls", extra={"calls": len(pids), "after": ended})
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, GOODBYE_SIGNAL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(GOODBYE_GRACE_S):
            # The pool offers no public wait for its processes; their number is polled.
            while framework.job_process_ids(server):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    left = len(framework.job_process_ids(server))
    if left:
        logger.warning("calls still running after the goodbye grace", extra={"calls": left})
