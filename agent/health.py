"""The worker's HTTP server on the health port: liveness, readiness, Prometheus metrics and a worker summary.

Why a server of our own: the framework builds its health server (``GET /``, ``GET /worker``) inside
``AgentServer.run`` and starts it there, and aiohttp freezes an application's routes once it starts, so no route can
be added to it; its ``prometheus_port`` option starts yet another server that has only ``/metrics`` and reads only
the process's own registry unless multiprocess mode was on before the framework was imported. So this server takes
the health port (``--health-port``, 8081) and the framework's own is moved to an ephemeral port on 127.0.0.1
(`FRAMEWORK_HTTP_HOST`), where no probe reaches its ``/``, which answers 200 before registration and while draining.

Routes:
- ``GET /``: liveness. 200 while the worker's loop answers and it is still trying LiveKit; 503 once it gave up
  (``WEBCALL_LIVEKIT_MAX_RETRY`` failed connections in a row), after which it ends its live calls and exits 1.
- ``GET /ready``: 200 only while registered with LiveKit, not draining and below ``WEBCALL_MAX_CALLS``
  (`agent.ops.Capacity.decide`); otherwise 503 with the reason (``unregistered``, ``draining``, ``at_capacity``).
- ``GET /metrics``: Prometheus text (`agent.metrics.render`), every job process's counters included.
- ``GET /worker``: JSON of the same state, for people.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import asdict, dataclass
from typing import Final, Literal

from aiohttp import web
from livekit.agents import AgentServer

from agent import framework, metrics
from agent.events.sinks import Webhook, webhook_from
from agent.log import get_logger
from agent.ops import Capacity
from agent.settings import Settings

logger = get_logger(__name__)

FRAMEWORK_HTTP_HOST: Final = "127.0.0.1"
Readiness = Literal["ready", "unregistered", "draining", "at_capacity"]


@dataclass(frozen=True, kw_only=True)
class WorkerHealth:
    """What the routes read, from the running `AgentServer` and its capacity accounting."""

    server: AgentServer
    capacity: Capacity

    def readiness(self) -> Readiness:
        if not framework.registered(self.server):
            return "unregistered"
        decision = self.capacity.decide(self.server)
        return "ready" if decision == "accept" else decision

    def alive(self) -> bool:
        return not framework.gave_up(self.server)

    def state(self) -> metrics.WorkerState:
        return metrics.WorkerState(
            active_calls=self.capacity.active_calls(self.server),
            max_calls=self.capacity.max_calls,
            registered=framework.registered(self.server),
            draining=self.server.draining,
            ready=self.readiness() == "ready",
        )


class HealthServer:
    """Serves the routes above on `host`:`port` from the moment the `AgentServer` has started."""

    def __init__(self, health: WorkerHealth, *, settings: Settings, host: str = "", port: int) -> None:
        self.health = health
        self.host = host
        self.port = port
        self.failed = False
        webhook = webhook_from(settings)
        outbox = webhook.outbox if isinstance(webhook, Webhook) else None
        self.collector = metrics.WorkerCollector(
            state=health.state,
            processes=lambda: framework.job_processes(health.server),
            outbox=outbox.depth if outbox is not None else None,
        )
        self._task: asyncio.Task[None] | None = None
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/", self._live),
                web.get("/ready", self._ready),
                web.get("/metrics", self._metrics),
                web.get("/worker", self._worker),
            ]
        )

    def start_with(self, server: AgentServer) -> None:
        """Serve once `server` has started (its ``worker_started`` event), until the loop's tasks are cancelled."""

        def started() -> None:
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._serve(), name="webcall.health")

        server.on("worker_started", started)

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host or None, self.port)
            await site.start()
        except OSError as error:
            # Without its probes the worker is useless to an orchestrator: stop it, and exit non-zero (`failed`).
            logger.error("health server not started", extra={"port": self.port, "error": type(error).__name__})
            self.failed = True
            await runner.cleanup()
            os.kill(os.getpid(), signal.SIGTERM)
            return
        # All interfaces with port 0 binds one socket per address family, each on its own port: IPv4's is reported.
        ports = [address[1] for address in runner.addresses if len(address) == 2] or [a[1] for a in runner.addresses]
        if ports:
            self.port = int(ports[0])
        logger.info("health server listening", extra={"port": self.port})
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _live(self, _request: web.Request) -> web.Response:
        if self.health.alive():
            return web.Response(text="OK")
        return web.Response(status=503, text="gave up connecting to livekit")

    async def _ready(self, _request: web.Request) -> web.Response:
        readiness = self.health.readiness()
        return web.Response(status=200 if readiness == "ready" else 503, text=readiness)

    async def _metrics(self, _request: web.Request) -> web.Response:
        # File reads (every process's values) and each job process's page tables: off the loop.
        body = await asyncio.to_thread(metrics.render, self.collector)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _worker(self, _request: web.Request) -> web.Response:
        state = asdict(self.health.state())
        body = {"worker_id": self.health.server.id, "readiness": self.health.readiness(), **state}
        return web.Response(text=json.dumps(body), content_type="application/json")
