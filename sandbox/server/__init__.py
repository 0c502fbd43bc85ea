"""The sandbox LiveKit-compatible server: signaling, media forwarding, data, agent workers and Twirp on loopback.

Use ``async with running(port=0) as srv:`` in Python, ``await start_server_process(port=0)`` for a child process,
or ``python -m sandbox`` from a shell. Modules by concern: ``app`` (routes, CORS, lifecycle), ``rtc`` (signaling
sessions), ``negotiator`` with ``single_peer`` (``/rtc/v1``) and ``two_peers`` (``/rtc``) (peer-connection
negotiation), ``aiortc_shim`` (every access to aiortc's private internals), ``media`` (Opus forwarding and fan-out),
``rooms`` (room state changes and data forwarding), ``state`` (the data model), ``agents`` (``/agent`` and
dispatch), ``twirp`` (RoomService, AgentDispatchService), ``auth`` (JWTs), ``network`` (loopback-only ICE),
``introspect`` (``/sandbox/state`` and the fault controls), ``process`` (child process, network namespace).
"""

from .app import SandboxServer, running
from .auth import DEV_API_KEY, DEV_API_SECRET
from .network import NetworkSetupError
from .process import ServerProcess, start_server_process

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "NetworkSetupError",
    "SandboxServer",
    "ServerProcess",
    "running",
    "start_server_process",
]
