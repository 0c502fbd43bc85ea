"""The sandbox LiveKit-compatible server: signaling, media forwarding, data, agent workers and Twirp on loopback.

Use ``async with running(port=0) as srv:`` in Python, or ``python -m sandbox`` from a shell. Modules by concern:
``app`` (routes, lifecycle), ``rtc`` (signaling sessions and peer connections), ``media`` (audio fan-out),
``rooms`` (room state changes and data forwarding), ``state`` (the data model), ``agents`` (``/agent`` and
dispatch), ``twirp`` (RoomService, AgentDispatchService), ``auth`` (JWTs), ``network`` (loopback-only ICE).
"""

from .app import SandboxServer, running
from .auth import DEV_API_KEY, DEV_API_SECRET
from .network import NetworkSetupError

__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "NetworkSetupError", "SandboxServer", "running"]
