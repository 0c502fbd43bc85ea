"""The dev page's routes (aiohttp).

    GET  /                          the page (static/index.html); /static/... its script, styles and SDK bundle
    GET  /api/info                  the LiveKit URL the browser joins, the agent name, the dialects
    GET  /api/examples              the config/examples cases as ready payloads (`agent.devpage.examples`)
    POST /api/calls                 {room, job_metadata, room_metadata, participant_metadata, attributes}
                                    -> {url, room, identity, token}: room + dispatch created, token minted
    GET  /api/calls/{room}/config   the config the worker resolves for that call (`resolve_for_deployment`), caller
                                    data redacted
    POST /api/calls/{room}/end      delete the room (the agent leaves, call.ended follows)
    POST /webhook                   the worker's call events (Standard Webhooks signature checked)
    GET  /api/events?room=NAME      those events for one room, as server-sent events

Bad request bodies are a 400 with a short reason; a LiveKit server that refuses is a 502 with the Twirp code
(never the token or the server's whole message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final, get_args

from aiohttp import web
from livekit import api

from agent.deployment import resolve_for_deployment
from agent.devpage.calls import CallRequest, LiveKitCalls
from agent.devpage.events import EventHub, UnverifiedEvent
from agent.devpage.examples import list_examples
from agent.devpage.redact import redacted_config
from agent.settings import Dialect, Settings

STATIC: Final = Path(__file__).parent / "static"
CALLS: Final = web.AppKey("calls", LiveKitCalls)
HUB: Final = web.AppKey("hub", EventHub)
SETTINGS: Final = web.AppKey("settings", Settings)
MAX_ROOM_CHARS: Final = 128


def make_app(*, calls: LiveKitCalls, hub: EventHub, settings: Settings) -> web.Application:
    """The page's application; `calls` is closed with it."""
    app = web.Application(client_max_size=1024 * 1024)
    app[CALLS], app[HUB], app[SETTINGS] = calls, hub, settings
    app.router.add_get("/", _index)
    app.router.add_static("/static", STATIC)
    app.router.add_get("/api/info", _info)
    app.router.add_get("/api/examples", _examples)
    app.router.add_post("/api/calls", _start_call)
    app.router.add_get("/api/calls/{room}/config", _config)
    app.router.add_post("/api/calls/{room}/end", _end_call)
    app.router.add_post("/webhook", _webhook)
    app.router.add_get("/api/events", _events)

    async def close(app: web.Application) -> None:
        await app[CALLS].aclose()

    app.on_cleanup.append(close)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _info(request: web.Request) -> web.Response:
    calls = request.app[CALLS]
    return web.json_response(
        {
            "livekit_url": calls.url,
            "agent_name": calls.agent_name,
            "dialects": list(get_args(Dialect)),
            "events": request.app[HUB].enabled,
        }
    )


async def _examples(request: web.Request) -> web.Response:
    return web.json_response(list_examples(request.app[SETTINGS].config_dir / "examples"))


async def _start_call(request: web.Request) -> web.Response:
    call = _call_request(await _json_object(request))
    try:
        ticket = await request.app[CALLS].start(call)
    except api.TwirpError as error:
        raise web.HTTPBadGateway(text=f"LiveKit refused: {error.code}") from None
    return web.json_response(
        {"url": ticket.url, "room": ticket.room, "identity": ticket.identity, "token": ticket.token}
    )


async def _config(request: web.Request) -> web.Response:
    sources = await request.app[CALLS].sources(request.match_info["room"])
    if sources is None:
        raise web.HTTPNotFound(text="no call of this page in that room")
    # The same function the worker resolves a call with: a provider this deployment cannot serve shows replaced.
    config = resolve_for_deployment(sources, settings=request.app[SETTINGS])
    return web.json_response(redacted_config(config))


async def _end_call(request: web.Request) -> web.Response:
    try:
        await request.app[CALLS].end(request.match_info["room"])
    except api.TwirpError as error:
        raise web.HTTPBadGateway(text=f"LiveKit refused: {error.code}") from None
    return web.json_response({"ended": True})


async def _webhook(request: web.Request) -> web.Response:
    try:
        request.app[HUB].receive(await request.read(), request.headers)
    except UnverifiedEvent:
        raise web.HTTPUnauthorized(text="signature does not verify") from None
    return web.json_response({"received": True})


async def _events(request: web.Request) -> web.StreamResponse:
    room = request.query.get("room", "")
    if not room:
        raise web.HTTPBadRequest(text="room is required")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    async for event in request.app[HUB].listen(room):
        await response.write(f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
    return response


async def _json_object(request: web.Request) -> Mapping[str, object]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


def _call_request(body: Mapping[str, object]) -> CallRequest:
    room = body.get("room")
    if not isinstance(room, str) or not room.strip() or len(room) > MAX_ROOM_CHARS:
        raise web.HTTPBadRequest(text=f"room must be a name of 1 to {MAX_ROOM_CHARS} characters")
    texts = {}
    for key in ("job_metadata", "room_metadata", "participant_metadata"):
        value = body.get(key, "")
        if not isinstance(value, str):
            raise web.HTTPBadRequest(text=f"{key} must be text (the metadata exactly as a platform sends it)")
        texts[key] = value
    attributes = body.get("attributes", {})
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise web.HTTPBadRequest(text="attributes must be an object of strings (LiveKit participant attributes)")
    return CallRequest(room=room.strip(), attributes=attributes, **texts)
