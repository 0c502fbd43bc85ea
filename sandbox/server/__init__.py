"""The sandbox LiveKit-compatible server: signaling, media forwarding, data, agent workers and Twirp on loopback.

Use ``async with running(port=0) as srv:`` in Python, ``await start_server_process(port=0)`` for a child process,
or ``python -m sandbox`` from a shell. Modules by concern: ``app`` (routes, lifecycle), ``rtc`` (signaling sessions
and peer connections), ``media`` (Opus forwarding and fan-out), ``rooms`` (room state changes and data forwarding),
``state`` (the data model), ``agents`` (``/agent`` and dispatch), ``twirp`` (RoomService, AgentDispatchService),
``auth`` (JWTs), ``network`` (loopback-only ICE), ``introspect`` (``/sandbox/state``), ``process`` (child process,
network namespace).
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
