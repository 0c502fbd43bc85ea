"""One live call: its session, limits, chat, scribe, ambience and events, from the session's start to the job's end.

Contract:
- `Call.build` makes the session and the agent from a resolved config and the built providers; `Call.start` starts
  the session with ``session_host=False`` (no participant can read the prompt or inject input), then chat, limits,
  scribe and ambience, and opens the call's events (`CallEvents`): the call owns them, and ``call.started`` goes out
  once the session runs, then ``call.config_resolved`` (again after each mid-call re-resolution).
- Why the call ended is decided here and only here (`EndReason`): the caller leaving, a limit, the worker stopping
  (``shutdown``, after a short goodbye: `Call.shut_down`) or the session's own close reason, whichever is noted
  first. `finish` sends ``call.ended`` with it; the worker calls it from
  ``on_session_end``, the one place the framework waits for (`Call.of` finds the call from the job).
- The job ends when the session closes: caller left, limits reached, room deleted. In a scribe call everyone is
  transcribed (from before the session starts: the scribe is attached first) and only speech or typed messages
  that name the agent are answered; the call ends when the last participant leaves.
- A room metadata or caller attribute change re-resolves the config; the agent applies it at the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

from livekit import rtc
from livekit.agents import AgentSession, JobContext, llm, vad
from livekit.agents.metrics.usage import ModelUsage
from livekit.agents.voice import room_io
from livekit.agents.voice.background_audio import BackgroundAudioPlayer
from livekit.agents.voice.events import CloseEvent

from agent import metrics, pipeline
from agent.chat import ChatChannel
from agent.config.call_config import CallConfig
from agent.config.resolve import CallSources
from agent.conversation import CallLimits, WebcallAgent, aec_warmup, ambience_player, turn_handling
from agent.deployment import resolve_for_deployment
from agent.events import CallEvents
from agent.knowledge import KNOWLEDGE_INSTRUCTIONS, KnowledgeBase, tools_for
from agent.log import get_logger
from agent.provider_faults import ProviderFaults
from agent.scribe import Scribe, address_names, bias_towards, is_addressed
from agent.settings import Settings
from agent.tasks import TaskSet
from agent.welcome import WelcomePrefetch

logger = get_logger(__name__)

# Said by the session's own TTS when the worker stops before the call ended (`Call.shut_down`).
SHUTDOWN_GOODBYE: Final = "I'm sorry, I have to end this call now. Please call again. Goodbye."
SHUTDOWN_GOODBYE_WITHIN_S: Final = 10.0
# The caller's audio as the session gets it: the VAD runs at 16 kHz and the STTs take it, so WebRTC's own decoder
# resamples once instead of each VAD stream (the session's and the STT adapter's) resampling the framework's 24 kHz
# default per frame in Python (`bench.profile`: 7 % of a talking call's job-process samples).
CALLER_AUDIO_RATE: Final = 16000


class EndReason:
    """Why the call ended. The first reason noted wins: a cause is noted before its consequences (the caller
    leaving before the session closes because of it, a limit before its goodbye shuts the session down)."""

    def __init__(self) -> None:
        self._noted: str | None = None

    def note(self, reason: str) -> None:
        if self._noted is None:
            self._noted = reason

    @property
    def value(self) -> str:
        return self._noted or "unknown"


class Call:
    """The live part of one job: session, limits, ambience, chat, scribe, mid-call changes, events and the end."""

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
        self.end_reason = EndReason()
        config = agent.config
        # A scribe stays silent through silences: nobody is waiting for it to speak.
        self._limits = CallLimits(
            session=session, limits=config.limits, on_end=self.end_reason.note, watch_silence=not config.is_scribe
        )
        self._chat = ChatChannel(
            session=session,
            config=config,
            should_answer=_typed_filter(config),
            replies_on_chat=settings.chat_replies_on_chat,
        )
        # A failed LLM turn is apologized for; repeated ones end the call (`agent.provider_faults`).
        self._faults = ProviderFaults(session=session, transcript=self._chat.transcript, on_end=self.end_reason.note)
        self._ambience: BackgroundAudioPlayer | None = None
        self._scribe: Scribe | None = None
        self._session_started = False
        self._early_addressed: list[tuple[str, str]] = []
        self._events: CallEvents | None = None
        self._tasks = TaskSet()
        # How `Call.of` finds this call from the job in ``on_session_end``.
        session.userdata = self

    @classmethod
    def build(
        cls,
        ctx: JobContext,
        *,
        config: CallConfig,
        built: pipeline.Pipeline,
        caller: rtc.RemoteParticipant,
        settings: Settings,
        shared: pipeline.Shared,
        welcome: WelcomePrefetch,
        knowledge: KnowledgeBase | None = None,
    ) -> Call:
        """The call's session and agent, from the final config, its providers and its knowledge base."""
        session = make_session(config, built=built, vad_model=shared.vad)
        tools: list[llm.Tool | llm.Toolset] = list(tools_for(knowledge))
        agent = WebcallAgent(
            config=config,
            tools=tools,
            extra_instructions=KNOWLEDGE_INSTRUCTIONS if tools else "",
            welcome_audio=welcome.audio_for(config),
        )
        return cls(
            ctx=ctx,
            session=session,
            agent=agent,
            caller=caller,
            settings=settings,
            shared=shared,
            outside_usage=welcome.usage.flatten,
        )

    @property
    def config(self) -> CallConfig:
        """The call's config as the agent runs it now (mid-call changes included)."""
        return self._agent.config

    @staticmethod
    def of(ctx: JobContext) -> Call | None:
        """The call a job runs, once its session has started."""
        try:
            found = ctx.primary_session.userdata
        except (RuntimeError, ValueError):  # no session started / no userdata set
            return None
        return found if isinstance(found, Call) else None

    async def start(self) -> None:
        config = self._agent.config
        self._session.on("close", self._on_session_close)
        self._ctx.room.on("participant_disconnected", self._on_participant_disconnected)
        self._ctx.room.on("room_metadata_changed", self._on_room_metadata_changed)
        self._ctx.room.on("participant_attributes_changed", self._on_attributes_changed)
        self._ctx.add_shutdown_callback(self.aclose)
        self._faults.attach()
        self._faults.bind(self._ctx.room)
        # A scribe listens before its session starts (which takes seconds on a busy machine): the worker subscribes
        # to everyone's audio at once in a scribe call, and what is said meanwhile would be lost.
        self._attach_scribe()
        options = room_io.RoomOptions(
            participant_identity=self._caller.identity,
            text_input=self._chat.text_input_options(),
            # A scribe hears everyone through its own per-participant streams, not through the linked caller.
            audio_input=room_io.AudioInputOptions(sample_rate=CALLER_AUDIO_RATE) if not config.is_scribe else False,
            close_on_disconnect=not config.is_scribe,
        )
        await self._session.start(
            self._agent, room=self._ctx.room, room_options=options, session_host=False, record=False
        )
        await self._chat.start(self._ctx.room, caller_identity=self._caller.identity)
        self._open_events()
        self._limits.start()
        self._session_started = True
        for speaker, text in self._early_addressed:
            self._answer_addressed(speaker, text)
        self._early_addressed.clear()
        self._ambience = ambience_player(config.ambience)
        if self._ambience is not None:
            await self._ambience.start(room=self._ctx.room, agent_session=self._session)

    def shut_down(self) -> None:
        """The worker is stopping (`agent.drain`): a short goodbye, then the call ends with reason ``shutdown``."""
        self.end_reason.note("shutdown")
        self._tasks.spawn(self._say_goodbye())

    async def _say_goodbye(self) -> None:
        with contextlib.suppress(RuntimeError):  # nothing is playing, or the session is already closing
            await self._session.interrupt(force=True)
        try:
            handle = self._session.say(SHUTDOWN_GOODBYE, allow_interruptions=False)
            await asyncio.wait_for(handle.wait_for_playout(), timeout=SHUTDOWN_GOODBYE_WITHIN_S)
        except (RuntimeError, TimeoutError):
            logger.warning("shutdown goodbye not played")
        self._session.shutdown(drain=False)

    async def finish(self) -> None:
        """Send ``call.ended`` with the end reason (delivery awaited, bounded). Never raises."""
        if self._events is not None:
            await self._events.ended(end_reason=self.end_reason.value)

    async def aclose(self) -> None:
        await self._limits.aclose()
        await self._faults.aclose()
        if self._ambience is not None:
            await self._ambience.aclose()
        if self._scribe is not None:
            await self._scribe.aclose()
        await self._chat.aclose()
        await self._tasks.wait()

    def _open_events(self) -> None:
        self._events = CallEvents.open(
            self._settings,
            config=self._agent.config,
            job_id=self._ctx.job.id,
            room=self._ctx.room.name,
            session=self._session,
            transcript=self._chat.transcript,
            outside_usage=self._outside_usage,
            incidents=lambda: (*self._chat.events, *self._faults.incidents),
            incident_counts=lambda: {**self._chat.incident_counts, **self._faults.counts},
            journaled=not self._ctx.is_fake_job(),
        )
        if self._events is not None:
            self._events.started()
            self._events.config_resolved(self._agent.config, trigger="start")

    def _attach_scribe(self) -> None:
        config = self._agent.config
        if not config.is_scribe or self._session.stt is None:
            return
        # The scribe's own engine: its failures are its own to restart, never the session's (which would close
        # after a few) nor a reason to degrade the call to text.
        engine = pipeline.build_stt(config.stt, settings=self._settings, shared=self._shared)
        names = address_names(config)
        bias_towards(engine, names)
        metrics.watch_providers({"stt": engine})
        self._faults.watch("stt", engine)
        self._scribe = Scribe(
            engine=engine,
            vad_model=self._shared.vad,
            names=names,
            on_addressed=self._answer_addressed,
            on_incident=self._faults.record,
            conn_options=self._session.conn_options.stt_conn_options,
        )
        self._scribe.attach(self._ctx.room)

    def _answer_addressed(self, speaker: str, text: str) -> None:
        if not self._session_started:  # named while the session was still starting: answered once it runs
            self._early_addressed.append((speaker, text))
            return
        self._session.generate_reply(user_input=f"{speaker}: {text}")

    def _on_session_close(self, event: CloseEvent) -> None:
        self.end_reason.note(event.reason.value)
        logger.info(
            "session closed, ending job", extra={"reason": str(event.reason), "ended_by": self.end_reason.value}
        )
        self._tasks.spawn(self._end(reason=f"session_closed:{event.reason}"))

    async def _end(self, *, reason: str) -> None:
        # The room is disconnected before shutdown callbacks run: the scribe's transcript goes out first.
        if self._scribe is not None:
            await self._scribe.post()
        self._ctx.shutdown(reason=reason)

    def _on_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self._scribe is not None:
            # A group call goes on while anyone is left; those who stay get the transcript so far.
            if self._ctx.room.remote_participants:
                self._tasks.spawn(self._scribe.post())
            else:
                logger.info("last participant left, ending call")
                self.end_reason.note("caller_left")
                self._session.shutdown(drain=False)
            return
        # RoomIO only closes for some disconnect reasons; a web call without its caller is over whatever the reason.
        if participant.identity == self._caller.identity:
            logger.info("caller left, ending call")
            self.end_reason.note("caller_left")
            self._session.shutdown(drain=False)

    def _on_room_metadata_changed(self, old_metadata: str, new_metadata: str) -> None:
        self._restage(source="room_metadata")

    def _on_attributes_changed(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == self._caller.identity:
            self._restage(source="caller")

    def _restage(self, *, source: Literal["room_metadata", "caller"]) -> None:
        config = resolve(self._ctx, participant=self._caller, settings=self._settings, shared=self._shared)
        self._agent.stage(config, source=source)
        if self._events is not None:
            self._events.config_resolved(config, trigger=source)


def make_session(config: CallConfig, *, built: pipeline.Pipeline, vad_model: vad.VAD) -> AgentSession[Any]:
    return AgentSession(
        stt=built.stt,
        llm=built.llm,
        tts=built.tts,
        conn_options=built.conn_options,
        vad=vad_model,
        turn_handling=turn_handling(config),
        aec_warmup_duration=aec_warmup(config),
        user_away_timeout=config.limits.user_silence_timeout_s,
    )


def _typed_filter(config: CallConfig) -> Callable[[str, str], bool] | None:
    """Which typed messages get an answer: in a scribe call only those that name the agent, else all (None)."""
    if not config.is_scribe:
        return None
    names = address_names(config)
    return lambda text, _speaker: is_addressed(text, names)


def resolve(
    ctx: JobContext, *, participant: rtc.RemoteParticipant | None, settings: Settings, shared: pipeline.Shared
) -> CallConfig:
    """The call's config from every source, with providers this deployment cannot serve replaced."""
    return resolve_for_deployment(sources(ctx, participant=participant), settings=settings, shared=shared)


def sources(ctx: JobContext, *, participant: rtc.RemoteParticipant | None) -> CallSources:
    """What the job, the room and (once joined) the caller say about the call."""
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
