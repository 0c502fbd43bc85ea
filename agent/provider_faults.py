"""Provider failures during a call: the caller is told, the call goes on or ends politely, each failure is recorded.

Contract (`ProviderFaults`, one per call, attached to the session before it starts):
- A turn whose LLM fails unrecoverably (the only LLM, or every LLM of the fallback chain: an error status, a refused
  or cut connection, no token within ``WEBCALL_LLM_TIMEOUT_S``) is answered with `APOLOGY` at once: posted on
  ``lk.chat`` and spoken with its ``lk.transcription`` (text only while the session's audio output is off: a text
  turn, or a call degraded to text). Typed and spoken turns alike. So the caller hears and reads it at most
  ``WEBCALL_LLM_TIMEOUT_S`` plus the TTS's first byte after their turn.
- After `MAX_FAILED_TURNS` failed turns in a row (no reply in between) the call ends politely: `GOODBYE` on both
  channels, end reason ``provider_error``, then the session is shut down. The framework's own limit (close on the
  4th consecutive error, without a word) is never reached: the apology's speech resets its count.
- Every failed request to a provider (each member of a fallback chain, retries and recovery probes included) is an
  incident ``provider_failed``: role, ``position`` in the chain (0 is the configured provider), kind (``status``
  with the HTTP status, ``timeout``, ``connection``, else the error's type name) and ``retried`` (the framework
  retried in place). A turn that failed as a whole is ``llm_turn_failed``. Every fallback switch of an adapter is
  ``provider_switched`` (role, position, available again or not). A scribe's own STT is watched the same way
  (`watch`), and its restarts are recorded through `record` (``stt_restarted``, ``stt_stopped``). Each code is
  counted (``incident_counts``) and its first `INCIDENT_SAMPLES` are kept whole. All are logged with the same
  fields: the log records are the call's failure metrics.
- STT/TTS failures themselves are handled by `agent.chat.ChatChannel` (the call degrades to text and says so).

Nothing here logs what was said; incidents hold codes and counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from livekit import rtc
from livekit.agents import AgentSession, APIStatusError, APITimeoutError, ErrorEvent, llm, stt, tts
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.events import ConversationItemAddedEvent

from agent import framework
from agent.chat import TOPIC_CHAT, TOPIC_TRANSCRIPTION, final_segment
from agent.log import get_logger
from agent.providers import Role
from agent.tasks import TaskSet
from agent.transcript import AGENT_SPEAKER, Transcript

logger = get_logger(__name__)

APOLOGY: Final = "Sorry, I couldn't get an answer just now. Could you say that again?"
GOODBYE: Final = "Sorry, I'm having technical trouble and can't go on right now. Please try again later. Goodbye."
MAX_FAILED_TURNS: Final = 3
# The goodbye is spoken when it can be; a TTS that is down too must not hold the call open.
GOODBYE_SPEECH_TIMEOUT_S: Final = 10.0
END_REASON: Final = "provider_error"
INCIDENT_SAMPLES: Final = 20

IncidentCode = Literal["provider_failed", "provider_switched", "llm_turn_failed", "stt_restarted", "stt_stopped"]


@dataclass(frozen=True, kw_only=True)
class ProviderIncident:
    """One provider failure or fallback switch, for ``call.ended.incidents`` (`agent.events.payload.Incident`)."""

    code: IncidentCode
    data: dict[str, object] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


def error_kind(error: BaseException) -> tuple[str, int | None]:
    """What failed, in the terms of `RELIABILITY.md`: ``status`` (with the HTTP status), ``timeout``,
    ``connection`` (refused, reset or cut), else the error's type name."""
    if isinstance(error, APIStatusError):
        return "status", error.status_code
    if isinstance(error, APITimeoutError | TimeoutError):
        return "timeout", None
    cause = error.__cause__
    if isinstance(cause, APIStatusError):
        return "status", cause.status_code
    if isinstance(cause, APITimeoutError | TimeoutError):
        return "timeout", None
    name = type(error).__name__
    return ("connection", None) if name == "APIConnectionError" else (name, None)


def providers_of(engine: object) -> list[Any]:
    """The provider objects behind a session's engine that report their own errors: a fallback chain's members in
    order (a non-streaming STT unwrapped from its ``StreamAdapter``), or the engine itself."""
    if isinstance(engine, llm.FallbackAdapter | stt.FallbackAdapter | tts.FallbackAdapter):
        members: tuple[Any, ...] = framework.fallback_members(engine)
    elif engine is None:
        members = ()
    else:
        members = (engine,)
    return [m.wrapped_stt if isinstance(m, stt.StreamAdapter) else m for m in members]


class ProviderFaults:
    """Tells the caller about failed turns and records provider incidents. `attach` before ``session.start``,
    `bind` once the room is connected, `aclose` at the end."""

    def __init__(
        self,
        *,
        session: AgentSession[Any],
        transcript: Transcript,
        on_end: Callable[[str], None],
    ) -> None:
        self._session = session
        self._transcript = transcript
        self._on_end = on_end
        self._room: rtc.Room | None = None
        self.incidents: list[ProviderIncident] = []
        self.counts: dict[str, int] = {}
        self.failed_turns = 0
        self._ending = False
        self._tasks = TaskSet()

    def attach(self) -> None:
        self._session.on("error", self._on_error)
        self._session.on("conversation_item_added", self._on_item)
        self.watch("llm", self._session.llm)
        self.watch("stt", self._session.stt)
        self.watch("tts", self._session.tts)

    def watch(self, role: Role, engine: object) -> None:
        """Record every failed request and fallback switch of `engine` (a chain member by member)."""
        for position, member in enumerate(providers_of(engine)):
            member.on("error", self._provider_error(role, position))
        if isinstance(engine, llm.FallbackAdapter):
            engine.on("llm_availability_changed", self._switched("llm", engine))
        elif isinstance(engine, stt.FallbackAdapter):
            engine.on("stt_availability_changed", self._switched("stt", engine))
        elif isinstance(engine, tts.FallbackAdapter):
            engine.on("tts_availability_changed", self._switched("tts", engine))

    def bind(self, room: rtc.Room) -> None:
        self._room = room

    async def aclose(self) -> None:
        self._session.off("error", self._on_error)
        self._session.off("conversation_item_added", self._on_item)
        await self._tasks.cancel()

    # -- events -----------------------------------------------------------------------------------------------

    def _on_error(self, ev: ErrorEvent) -> None:
        """The session's own errors: a turn whose LLM chain failed as a whole gets the apology."""
        error = ev.error
        if not isinstance(error, llm.LLMError) or error.recoverable:
            return
        kind, _status = error_kind(error.error)
        self.record("llm_turn_failed", {"role": "llm", "kind": kind})
        self.failed_turns += 1
        self._tasks.spawn(self._after_failed_turn())

    def _provider_error(self, role: Role, position: int) -> Callable[[Any], None]:
        def on_error(error: llm.LLMError | stt.STTError | tts.TTSError) -> None:
            kind, status = error_kind(error.error)
            data: dict[str, object] = {"role": role, "position": position, "kind": kind, "retried": error.recoverable}
            if status is not None:
                data["status"] = status
            self.record("provider_failed", data)

        return on_error

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if isinstance(item, llm.ChatMessage) and item.role == "assistant":
            self.failed_turns = 0

    def _switched(
        self, role: Role, adapter: llm.FallbackAdapter | stt.FallbackAdapter | tts.FallbackAdapter
    ) -> Callable[[Any], None]:
        members = framework.fallback_members(adapter)

        def on_change(ev: Any) -> None:
            engine = getattr(ev, role, None)
            position = next((i for i, m in enumerate(members) if m is engine), -1)
            self.record("provider_switched", {"role": role, "position": position, "available": bool(ev.available)})

        return on_change

    def record(self, code: IncidentCode, data: dict[str, object]) -> None:
        """One incident: counted, kept whole among the first `INCIDENT_SAMPLES` of its code, and logged."""
        count = self.counts.get(code, 0) + 1
        self.counts[code] = count
        # a provider down for a long call fails every turn: keep the first few of each code, count them all
        if count <= INCIDENT_SAMPLES:
            self.incidents.append(ProviderIncident(code=code, data=data))
        logger.warning("provider incident", extra={"code": code, **{f"provider_{k}": v for k, v in data.items()}})

    # -- telling the caller -----------------------------------------------------------------------------------

    async def _after_failed_turn(self) -> None:
        if self._ending:
            return
        if self.failed_turns >= MAX_FAILED_TURNS:
            await self._end()
            return
        handle = await self._tell(APOLOGY)
        if handle is not None:
            with contextlib.suppress(RuntimeError):
                await handle.wait_for_playout()

    async def _tell(self, text: str, *, allow_interruptions: bool = True) -> SpeechHandle | None:
        """`text` on ``lk.chat``, then spoken with its ``lk.transcription`` (a caption alone when the session can
        no longer speak). The speech handle, when it was spoken."""
        self._transcript.add(channel="voice", role="assistant", speaker=AGENT_SPEAKER, text=text)
        room = self._room
        if room is not None and room.isconnected():
            await room.local_participant.send_text(text, topic=TOPIC_CHAT)
        try:
            return self._session.say(text, allow_interruptions=allow_interruptions, add_to_chat_ctx=False)
        except RuntimeError:
            if room is not None and room.isconnected():
                await room.local_participant.send_text(
                    text, topic=TOPIC_TRANSCRIPTION, attributes=final_segment("provider_fault")
                )
            return None

    async def _end(self) -> None:
        self._ending = True
        self._on_end(END_REASON)
        logger.warning("provider failures, ending call", extra={"failed_turns": self.failed_turns})
        handle = await self._tell(GOODBYE, allow_interruptions=False)
        if handle is not None:
            try:
                await asyncio.wait_for(handle.wait_for_playout(), timeout=GOODBYE_SPEECH_TIMEOUT_S)
            except (RuntimeError, TimeoutError):
                logger.warning("goodbye not played", extra={"reason": END_REASON})
        self._session.shutdown(drain=True)
