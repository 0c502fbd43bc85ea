"""The health server's routes, in process, on an `AgentServer` that has not connected (nothing is registered)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient, TestServer
from livekit.agents import AgentServer

from agent.health import HealthServer, WorkerHealth
from agent.ops import Capacity
from agent.settings import Settings
from tests.ops.scrape import value

ROOT = Path(__file__).resolve().parents[2]


class IdleServer(AgentServer):
    """An `AgentServer` before `run`: its pool (which `active_jobs` reads) is made by `run`, so none is running."""

    @property
    def active_jobs(self) -> list[Any]:
        return []


def health_server(**settings: str) -> HealthServer:
    server = IdleServer()
    return HealthServer(
        WorkerHealth(server=server, capacity=Capacity(max_calls=3)), settings=Settings.model_validate(settings), port=0
    )


async def client(health: HealthServer) -> TestClient[Any, Any]:
    test_client: TestClient[Any, Any] = TestClient(TestServer(health.app))
    await test_client.start_server()
    return test_client


async def test_an_unregistered_worker_is_alive_but_not_ready() -> None:
    http = await client(health_server())
    try:
        live = await http.get("/")
        ready = await http.get("/ready")
        assert (live.status, await live.text()) == (200, "OK")
        assert (ready.status, await ready.text()) == (503, "unregistered")
    finally:
        await http.close()


async def test_a_registered_worker_is_ready_until_its_slots_are_held_then_503_at_capacity() -> None:
    health = health_server()
    # what the framework sets once it runs (`_closed`) and LiveKit accepted its registration (`_id`)
    health.health.server._closed = False
    health.health.server._id = "AW_test"
    http = await client(health)
    try:
        assert ((ready := await http.get("/ready")).status, await ready.text()) == (200, "ready")
        with health.health.capacity.reserve("AJ_1"), health.health.capacity.reserve("AJ_2"):
            assert (await http.get("/ready")).status == 200, "two of three slots held"
            with health.health.capacity.reserve("AJ_3"):
                full = await http.get("/ready")
                assert (full.status, await full.text()) == (503, "at_capacity")
                assert value(await (await http.get("/metrics")).text(), "webcall_worker_ready") == 0
        assert (await http.get("/ready")).status == 200, "the slots released"
    finally:
        await http.close()


async def test_a_worker_that_gave_up_on_livekit_fails_liveness() -> None:
    health = health_server()
    health.health.server._connection_failed = True  # what the framework sets after max_retry failed attempts
    http = await client(health)
    try:
        assert (await http.get("/")).status == 503
    finally:
        await http.close()


async def test_metrics_and_worker_report_the_state_ready_reads() -> None:
    http = await client(health_server())
    try:
        scrape = await (await http.get("/metrics")).text()
        assert value(scrape, "webcall_active_calls") == 0
        assert value(scrape, "webcall_max_calls") == 3
        assert value(scrape, "webcall_worker_registered") == 0
        assert value(scrape, "webcall_worker_ready") == 0
        assert "webcall_outbox_events" not in scrape, "no webhook, no outbox"
        worker = json.loads(await (await http.get("/worker")).text())
        assert worker["readiness"] == "unregistered"
        assert worker["max_calls"] == 3
    finally:
        await http.close()


async def test_the_outbox_depth_is_scraped_by_state_when_a_webhook_is_configured(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    (outbox / "dead").mkdir(parents=True)
    (outbox / "1700000000000-0-job_a-started.json").write_text("{}")
    (outbox / "dead" / "1700000000001-1-job_b-ended.json").write_text("{}")
    (outbox / "not-an-event.txt").write_text("")
    health = health_server(
        WEBCALL_EVENTS_URL="https://events.example/hook",
        WEBCALL_EVENTS_SECRET="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        WEBCALL_EVENTS_OUTBOX_DIR=str(outbox),
    )
    http = await client(health)
    try:
        scrape = await (await http.get("/metrics")).text()
    finally:
        await http.close()
    assert value(scrape, "webcall_outbox_events", state="pending") == 1
    assert value(scrape, "webcall_outbox_events", state="dead") == 1
    assert value(scrape, "webcall_outbox_events", state="inflight") == 0


async def test_the_manifest_probes_and_scrapes_routes_the_health_server_serves() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/worker.yaml").read_text(encoding="utf-8")))
    container = next(d for d in docs if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    monitor = next(
        d for d in yaml.safe_load_all((ROOT / "deploy/k8s/metrics.yaml").read_text()) if d["kind"] == "ServiceMonitor"
    )
    paths = {
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
        *(endpoint["path"] for endpoint in monitor["spec"]["endpoints"]),
    }
    assert paths == {"/ready", "/", "/metrics"}
    served = {route.resource.canonical for route in health_server().app.router.routes() if route.resource is not None}
    assert paths <= served
    assert "/worker" not in paths, "/worker answers 200 whenever the loop runs"
