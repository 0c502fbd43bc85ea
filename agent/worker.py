"""The worker: an `AgentServer` that takes explicit dispatches and runs one call per job.

The entrypoint is thin: read the per-call sources -> `resolve_call` -> build the pipeline -> start the session.
What a bad config means is decided here: the resolver never fails (unusable input yields the profile's config with
warnings), a provider the deployment lacks is swapped for one it has (``provider_unavailable``), and only a role
nothing can serve (no LLM at all) ends the job: logged as an error, after the caller is told in text and, when any
TTS works, in voice (`agent.unavailable`).

Contract:
- Explicit dispatch under ``settings.agent_name`` (``webcall-agent``; ``LIVEKIT_AGENT_NAME`` overrides).
- Load is active calls over ``WEBCALL_MAX_CALLS`` (`agent.ops`); ``on_request`` rejects while draining or full,
  leaving the job to another worker.
- Silero VAD is loaded once per job process (``setup_fnc``), never per call; turn detection is pinned to it.
- The session starts with ``session_host=False`` (no participant can read the prompt or inject input) and the job
  ends when the session closes: caller left, limits reached, room deleted.
- ``main(argv)`` validates settings first: a missing LiveKit URL or key exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Final

from livekit import rtc
from livekit.agents import (
    AgentServer,
    AgentSession,
    AutoSubscribe,
    JobContext,
    JobProcess,
    JobRequest,
    llm,
    tokenize,
    vad,
)
from livekit.agents.metrics.usage import ModelUsage, ModelUsageCollector
from livekit.agents.utils import http_context
from livekit.agents.utils.hw import get_cpu_monitor
from livekit.agents.voice import room_io
from livekit.agents.voice.background_audio import BackgroundAudioPlayer
from livekit.agents.voice.events import CloseEvent
from livekit.agents.worker import ServerEnvOption
from livekit.rtc._ffi_client import FfiClient

from agent import pipeline
from agent.chat import ChatChannel
from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources, resolve_call
from agent.conversation import CallLimits, WebcallAgent, aec_warmup, ambience_player, turn_handling
from agent.errors import PipelineError, SettingsError
from agent.events import CallEvents
from agent.events.redelivery import redeliver_with
from agent.knowledge import KNOWLEDGE_INSTRUCTIONS, tools_for
from agent.log import call_log_fields, get_logger, set_redaction
from agent.ops import Capacity, load_threshold
from agent.pipeline import TtsEngine
from agent.scribe import Scribe, address_names
from agent.settings import Settings, get_settings
from agent.subscriptions import DeferredAudioSubscription
from agent.unavailable import NOTICE, tell_caller

logger = get_logger("worker")

AGENT_DISPLAY_NAME: Final = "AI assistant"
DEFAULT_HEALTH_PORT: Final = 8081


# Imported once in the forkserver, so job processes start with them (a first import inside a call blocks its loop).
PRELOAD_MODULES: Final = [
    "agent.worker",
    "agent.chat",
    "agent.knowledge",
    "anyio._backends._asyncio",
    "openai.resources.models",
    "openai.resources.chat",
    "openai.resources.audio",
]


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process before any job: every model and client is made here, and lazy setup is forced.

    Each step below otherwise happens on a call's event loop during its first second (measured with
    ``bench/dispatch_latency.py``): the TLS context of the shared aiohttp session (hundreds of ms on a busy 2-core
    machine), the transcript hyphenation table, the agent profiles, voice table and prompt files that the first
    ``resolve_call`` reads (13 ms of YAML per call, twice before the welcome), and the chat message model, whose
    pydantic schema is built on first use, in the session's start.
    """
    settings = get_settings()
    proc.userdata["shared"] = pipeline.load_shared(settings)
    resolve_call(CallSources(), settings=settings)
    llm.ChatContext.empty().add_message(role="system", content="warm")
    http_context._create_ssl_context()
    tokenize.basic.hyphenate_word("warm")
    FfiClient.instance  # noqa: B018 - loads and initializes the WebRTC FFI library of this process now


def participant_identity(job_id: str, *, agent_name: str) -> str:
    return f"{agent_name}-{job_id}"


def idle_processes(settings: Settings) -> int | ServerEnvOption[int]:
    """How many warm job processes to keep: ``WEBCALL_IDLE_PROCESSES``, else the framework's default capped.

    The framework keeps one per CPU it sees: on a Kubernetes node without a CPU limit that is every core of the node
    (64 warm processes of ~150 MiB each on a 64-core node), more than the worker may ever run at once. No more than
    ``WEBCALL_MAX_CALLS`` are kept; dev mode keeps none, as the framework does.
    """
    if settings.idle_processes is not None:
        return settings.idle_processes
    per_cpu = math.ceil(get_cpu_monitor().cpu_count())
    return ServerEnvOption(dev_default=0, prod_default=min(per_cpu, settings.max_concurrent_calls))


def build_server(settings: Settings, *, health_port: int = DEFAULT_HEALTH_PORT) -> AgentServer:
    """The `AgentServer` with our entrypoint, request handler and load function registered."""
    capacity = Capacity(max_calls=settings.max_concurrent_calls)
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=capacity.load,
        load_threshold=load_threshold(settings.max_concurrent_calls),
        ws_url=settings.livekit_url,
        api_key=_secret(settings.livekit_api_key),
        api_secret=_secret(settings.livekit_api_secret),
        port=health_port,
        preload_modules=PRELOAD_MODULES,
        # Loading whisper and piper (offline extra) in a job process takes seconds on a busy 2-core machine; the
        # framework's 10 s would kill the process and leave the pool without a warm one.
        initialize_process_timeout=30.0,
        num_idle_processes=idle_processes(settings),
    )

    async def on_request(request: JobRequest) -> None:
        decision = capacity.decide(server)
        if decision != "accept":
            logger.info("job rejected", extra={"job_id": request.id, "reason": decision})
            # Not terminal: the server may offer the job to another worker.
            await request.reject(terminate=False)
            return
        await request.accept(
            identity=participant_identity(request.id, agent_name=settings.agent_name),
            name=AGENT_DISPLAY_NAME,
            attributes={"webcall.agent": settings.agent_name},
        )

    server.rtc_session(entrypoint, agent_name=settings.agent_name, on_request=on_request, on_session_end=session_ended)
    # Call events the webhook did not take are re-sent from the outbox by the main process (a no-op without one).
    redeliver_with(server, settings)
    return server


async def session_ended(ctx: JobContext) -> None:
    """The end-of-call event: duration, turns and provider usage (counts only, never what was said).

    ``call.ended`` is sent here, not from a shutdown callback: those run after the room is gone, all at once, and are
    killed after 10 s.
    """
    events = CallEvents.take(ctx.job.id)
    if events is not None:
        await events.ended()
    try:
        report = ctx.make_session_report()
    except RuntimeError:
        return  # the job ended before a session started (e.g. a provider could not be built)
    turns = [item for item in report.chat_history.items if isinstance(item, llm.ChatMessage)]
    logger.info(
        "call ended",
        extra={
            "duration_s": round(report.duration, 3) if report.duration is not None else None,
            "user_turns": sum(1 for item in turns if item.role == "user"),
            "agent_turns": sum(1 for item in turns if item.role == "assistant"),
            "usage": [usage.model_dump(mode="json") for usage in report.model_usage or []],
        },
    )


async def entrypoint(ctx: JobContext) -> None:
    """One call: read -> resolve -> build -> start."""
    timeline = Timeline()
    settings = get_settings()
    set_redaction(enabled=settings.redact_caller_data)
    shared: pipeline.Shared = ctx.proc.userdata.get("shared") or pipeline.load_shared(settings)

    # Synthesis of the welcome starts before the room is even joined; the final config usually agrees.
    early = _resolve(ctx, participant=None, settings=settings, shared=shared)
    welcome = WelcomePrefetch.start(early, settings=settings, shared=shared)

    timeline.mark("prefetch_started")
    # Callers' audio is subscribed once the agent's own track is out (see agent.subscriptions).
    audio_in = DeferredAudioSubscription(ctx.room)
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    timeline.mark("connected")
    caller = await ctx.wait_for_participant()
    timeline.mark("caller_found")
    config = _resolve(ctx, participant=caller, settings=settings, shared=shared)
    ctx.log_context_fields = call_log_fields(config, room_name=ctx.room.name, job_id=ctx.job.id)
    for warning in config.warnings:
        logger.warning("call config warning", extra={"code": warning.code, "field": warning.field})

    try:
        built = pipeline.build(config, settings=settings, shared=shared)
    except PipelineError as error:
        logger.error("pipeline not built", extra={"code": error.code, "role": error.role, "provider": error.provider})
        await welcome.aclose()
        await tell_caller(ctx.room, tts_engine=_notice_tts(config, settings=settings, shared=shared))
        await CallEvents.unserved(settings, config=config, job_id=ctx.job.id, room=ctx.room.name, notice=NOTICE)
        ctx.shutdown(reason="pipeline_error")
        return

    session = make_session(config, built=built, vad_model=shared.vad)
    tools: list[llm.Tool | llm.Toolset] = list(tools_for(config, settings=settings))
    agent = WebcallAgent(
        config=config,
        tools=tools,
        extra_instructions=KNOWLEDGE_INSTRUCTIONS if tools else "",
        welcome_audio=welcome.audio_for(config),
    )
    timeline.mark("built")
    call = Call(
        ctx=ctx,
        session=session,
        agent=agent,
        caller=caller,
        settings=settings,
        shared=shared,
        outside_usage=welcome.usage.flatten,
    )
    try:
        await call.start()
    finally:
        audio_in.release()
    timeline.mark("session_started")
    logger.info("call started", extra={"welcome_mode": config.welcome.mode, "timeline_ms": timeline.marks})


class Timeline:
    """Milliseconds since the entrypoint began, per step (logged with ``call started``)."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.marks: dict[str, int] = {}

    def mark(self, step: str) -> None:
        self.marks[step] = round((time.monotonic() - self._start) * 1000)


def make_session(config: CallConfig, *, built: pipeline.Pipeline, vad_model: vad.VAD) -> AgentSession[Any]:
    return AgentSession(
        stt=built.stt,
        llm=built.llm,
        tts=built.tts,
        vad=vad_model,
        turn_handling=turn_handling(config),
        aec_warmup_duration=aec_warmup(config),
        user_away_timeout=config.limits.user_silence_timeout_s,
    )


class Call:
    """The live part of one job: session, limits, ambience, chat, mid-call changes, and the job's end."""

    def __init__(
        self,
        *,
        ctx: JobContext,
        session: AgentSession[Any],
        agent: WebcallAgent,
        caller: rtc.RemoteParticipant,
        settings: Settings,
        shared: pipeline.Shared,
        outside_usage: Callable[[], Sequence[ModelUsage]] = list,
    ) -> None:
        self._ctx = ctx
        self._shared = shared
        self._outside_usage = outside_usage
        self._session = session
        self._agent = agent
        self._caller = caller
        self._settings = settings
        # A scribe stays silent through silences: nobody is waiting for it to speak.
        self._limits = CallLimits(session=session, limits=agent.config.limits, watch_silence=not agent.config.is_scribe)
        self._chat = ChatChannel(session=session, config=agent.config)
        self._ambience: BackgroundAudioPlayer | None = None
        self._scribe: Scribe | None = None
        self._events: CallEvents | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        config = self._agent.config
        self._session.on("close", self._on_session_close)
        self._ctx.room.on("participant_disconnected", self._on_participant_disconnected)
        self._ctx.room.on("room_metadata_changed", self._on_room_metadata_changed)
        self._ctx.room.on("participant_attributes_changed", self._on_attributes_changed)
        self._ctx.add_shutdown_callback(self.aclose)
        options = room_io.RoomOptions(
            participant_identity=self._caller.identity,
            text_input=self._chat.text_input_options(),
            # A scribe hears everyone through its own per-participant streams, not through the linked caller.
            audio_input=not config.is_scribe,
            close_on_disconnect=not config.is_scribe,
        )
        await self._session.start(
            self._agent, room=self._ctx.room, room_options=options, session_host=False, record=False
        )
        await self._chat.start(self._ctx.room)
        self._events = CallEvents.open(
            self._settings,
            config=config,
            job_id=self._ctx.job.id,
            room=self._ctx.room.name,
            session=self._session,
            transcript=self._chat.transcript,
            outside_usage=self._outside_usage,
            incidents=lambda: tuple(self._chat.events),
        )
        if self._events is not None:
            self._events.started()
        self._limits.start()
        if config.is_scribe and self._session.stt is not None:
            self._scribe = Scribe(
                engine=self._session.stt,
                vad_model=self._shared.vad,
                names=address_names(config),
                on_addressed=self._answer_addressed,
            )
            self._scribe.attach(self._ctx.room)
        self._ambience = ambience_player(config.ambience)
        if self._ambience is not None:
            await self._ambience.start(room=self._ctx.room, agent_session=self._session)

    async def aclose(self) -> None:
        await self._limits.aclose()
        if self._ambience is not None:
            await self._ambience.aclose()
        if self._scribe is not None:
            await self._scribe.aclose()
        await self._chat.aclose()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _answer_addressed(self, speaker: str, text: str) -> None:
        self._session.generate_reply(user_input=f"{speaker}: {text}")

    def _on_session_close(self, event: CloseEvent) -> None:
        logger.info(
            "session closed, ending job", extra={"reason": str(event.reason), "ended_by": self._limits.ended_by}
        )
        self._note_end(self._limits.ended_by or event.reason.value)
        self._spawn(self._end(reason=f"session_closed:{event.reason}"))

    async def _end(self, *, reason: str) -> None:
        # The room is disconnected before shutdown callbacks run: the scribe's transcript goes out first.
        if self._scribe is not None:
            await self._scribe.post()
        self._ctx.shutdown(reason=reason)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self._scribe is not None:
            # A group call goes on while anyone is left; those who stay get the transcript so far.
            if self._ctx.room.remote_participants:
                self._spawn(self._scribe.post())
            else:
                logger.info("last participant left, ending call")
                self._note_end("caller_left")
                self._session.shutdown(drain=False)
            return
        # RoomIO only closes for some disconnect reasons; a web call without its caller is over whatever the reason.
        if participant.identity == self._caller.identity:
            logger.info("caller left, ending call")
            self._note_end("caller_left")
            self._session.shutdown(drain=False)

    def _note_end(self, reason: str) -> None:
        if self._events is not None:
            self._events.note_end(reason)

    def _on_room_metadata_changed(self, old_metadata: str, new_metadata: str) -> None:
        self._restage(source="room_metadata")

    def _on_attributes_changed(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == self._caller.identity:
            self._restage(source="caller")

    def _restage(self, *, source: str) -> None:
        config = _resolve(self._ctx, participant=self._caller, settings=self._settings, shared=self._shared)
        self._agent.stage(config, source=source)


class WelcomePrefetch:
    """The welcome synthesized with the early config while the worker joins the room."""

    def __init__(self, *, config: CallConfig, engine: TtsEngine | None) -> None:
        self._config = config
        self._frames: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failed = False
        # Synthesized outside the session, so the session's usage never sees it; the call's events add it.
        self.usage = ModelUsageCollector()
        if engine is not None:
            self._task = asyncio.create_task(self._run(engine), name="welcome_prefetch")

    @classmethod
    def start(cls, config: CallConfig, *, settings: Settings, shared: pipeline.Shared) -> WelcomePrefetch:
        if config.welcome.mode != "say" or not config.welcome.text.strip():
            return cls(config=config, engine=None)
        try:
            engine = pipeline.build_tts(config.tts, settings=settings, shared=shared)
        except PipelineError:
            return cls(config=config, engine=None)
        return cls(config=config, engine=engine)

    def audio_for(self, config: CallConfig) -> AsyncIterator[rtc.AudioFrame] | None:
        """The prefetched audio if the final config would say the same thing the same way, else None."""
        if self._task is None or self.failed:
            return None
        if config.welcome.text != self._config.welcome.text or config.tts != self._config.tts:
            self._task.cancel()
            return None
        return self._iter()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, engine: TtsEngine) -> None:
        engine.on("metrics_collected", self.usage)
        try:
            async with engine.synthesize(self._config.welcome.text) as stream:
                async for audio in stream:
                    self._frames.put_nowait(audio.frame)
        except Exception:
            # The session then synthesizes the welcome itself (with its retries and fallbacks).
            self.failed = True
            logger.warning("welcome prefetch failed", exc_info=True)
        finally:
            self._frames.put_nowait(None)
            await engine.aclose()

    async def _iter(self) -> AsyncIterator[rtc.AudioFrame]:
        while (frame := await self._frames.get()) is not None:
            yield frame
            # Prefetched audio is all there at once. Handing it over in one go would let the transcript
            # synchronizer's speaking-rate analysis of the whole welcome (about 40 ms of numpy on this box) run
            # before the first frame reaches the room's audio source; a yield per frame lets that frame go first.
            await asyncio.sleep(0)


def _resolve(
    ctx: JobContext, *, participant: rtc.RemoteParticipant | None, settings: Settings, shared: pipeline.Shared
) -> CallConfig:
    """The call's config from every source, with providers this deployment cannot serve replaced."""
    config = resolve_call(_sources(ctx, participant=participant), settings=settings)
    return pipeline.with_available_providers(config, settings=settings, shared=shared)


def _notice_tts(config: CallConfig, *, settings: Settings, shared: pipeline.Shared) -> TtsEngine | None:
    """A TTS to apologize with when the call cannot be served, if any can be built."""
    try:
        return pipeline.build_tts(config.tts, settings=settings, shared=shared)
    except PipelineError:
        return None


def _sources(ctx: JobContext, *, participant: rtc.RemoteParticipant | None) -> CallSources:
    room_metadata = ctx.room.metadata if ctx.room.isconnected() else ctx.job.room.metadata
    if participant is None:
        return CallSources(job_metadata=ctx.job.metadata, room_metadata=room_metadata, room_name=ctx.job.room.name)
    return CallSources(
        job_metadata=ctx.job.metadata,
        room_metadata=room_metadata,
        caller_attributes=dict(participant.attributes),
        caller_metadata=participant.metadata,
        room_name=ctx.room.name or ctx.job.room.name,
    )


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agent", description="webcall-agent worker")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("start", "production worker"), ("dev", "development worker (colored logs)")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--log-level", default=None)
        cmd.add_argument(
            "--health-port",
            type=int,
            default=DEFAULT_HEALTH_PORT if name == "start" else 0,
            help="port of GET / (health) and GET /worker; 0 picks a free one",
        )
    console = sub.add_parser("console", help="talk to the agent in text, no LiveKit server needed")
    console.add_argument("--metadata", default=None, help="job metadata JSON for the call (any dialect)")
    sub.add_parser("download-files", help="fetch plugin model files (Silero ships in the wheel)")
    return parser


def main(argv: list[str]) -> int:
    """``python -m agent start|dev|console|download-files``. Returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "download-files":
        from livekit.agents.__main__ import main as livekit_main

        return livekit_main(["download-files"])
    settings = get_settings()
    if args.command == "console":
        from agent.console import run_console

        return run_console(settings=settings, job_metadata=args.metadata)
    try:
        settings.require_livekit()
    except SettingsError as error:
        print(f"webcall-agent: {error.reason}", file=sys.stderr)
        return 2
    return _run(settings, command=args.command, log_level=args.log_level, health_port=args.health_port)


def _run(settings: Settings, *, command: str, log_level: str | None, health_port: int) -> int:
    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker

    server = build_server(settings, health_port=health_port)
    dev = command == "dev"
    _run_worker(
        server,
        proto.CliArgs(
            log_level=(log_level or settings.log_level).upper(),
            log_format="colored" if dev else "json",
            dev=dev,
        ),
    )
    return 0
