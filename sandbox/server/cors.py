"""CORS as livekit-server answers it: every origin is allowed; tokens, not origins, guard every endpoint.

livekit-server wraps all its HTTP routes in ``rs/cors`` with an allow-all origin function, the methods
``OPTIONS, HEAD, GET, POST, PATCH, DELETE``, any request header, ``*`` exposed headers and a one-day preflight
cache. A browser SDK on another origin needs this to read ``/rtc/validate`` (which tells it why a websocket was
refused: a 401 becomes an authentication error instead of "Failed to fetch") and to call Twirp.
A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered 204 without reaching a route.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

ALLOWED_METHODS = ("OPTIONS", "HEAD", "GET", "POST", "PATCH", "DELETE")
MAX_AGE_S = 86400


def _allow(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "*"
    response.headers.add("Vary", "Origin")


def _preflight(request: web.Request, origin: str) -> web.Response:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    method = request.headers.get("Access-Control-Request-Method", "").upper()
    if method in ALLOWED_METHODS:
        response.headers["Access-Control-Allow-Methods"] = method
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        response.headers["Access-Control-Allow-Headers"] = requested
    response.headers["Access-Control-Max-Age"] = str(MAX_AGE_S)
    for name in ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"):
        response.headers.add("Vary", name)
    return response


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if origin is None:
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight(request, origin)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _allow(exc, origin)
        raise
    if not response.prepared:  # a websocket has sent its headers already
        _allow(response, origin)
    return response
