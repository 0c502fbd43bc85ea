"""The worker: an `AgentServer` that takes explicit dispatches and runs one call per job.

The entrypoint is thin: read the per-call sources -> resolve -> build the pipeline -> start the call
(`agent.call.Call`). What a bad config means is decided here: the resolver never fails (unusable input yields the
profile's config with warnings), a provider the deployment lacks is swapped for one it has
(``provider_unavailable``), and only a role nothing can serve (no LLM at all) ends the job: logged as an error,
after the caller is told in text and, when any TTS works, in voice (`agent.unavailable`).

Contract:
- Explicit dispatch under ``settings.agent_name`` (``webcall-agent``; ``LIVEKIT_AGENT_NAME`` overrides).
- Load is active calls over ``WEBCALL_MAX_CALLS`` (`agent.ops`); ``on_request`` rejects while draining or full,
  leaving the job to another worker.
- Silero VAD is loaded once per job process (``setup_fnc``), never per call; turn detection is pinned to it.
- ``call.ended`` is sent from ``on_session_end`` (`session_ended`), the last step of a job the framework waits for;
  for a job whose process died, the main process sends it (`agent.events.orphans`).
- Each call counts its metrics in its job process (`agent.metrics`). The commands that run this server
  (``start``, ``dev``, ``connect``) are `agent.worker_commands`.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Final

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess, JobRequest, llm, tokenize
from livekit.agents.utils.hw import get_cpu_monitor
from livekit.agents.worker import ServerEnvOption

from agent import drain, framework, knowledge, metrics, pipeline
from agent.call import Call, resolve
from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources, resolve_call
from agent.errors import PipelineError
from agent.events import CallEvents
from agent.events.orphans import complete_orphans_with
from agent.events.redelivery import redeliver_with
from agent.health import FRAMEWORK_HTTP_HOST
from agent.log import call_log_fields, get_logger, install_redaction, warning_fields
from agent.ops import Capacity, load_threshold
from agent.pipeline import TtsEngine
from agent.settings import Settings, get_settings, secret_value
from agent.subscriptions import DeferredAudioSubscription
from agent.unavailable import NOTICE, tell_caller
from agent.welcome import WelcomePrefetch

logger = get_logger(__name__)

AGENT_DISPLAY_NAME: Final = "AI assistant"


# Imported once in the forkserver, so job processes start with them (a first import inside a call blocks its loop).
PRELOAD_MODULES: Final = [
    # First: importing it in the forkserver makes that process, and the job processes it forks, ignore SIGTERM.
    "agent.drain",
    "agent.worker",
    "agent.call",
    "agent.chat",
    "agent.knowledge",
    "anyio._backends._asyncio",
    "openai.resources.models",
    "openai.resources.chat",
    "openai.resources.audio",
    # Last: the imports, TLS contexts, tables and caches every job process would otherwise make after the fork.
    "agent.prefork",
]


def prewarm(proc: JobProcess) -> None:
    """Runs once per job process before any job: every model and client is made here, and lazy setup is forced.

    Each step below otherwise happens on a call's event loop during its first second (measured with
    ``bench/dispatch_latency.py``): the TLS context of the shared aiohttp session (hundreds of ms on a busy 2-core
    machine), the transcript hyphenation table, the agent profiles, voice table and prompt files that the first
    ``resolve_call`` reads (13 ms of YAML per call, twice before the welcome), and the chat message model, whose
    pydantic schema is built on first use, in the session's start. Every knowledge collection is taken here
    (the ones the forkserver loaded, `agent.prefork`; a changed one is indexed now), never in a call's path.
    """
    drain.ignore_stop_signals()
    settings = get_settings()
    # This process's one root handler is the IPC queue to the main process: caller data is redacted before it.
    install_redaction(enabled=settings.redact_caller_data)
    proc.userdata["shared"] = pipeline.load_shared(settings)
    proc.userdata["knowledge"] = knowledge.load_all(settings)
    resolve_call(CallSources(), settings=settings)
    llm.ChatContext.empty().add_message(role="system", content="warm")
    framework.warm_tls()
    tokenize.basic.hyphenate_word("warm")
    framework.warm_rtc()


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


def build_server(settings: Settings, *, capacity: Capacity | None = None) -> AgentServer:
    """The `AgentServer` with our entrypoint, request handler and load function registered."""
    capacity = capacity or Capacity(max_calls=settings.max_concurrent_calls)
    server = AgentServer(
        setup_fnc=prewarm,
        load_fnc=capacity.load,
        load_threshold=load_threshold(settings.max_concurrent_calls),
        ws_url=settings.livekit_url,
        api_key=secret_value(settings.livekit_api_key),
        api_secret=secret_value(settings.livekit_api_secret),
        # The health port is ours (`agent.health`); the framework's own server listens where nothing probes it.
        host=FRAMEWORK_HTTP_HOST,
        port=0,
        max_retry=settings.livekit_max_retry,
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
        # The slot is held from here until the job runs, so a burst of requests cannot all pass `decide`.
        with capacity.reserve(request.id):
            await request.accept(
                identity=participant_identity(request.id, agent_name=settings.agent_name),
                name=AGENT_DISPLAY_NAME,
                attributes={"webcall.agent": settings.agent_name},
            )

    # The main process's root handlers (set up by the framework before the worker starts) write every record, job
    # processes' included.
    server.on("worker_started", lambda: install_redaction(enabled=settings.redact_caller_data))
    server.rtc_session(entrypoint, agent_name=settings.agent_name, on_request=on_request, on_session_end=session_ended)
    # Call events the webhook did not take are re-sent from the outbox by the main process (a no-op without one).
    redeliver_with(server, settings)
    # A call whose job process died gets its call.ended from the main process (`agent.events.orphans`).
    complete_orphans_with(server, settings)
    return server


async def session_ended(ctx: JobContext) -> None:
    """The end of a call: ``call.ended``, then the report log (duration, turns, usage; never what was said).

    ``call.ended`` is sent here, not from a shutdown callback: those run after the room is gone, all at once, and are
    killed after 10 s.
    """
    call = Call.of(ctx)
    if call is not None:
        metrics.call_ended(dialect=call.config.dialect, end_reason=call.end_reason.value)
        await call.finish()
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
    goodbye = drain.GoodbyeRequest.listen()
    install_redaction(enabled=settings.redact_caller_data)
    shared: pipeline.Shared = ctx.proc.userdata.get("shared") or pipeline.load_shared(settings)
    # Synthesis of the welcome starts before the room is even joined; the final config usually agrees.
    # Every record of the job carries the call's fields: room and job now, the rest once the dispatch is read
    # (the final config, with the caller's attributes, may refine them).
    ctx.log_context_fields = {"room": ctx.job.room.name, "job_id": ctx.job.id}
    early = resolve(ctx, participant=None, settings=settings, shared=shared)
    ctx.log_context_fields = call_log_fields(early, room_name=ctx.job.room.name, job_id=ctx.job.id)
    welcome = WelcomePrefetch.start(early, settings=settings, shared=shared)
    timeline.mark("prefetch_started")
    # Callers' audio is subscribed once the agent's own track is out (see agent.subscriptions).
    audio_in = DeferredAudioSubscription(ctx.room)
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    timeline.mark("connected")
    caller = await _wait_for_caller(ctx, within_s=settings.join_timeout_s, goodbye=goodbye)
    if caller is None:
        await welcome.aclose()
        await _never_joined(ctx, config=early, settings=settings, goodbye=goodbye)
        return
    timeline.mark("caller_found")
    made = await _build_call(ctx, caller=caller, settings=settings, shared=shared, welcome=welcome)
    if made is None:
        return
    call, config = made
    timeline.mark("built")
    if config.is_scribe:
        # A scribe speaks only when named, so nothing of its own has to go out first: it hears everyone now.
        audio_in.release()
    try:
        await call.start()
    finally:
        audio_in.release()
    timeline.mark("session_started")
    metrics.watch_turns(ctx.primary_session)
    logger.info("call started", extra={"welcome_mode": config.welcome.mode, "timeline_ms": timeline.marks})
    goodbye.then(call.shut_down)


async def _build_call(
    ctx: JobContext,
    *,
    caller: rtc.RemoteParticipant,
    settings: Settings,
    shared: pipeline.Shared,
    welcome: WelcomePrefetch,
) -> tuple[Call, CallConfig] | None:
    """The call's final config (the caller's attributes included) and its `Call`; None when no pipeline can be
    built for it (the caller has been told, and the job ends)."""
    config = resolve(ctx, participant=caller, settings=settings, shared=shared)
    ctx.log_context_fields = call_log_fields(config, room_name=ctx.room.name, job_id=ctx.job.id)
    for warning in config.warnings:
        logger.warning("call config warning", extra=warning_fields(warning))
        metrics.config_warning(warning.code)
    try:
        built = pipeline.build(config, settings=settings, shared=shared)
    except PipelineError as error:
        logger.error("pipeline not built", extra={"code": error.code, "role": error.role, "provider": error.provider})
        await welcome.aclose()
        await _unserved(ctx, config=config, settings=settings, shared=shared)
        return None
    metrics.watch_providers({"stt": built.stt, "llm": built.llm, "tts": built.tts})
    knowledge_base = await knowledge.knowledge_for(
        config, loaded=ctx.proc.userdata.get("knowledge", {}), settings=settings
    )
    call = Call.build(
        ctx,
        config=config,
        built=built,
        caller=caller,
        settings=settings,
        shared=shared,
        welcome=welcome,
        knowledge=knowledge_base,
    )
    return call, config


async def _wait_for_caller(
    ctx: JobContext, *, within_s: float, goodbye: drain.GoodbyeRequest
) -> rtc.RemoteParticipant | None:
    """The caller, or None when nobody joined within `within_s` or the worker is stopping."""
    joined = asyncio.ensure_future(ctx.wait_for_participant())
    stopping = asyncio.ensure_future(goodbye.requested.wait())
    try:
        done, _ = await asyncio.wait({joined, stopping}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not joined.done():
            joined.cancel()
    return joined.result() if joined in done else None


async def _never_joined(
    ctx: JobContext, *, config: CallConfig, settings: Settings, goodbye: drain.GoodbyeRequest
) -> None:
    """A job whose caller never came: both events are sent (no transcript), the job ends."""
    reason = "shutdown" if goodbye.requested.is_set() else "no_caller"
    logger.warning("no caller joined, ending job", extra={"reason": reason, "join_timeout_s": settings.join_timeout_s})
    await CallEvents.unserved(
        settings,
        config=config,
        job_id=ctx.job.id,
        room=ctx.room.name,
        notice=None,
        end_reason=reason,
        journaled=not ctx.is_fake_job(),
    )
    ctx.shutdown(reason=reason)


async def _unserved(ctx: JobContext, *, config: CallConfig, settings: Settings, shared: pipeline.Shared) -> None:
    """A call no pipeline can serve: the caller is told, both events are sent, the job ends."""
    await tell_caller(ctx.room, tts_engine=_notice_tts(config, settings=settings, shared=shared))
    await CallEvents.unserved(
        settings, config=config, job_id=ctx.job.id, room=ctx.room.name, notice=NOTICE, journaled=not ctx.is_fake_job()
    )
    metrics.call_ended(dialect=config.dialect, end_reason="unavailable")
    ctx.shutdown(reason="pipeline_error")


class Timeline:
    """Milliseconds since the entrypoint began, per step (logged with ``call started``)."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.marks: dict[str, int] = {}

    def mark(self, step: str) -> None:
        self.marks[step] = round((time.monotonic() - self._start) * 1000)


def _notice_tts(config: CallConfig, *, settings: Settings, shared: pipeline.Shared) -> TtsEngine | None:
    """A TTS to apologize with when the call cannot be served, if any can be built."""
    try:
        return pipeline.build_tts(config.tts, settings=settings, shared=shared)
    except PipelineError:
        return None
