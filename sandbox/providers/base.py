"""The aiohttp server every fake provider runs on: loopback binding, request recording, latency and faults.

A fake binds only to a loopback address. A middleware records each request before its handler runs, applies
the path's first-byte latency, and consumes a queued fault: ``status`` and ``hang`` are handled here for every endpoint,
``drop`` is handed to the handler (it needs to know what a chunk is) through ``request.get(FAULT_KEY)``, and a
handler that answers without streaming gets its connection cut here instead. ``refuse`` resets the connection here
and ``slow`` waits here before the handler runs.

Control API (never recorded, never faulted), on every fake:
- ``POST /sandbox/faults`` with a `FaultSpec` body (``{"service": "llm", "kind": "http_500", "count": 1}``) queues
  a fault for the endpoint that serves that service on this fake (`FakeProviderServer.service_paths`); 400 with
  the invalid fields' locations, or for a service this fake does not serve.
- ``GET /sandbox/faults`` lists the queued faults; ``DELETE /sandbox/faults`` clears them.
- ``GET /sandbox/requests?since=N``: the recorded requests from the N-th on (`RecordedRequest`'s fields, received
  audio as its byte count ``audio_bytes``) and ``next``, the N to ask for next.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, fields
from typing import ClassVar, Self

from aiohttp import web
from pydantic import ValidationError

from sandbox.providers.controls import Controls, Fault, FaultSpec, Latency, RecordedRequest, Service, redact_headers

logger = logging.getLogger("sandbox.providers")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RECORD_KEY = web.RequestKey("record", RecordedRequest)
FAULT_KEY = web.RequestKey("fault", Fault)
LATENCY_KEY = web.RequestKey("latency", Latency)
CLIENT_CLOSED = 499
CONTROL_PREFIX = "/sandbox/"


class FakeProviderServer:
    """Base of the fake servers. Use ``async with`` or ``start()`` / ``aclose()``."""

    provider: ClassVar[str] = ""
    # The endpoint that serves each service on this fake (what a `FaultSpec` for that service applies to).
    service_paths: ClassVar[Mapping[Service, str]] = {}

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("fake providers bind to a loopback address only")
        self.host = host
        self._requested_port = port
        self.port = 0
        self.controls = Controls()
        self.requests: list[RecordedRequest] = []
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        # before the provider's routes: those end in a catch-all
        app.router.add_route("*", CONTROL_PREFIX + "faults", self._control_faults)
        app.router.add_get(CONTROL_PREFIX + "requests", self._control_requests)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = int(sock.getsockname()[1])
        site = web.SockSite(self._runner, sock)
        await site.start()
        logger.info("fake provider listening", extra={"provider": self.provider, "port": self.port})

    async def aclose(self) -> None:
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- controls --------------------------------------------------------------------------------------------
    def set_latency(self, *, first_byte: float = 0.0, chunk_interval: float = 0.0, path: str | None = None) -> None:
        """Delay before the first byte of an answer, and between streamed chunks (seconds).

        With ``path``, only for requests whose path starts with it (e.g. ``/v1/audio/speech``); otherwise for all.
        """
        latency = Latency(first_byte=first_byte, chunk_interval=chunk_interval)
        if path is None:
            self.controls.latency = latency
        else:
            self.controls.path_latency[path] = latency

    def fail_next(self, status: int = 500, *, times: int = 1, path: str | None = None) -> None:
        """Answer the next ``times`` matching requests with HTTP ``status`` (500, 429, ...)."""
        self.controls.faults.append(Fault(kind="status", status=status, path=path, remaining=times))

    def hang_next(self, *, times: int = 1, path: str | None = None) -> None:
        """Never answer the next ``times`` matching requests (the client has to time out)."""
        self.controls.faults.append(Fault(kind="hang", path=path, remaining=times))

    def drop_next(self, *, times: int = 1, path: str | None = None, after_chunks: int = 1) -> None:
        """Start answering the next matching requests, then cut the connection after ``after_chunks`` chunks."""
        self.controls.faults.append(Fault(kind="drop", path=path, remaining=times, after_chunks=after_chunks))

    def refuse_next(self, *, times: int = 1, path: str | None = None) -> None:
        """Reset the connection of the next ``times`` matching requests before any byte of an answer."""
        self.controls.faults.append(Fault(kind="refuse", path=path, remaining=times))

    def slow_next(self, delay: float, *, times: int = 1, path: str | None = None) -> None:
        """Wait ``delay`` seconds before the first byte of the next ``times`` matching answers."""
        self.controls.faults.append(Fault(kind="slow", path=path, remaining=times, delay=delay))

    def inject(self, spec: FaultSpec) -> Fault:
        """Queue the fault `spec` names for this fake's endpoint of its service (`KeyError`: not served here)."""
        fault = spec.fault(self.service_paths[spec.service])
        self.controls.faults.append(fault)
        logger.info(
            "fault queued",
            extra={"provider": self.provider, "service": spec.service, "kind": spec.kind, "count": spec.count},
        )
        return fault

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path starts with ``path``."""
        return [record for record in self.requests if record.path.startswith(path)]

    async def wait_for(self, path: str, *, count: int = 1, done: bool = False) -> list[RecordedRequest]:
        """Wait until ``count`` requests to ``path`` have arrived, or with ``done`` have been fully answered
        (websockets: closed). Bound it with ``asyncio.timeout``."""
        while True:
            matching = [record for record in self.requests_to(path) if record.done or not done]
            if len(matching) >= count:
                return matching
            self._changed.clear()
            await self._changed.wait()

    def reset(self) -> None:
        """Forget recorded requests, latency settings and queued faults."""
        self.requests.clear()
        self.controls.reset()

    # --- helpers for handlers --------------------------------------------------------------------------------
    @staticmethod
    async def pace(request: web.Request) -> None:
        """Wait the chunk interval that applies to ``request``."""
        interval = request[LATENCY_KEY].chunk_interval
        if interval > 0:
            await asyncio.sleep(interval)

    async def hang(self) -> None:
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=self.controls.hang_limit)
        except TimeoutError:
            return

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def error_response(self, status: int, message: str) -> web.Response:
        """An error body in the provider's own shape."""
        raise NotImplementedError

    async def _control_faults(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response({"faults": [asdict(fault) for fault in self.controls.faults]})
        if request.method == "DELETE":
            self.controls.faults.clear()
            return web.json_response({"faults": []})
        if request.method != "POST":
            return web.json_response({"error": "method not allowed"}, status=405)
        try:
            spec = FaultSpec.model_validate_json(await request.read())
        except ValidationError as error:
            # locations and type codes only: never echo the body back
            problems = [{"loc": list(e["loc"]), "type": e["type"]} for e in error.errors()]
            return web.json_response({"error": "invalid fault", "problems": problems}, status=400)
        if spec.service not in self.service_paths:
            return web.json_response({"error": "service not served by this fake", "service": spec.service}, status=400)
        return web.json_response({"queued": asdict(self.inject(spec))})

    async def _control_requests(self, request: web.Request) -> web.Response:
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            return web.json_response({"error": "since must be an integer"}, status=400)
        recorded = [
            {**{f.name: getattr(r, f.name) for f in fields(r) if f.name != "audio"}, "audio_bytes": len(r.audio)}
            for r in self.requests[since:]
        ]
        return web.json_response({"requests": recorded, "next": len(self.requests)})

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        headers, scheme = redact_headers(request.headers)
        record = RecordedRequest(
            provider=self.provider,
            method=request.method,
            path=request.path,
            query={key: request.query.getone(key) for key in request.query},
            headers=headers,
            auth_scheme=scheme,
        )
        # A JSON body is parsed before the record is visible, so a test that sees the request also sees its body.
        body_is_json = True
        if request.content_type == "application/json" and request.can_read_body:
            try:
                record.json = json.loads(await request.read())
            except (ValueError, UnicodeDecodeError):
                body_is_json = False
        self.requests.append(record)
        self._changed.set()
        try:
            if not body_is_json:
                record.status = 400
                return self.error_response(400, "body is not valid JSON")
            return await self._answer(request, handler, record)
        finally:
            record.done = True
            self._changed.set()

    async def _apply_fault(self, request: web.Request, fault: Fault, record: RecordedRequest) -> web.Response | None:
        """Apply the faults handled before the handler; the answer to send instead of the handler's, if any."""
        match fault.kind:
            case "status":
                record.status = fault.status
                response = self.error_response(fault.status, "injected fault")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = f"{fault.retry_after:g}"
                return response
            case "hang":
                await self.hang()
                record.status = 504
                return self.error_response(504, "injected hang ended")
            case "refuse":
                reset_connection(request)
                raise web.HTTPServiceUnavailable
            case "slow":
                await asyncio.sleep(fault.delay)
        return None

    async def _answer(self, request: web.Request, handler: Handler, record: RecordedRequest) -> web.StreamResponse:
        request[RECORD_KEY] = record
        latency = self.controls.latency_for(request.path)
        request[LATENCY_KEY] = latency
        if latency.first_byte > 0:
            await asyncio.sleep(latency.first_byte)
        fault = self.controls.take_fault(request.path)
        if fault is not None:
            request[FAULT_KEY] = fault
            record.fault = fault.kind
            early = await self._apply_fault(request, fault, record)
            if early is not None:
                return early
        if record.auth_scheme is None:
            record.status = 401
            return self.error_response(401, "missing credentials")
        try:
            response = await handler(request)
        except ConnectionResetError:
            # the client went away mid-answer (an interrupted TTS stream): record it, nothing left to send
            record.status = CLIENT_CLOSED
            return web.Response(status=CLIENT_CLOSED)
        if fault is not None and fault.kind == "drop" and not response.prepared:
            # an answer that is not streamed has no chunks to cut between: the connection closes unanswered
            drop_connection(request)
            raise web.HTTPServiceUnavailable
        if record.status == 0:
            record.status = response.status
        return response


def drop_connection(request: web.Request) -> None:
    """Cut the TCP connection under a response mid-stream (the client sees a broken body)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def reset_connection(request: web.Request) -> None:
    """Reset the TCP connection (RST, no FIN) before anything is answered: the client sees its connection refused
    mid-request, with no status line."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # linger on with a zero timeout: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
