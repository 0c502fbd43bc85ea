"""A real webhook receiver for tests: an aiohttp server on 127.0.0.1 that records every request it gets and
answers with scripted statuses (then 200), verifying signatures the way a platform would: with the
`standardwebhooks` library (which also rejects a timestamp more than 5 minutes from its clock)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError


def secret_for(name: str) -> str:
    """A valid ``whsec_`` secret (32 bytes) named after `name`, the same on every run."""
    return "whsec_" + base64.b64encode(name.encode("utf-8").ljust(32, b"-")[:32]).decode("ascii")


def verifies(secret: str, *, headers: dict[str, str], body: bytes) -> bool:
    """Whether a receiver holding `secret` accepts the request, the library's way."""
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    signature_valid: bool
    status: int

    @property
    def json(self) -> dict[str, object]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


@dataclass
class Receiver:
    secret: str
    statuses: list[int] = field(default_factory=list)
    # While set, requests are held unanswered (until the receiver stops).
    hang: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.hang:
            await self.released.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        headers = dict(request.headers)
        self.requests.append(
            Received(
                at=time.monotonic(),
                headers=headers,
                body=body,
                signature_valid=verifies(self.secret, headers=headers, body=body),
                status=status,
            )
        )
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def delivered(self) -> list[dict[str, object]]:
        """The bodies answered with 2xx and correctly signed, in arrival order."""
        return [r.json for r in self.requests if 200 <= r.status < 300 and r.signature_valid]


@contextlib.asynccontextmanager
async def running_receiver(secret: str, *, statuses: list[int] | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret=secret, statuses=list(statuses or []))
    app = web.Application()
    app.router.add_post("/hooks/calls", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.Server)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hooks/calls"
    try:
        yield receiver
    finally:
        receiver.released.set()
        await runner.cleanup()
