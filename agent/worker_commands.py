"""The commands that run the worker (`agent.worker.build_server`): ``start``, ``dev``, ``connect``, ``download-files``.

- ``start``: production worker, JSON logs, health routes on ``--health-port`` (8081), drain on SIGTERM (`agent.drain`).
- ``dev``: the same worker in the framework's development mode (colored logs, no warm processes, no drain), health
  on a free port.
- ``connect --room NAME``: a development worker that does not register with LiveKit: it creates the room if needed
  and joins it at once as the framework's ``connect`` does, for trying the agent in a room without a dispatch (the
  call has no dispatch metadata; room and caller metadata still apply).
- ``download-files``: the framework's own command (plugin model files).

Each validates the LiveKit settings first: a missing URL or key exits 2 with one line on stderr, naming the setting,
never a value. A worker that gave up on LiveKit (``WEBCALL_LIVEKIT_MAX_RETRY`` failed connections in a row) or could
not serve its health port exits 1.

Why not the framework's own command line: its ``cli.run_app`` parses ``sys.argv`` itself (so our other commands
would be hidden) and runs its own loop and signal handling, which exits at the second signal without a goodbye. Its
public pieces are used instead: `AgentServer.run` (with ``devmode`` and ``unregistered``), `AgentServer.simulate_job`
and ``livekit-api``'s room service; its log setup has no public entry and is reached through `agent.framework`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Final

from livekit import api
from livekit.agents import AgentServer

from agent import drain, framework
from agent.cli import Subcommand
from agent.devpage.calls import http_url
from agent.errors import SettingsError
from agent.health import HealthServer, WorkerHealth
from agent.log import get_logger
from agent.ops import Capacity
from agent.settings import Settings, get_settings, secret_value
from agent.tasks import TaskSet
from agent.worker import build_server, participant_identity

logger = get_logger(__name__)

DEFAULT_HEALTH_PORT: Final = 8081


def _worker_arguments(*, health_port: int) -> Callable[[argparse.ArgumentParser], None]:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--log-level", default=None, help="DEBUG, INFO, ... (default: WEBCALL_LOG_LEVEL)")
        parser.add_argument(
            "--health-port",
            type=int,
            default=health_port,
            help=f"port of GET / (liveness), /ready, /metrics and /worker; 0 picks a free one (default: {health_port})",
        )

    return add_arguments


def _connect_arguments(parser: argparse.ArgumentParser) -> None:
    _worker_arguments(health_port=0)(parser)
    parser.add_argument("--room", required=True, help="the room to join (created when it does not exist)")
    parser.add_argument(
        "--participant-identity", default=None, help="the agent's identity in the room (default: webcall-agent-<job>)"
    )


def _settings() -> Settings | None:
    """The process settings, or None after one line on stderr when LiveKit's are missing."""
    settings = get_settings()
    try:
        settings.require_livekit()
    except SettingsError as error:
        print(f"webcall-agent: {error.reason}", file=sys.stderr)
        return None
    return settings


def _setup_logging(args: argparse.Namespace, settings: Settings, *, dev: bool) -> None:
    log_format = settings.log_format or ("text" if dev else "json")
    framework.setup_logging(
        log_level=(args.log_level or settings.log_level).upper(),
        log_format="json" if log_format == "json" else "colored",
    )


def _serve(args: argparse.Namespace) -> int:
    """``start``, ``dev`` or ``connect``: the worker runs until it is told to stop."""
    settings = _settings()
    if settings is None:
        return 2
    capacity = Capacity(max_calls=settings.max_concurrent_calls)
    server = build_server(settings, capacity=capacity)
    health = HealthServer(WorkerHealth(server=server, capacity=capacity), settings=settings, port=args.health_port)
    health.start_with(server)
    connect = args.command == "connect"
    if connect:
        _join_when_started(server, settings, room=args.room, identity=args.participant_identity)
    dev = args.command != "start"
    _setup_logging(args, settings, dev=dev)
    code = drain.run(server, capacity=capacity, drain_timeout_s=settings.drain_timeout_s, dev=dev, unregistered=connect)
    return code or (1 if health.failed else 0)


def _join_when_started(server: AgentServer, settings: Settings, *, room: str, identity: str | None) -> None:
    """``connect``: the unregistered worker joins `room` once it has started (`join_room`)."""
    joining = TaskSet()

    def started() -> None:
        joining.spawn(join_room(server, settings, room=room, identity=identity), name="webcall.connect")

    server.on("worker_started", started)


async def join_room(server: AgentServer, settings: Settings, *, room: str, identity: str | None) -> None:
    """Create `room` if it does not exist and run one job in it, as a dispatch would."""
    async with api.LiveKitAPI(
        http_url(settings.livekit_url or ""),
        secret_value(settings.livekit_api_key),
        secret_value(settings.livekit_api_secret),
    ) as livekit:
        # CreateRoom returns the room when it exists already.
        room_info = await livekit.room.create_room(api.CreateRoomRequest(name=room))
    job_identity = identity or participant_identity(room_info.sid, agent_name=settings.agent_name)
    logger.info("joining room", extra={"room": room, "identity": job_identity})
    await server.simulate_job(room=room, fake_job=False, room_info=room_info, agent_identity=job_identity)


def _download_files(_args: argparse.Namespace) -> int:
    # No public API: the framework's documented command is `python -m livekit.agents download-files`, and this is
    # its entry point (the plugins' `download_files` hooks are reached only through it).
    from livekit.agents.__main__ import main as livekit_main

    return livekit_main(["download-files"])


def _no_arguments(_parser: argparse.ArgumentParser) -> None:
    return None


START: Final = Subcommand(add_arguments=_worker_arguments(health_port=DEFAULT_HEALTH_PORT), run=_serve)
DEV: Final = Subcommand(add_arguments=_worker_arguments(health_port=0), run=_serve)
CONNECT: Final = Subcommand(add_arguments=_connect_arguments, run=_serve)
DOWNLOAD_FILES: Final = Subcommand(add_arguments=_no_arguments, run=_download_files)
