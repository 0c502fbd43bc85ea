"""The conversation of one call: the `Agent`, its welcome, its limits, ambience and mid-call changes.

Contract:
- `WebcallAgent` speaks with the rendered instructions of the `CallConfig` (the resolver renders them; nothing here
  calls ``Instructions.render``, which would choke on literal braces).
- The welcome is played in ``on_enter``: ``say`` the configured text (optionally with audio synthesized earlier by
  the worker), ``generate`` a greeting with the LLM, or nothing. Interruptible means from the first word: the
  session is built with ``aec_warmup_duration=None`` (`aec_warmup`). Non-interruptible means it plays to
  the end and what the caller says meanwhile is kept (``discard_audio_if_uninterruptible=False``) and answered
  after it.
- `CallLimits` ends the call after ``limits.max_duration_s`` with a spoken goodbye, and after
  ``limits.user_silence_timeout_s`` of silence re-prompts ``limits.silence_reprompts`` times, then says goodbye.
  Ending means ``session.shutdown()``; the worker turns the session's close into the job's end.
- A mid-call change (`WebcallAgent.stage`) is applied at the next turn, when the LLM is next called: instructions
  (prompt variables, language), TTS voice and speed, STT language. Each applied change is logged as the event
  ``call config changed`` with the names of the changed fields, never their values.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, Final, assert_never

from livekit import rtc
from livekit.agents import Agent, AgentSession, llm, stt, tts
from livekit.agents.types import FlushSentinel
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.agent import ModelSettings
from livekit.agents.voice.background_audio import AudioConfig, BackgroundAudioPlayer, BuiltinAudioClip
from livekit.agents.voice.events import UserStateChangedEvent
from livekit.agents.voice.generation import update_instructions
from livekit.agents.voice.turn import TurnHandlingOptions
from livekit.plugins import deepgram, openai

from agent import framework
from agent.config.call_config import Ambience, CallConfig, Limits, Welcome
from agent.log import get_logger
from agent.pipeline import SttEngine, TtsEngine, tts_options
from agent.providers import base_language
from agent.tasks import TaskSet

logger = get_logger(__name__)

GREETING_INSTRUCTIONS: Final = "Greet the caller now in one or two short sentences, as your instructions describe."
REPROMPT_INSTRUCTIONS: Final = "The caller has been silent. Briefly and politely check whether they are still there."
SILENCE_GOODBYE_INSTRUCTIONS: Final = (
    "The caller has not answered. Say a short, polite goodbye and tell them they can call again."
)
TIME_UP_GOODBYE_INSTRUCTIONS: Final = (
    "The call has reached its time limit. Say a short, polite goodbye, without asking anything."
)
# A goodbye that the LLM cannot produce (provider down) must not keep the call open.
GOODBYE_TIMEOUT_S: Final = 20.0

# Fields whose change is applied mid-call; any other difference waits for the next call.
LIVE_FIELDS: Final = ("instructions", "language", "variables", "tts.voice", "tts.speed", "stt.language")


def turn_handling(config: CallConfig) -> TurnHandlingOptions:
    """Turn handling pinned so dev and prod behave alike: Silero VAD turns, VAD interruptions, no cloud model."""
    return {
        "turn_detection": "vad",
        "interruption": {
            "mode": "vad",
            # Non-interruptible speech keeps what the caller said meanwhile and answers it afterwards.
            "discard_audio_if_uninterruptible": False,
        },
    }


def aec_warmup(config: CallConfig) -> float | None:
    """``None`` for an interruptible welcome: the framework's 3 s warm-up would swallow an early barge-in."""
    return None if config.welcome.interruptible else 3.0


class WebcallAgent(Agent):
    """The agent of one call."""

    def __init__(
        self,
        *,
        config: CallConfig,
        tools: list[llm.Tool | llm.Toolset] | None = None,
        extra_instructions: str = "",
        welcome_audio: AsyncIterable[rtc.AudioFrame] | None = None,
    ) -> None:
        self._extra_instructions = extra_instructions
        super().__init__(instructions=self.instructions_for(config), tools=tools)
        self.config = config
        self.welcome_handle: SpeechHandle | None = None
        self._welcome_audio = welcome_audio
        self._pending: CallConfig | None = None

    async def on_enter(self) -> None:
        self.welcome_handle = play_welcome(self.session, self.config.welcome, audio=self._welcome_audio)
        self._welcome_audio = None

    def instructions_for(self, config: CallConfig) -> str:
        """The rendered call instructions, then what the tools need the LLM to know (knowledge citations)."""
        return "\n\n".join(part for part in (config.instructions, self._extra_instructions) if part)

    def stage(self, config: CallConfig, *, source: str) -> tuple[str, ...]:
        """Keep a re-resolved config for the next turn. Returns the live fields that differ (empty: nothing staged)."""
        changed = changed_fields(self._pending or self.config, config)
        if changed:
            self._pending = config
            logger.info("call config change staged", extra={"changed": list(changed), "source": source})
        return changed

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterator[llm.ChatChunk | str | FlushSentinel]:
        # Every turn (spoken, typed, welcome, limits) goes through here: the one place a staged change lands.
        if self._pending is not None:
            await self.apply_pending()
            update_instructions(chat_ctx, instructions=self.instructions_for(self.config), add_if_missing=True)
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            yield chunk

    async def apply_pending(self) -> tuple[str, ...]:
        """Apply a staged change now. Returns the fields that changed."""
        new, self._pending = self._pending, None
        if new is None:
            return ()
        changed = changed_fields(self.config, new)
        if new.instructions != self.config.instructions:
            await self.update_instructions(self.instructions_for(new))
        if "tts.voice" in changed or "tts.speed" in changed:
            _update_tts(self.session.tts, new)
        if "stt.language" in changed:
            _update_stt(self.session.stt, new.stt.language)
        self.config = new
        logger.info("call config changed", extra={"changed": list(changed)})
        return changed


def changed_fields(old: CallConfig, new: CallConfig) -> tuple[str, ...]:
    values = {
        "instructions": (old.instructions, new.instructions),
        "language": (old.language, new.language),
        "variables": (old.variables, new.variables),
        "tts.voice": (old.tts.voice, new.tts.voice),
        "tts.speed": (old.tts.speed, new.tts.speed),
        "stt.language": (old.stt.language, new.stt.language),
    }
    return tuple(name for name in LIVE_FIELDS if values[name][0] != values[name][1])


def play_welcome(
    session: AgentSession[Any], welcome: Welcome, *, audio: AsyncIterable[rtc.AudioFrame] | None = None
) -> SpeechHandle | None:
    """Start the welcome. ``audio`` is the welcome text already synthesized with this call's voice, if any."""
    match welcome.mode:
        case "say":
            if not welcome.text.strip():
                return None
            if audio is None:
                return session.say(welcome.text, allow_interruptions=welcome.interruptible)
            return session.say(welcome.text, audio=audio, allow_interruptions=welcome.interruptible)
        case "generate":
            return session.generate_reply(
                instructions=welcome.text.strip() or GREETING_INSTRUCTIONS,
                allow_interruptions=welcome.interruptible,
            )
        case "none":
            return None
        case _ as unreachable:
            assert_never(unreachable)


class CallLimits:
    """Maximum duration and user silence for one session. `start` once, `aclose` at the end.

    A limit that ends the call tells `on_end` which (``max_duration``, ``user_silence``) before the goodbye.
    """

    def __init__(
        self,
        *,
        session: AgentSession[Any],
        limits: Limits,
        on_end: Callable[[str], None],
        watch_silence: bool = True,
    ) -> None:
        self._session = session
        self._limits = limits
        self._on_end = on_end
        self._watch_silence = watch_silence
        self._reprompts = 0
        self._tasks = TaskSet()
        self._ending = False
        self._silence: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._tasks.spawn(self._max_duration())
        if self._watch_silence:
            self._session.on("user_state_changed", self._on_user_state)

    async def aclose(self) -> None:
        if self._watch_silence:
            self._session.off("user_state_changed", self._on_user_state)
        await self._tasks.cancel()

    def _on_user_state(self, event: UserStateChangedEvent) -> None:
        if event.new_state == "speaking":
            self._reprompts = 0
            if self._silence is not None:
                self._silence.cancel()
                self._silence = None
        elif event.new_state == "away" and not self._ending and self._silence is None:
            self._silence = self._tasks.spawn(self._while_silent(), name="webcall.silence")

    async def _while_silent(self) -> None:
        """Re-prompt while the caller stays silent, one timeout apart; then say goodbye."""
        while self._session.user_state == "away" and not self._ending:
            if self._reprompts >= self._limits.silence_reprompts:
                self._silence = None
                await self._end(reason="user_silence", instructions=SILENCE_GOODBYE_INSTRUCTIONS)
                return
            self._reprompts += 1
            logger.info("user silent, re-prompting", extra={"reprompt": self._reprompts})
            await self._session.generate_reply(instructions=REPROMPT_INSTRUCTIONS).wait_for_playout()
            await asyncio.sleep(self._limits.user_silence_timeout_s)
        self._silence = None

    async def _max_duration(self) -> None:
        await asyncio.sleep(self._limits.max_duration_s)
        await self._end(reason="max_duration", instructions=TIME_UP_GOODBYE_INSTRUCTIONS)

    async def _end(self, *, reason: str, instructions: str) -> None:
        if self._ending:
            return
        self._ending = True
        self._on_end(reason)
        logger.info("call limit reached, saying goodbye", extra={"reason": reason})
        with contextlib.suppress(RuntimeError):
            await self._session.interrupt(force=True)
        try:
            handle = self._session.generate_reply(instructions=instructions, allow_interruptions=False)
            await asyncio.wait_for(handle.wait_for_playout(), timeout=GOODBYE_TIMEOUT_S)
        except (RuntimeError, TimeoutError):
            logger.warning("goodbye not played", extra={"reason": reason})
        self._session.shutdown(drain=True)


def ambience_player(config: Ambience) -> BackgroundAudioPlayer | None:
    """A player for the configured ambience clip and thinking sound on their own track, or None when both are off."""
    if config.volume <= 0.0 or not (config.enabled or config.thinking):
        return None
    ambient = AudioConfig(ambience_clip(config.clip), volume=config.volume) if config.enabled else None
    # Typing sits under the voice: the thinking sound plays while the agent waits for the LLM, never over speech.
    thinking = AudioConfig(BuiltinAudioClip.KEYBOARD_TYPING, volume=config.volume) if config.thinking else None
    return BackgroundAudioPlayer(ambient_sound=ambient, thinking_sound=thinking)


def ambience_clip(name: str) -> BuiltinAudioClip:
    """The built-in clip for a config name (``office_ambience``, ``city-ambience``...); office for unknown names."""
    key = name.strip().upper().replace("-", "_").replace(" ", "_")
    return BuiltinAudioClip.__members__.get(key, BuiltinAudioClip.OFFICE_AMBIENCE)


def _update_tts(engine: TtsEngine | None, config: CallConfig) -> None:
    """Voice and speed onto the chain's first TTS, in its provider's terms (`pipeline.tts_options`)."""
    target = _primary_tts(engine)
    update: Callable[..., None] | None = getattr(target, "update_options", None)
    if update is not None:
        update(**tts_options(config.tts))


def _update_stt(engine: SttEngine | None, language: str) -> None:
    target = _primary_stt(engine)
    match target:
        case deepgram.STT():
            target.update_options(language=language)
        case openai.STT():
            # As the pipeline builds it: with two languages ("multi") the model detects the language itself.
            if language == "multi":
                target.update_options(detect_language=True)
            else:
                target.update_options(language=base_language(language), detect_language=False)
        case _:
            return


def _primary_tts(engine: TtsEngine | None) -> TtsEngine | None:
    if isinstance(engine, tts.FallbackAdapter):
        members: tuple[TtsEngine, ...] = framework.fallback_members(engine)
        return members[0] if members else None
    return engine


def _primary_stt(engine: SttEngine | None) -> SttEngine | None:
    """The chain's first STT, unwrapped from the VAD-driven ``StreamAdapter`` a non-streaming STT sits behind."""
    if isinstance(engine, stt.FallbackAdapter):
        members: tuple[SttEngine, ...] = framework.fallback_members(engine)
        engine = members[0] if members else None
    return engine.wrapped_stt if isinstance(engine, stt.StreamAdapter) else engine
