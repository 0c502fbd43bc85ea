"""Typed chat on `lk.chat` alongside voice: input, reply modality, limits and degradation to text.

`ChatChannel` owns everything a typed message goes through between the room and the LLM:

- **No message is dropped, none is answered out of turn.** The framework's default text handler awaits
  `session.interrupt()`, which raises while a non-interruptible speech (the welcome) plays, and the message is lost;
  and RoomIO hands a message on when its stream has been read, so a long one can come after a short one sent after
  it. The channel reads ``lk.chat`` itself, in the order the streams began (`agent.chat_order`), and only queues
  each message; one task answers the queue in order, each turn after the speech in progress has played out (typed
  messages never cut the agent off).
- **Replies match the channel** (`CallConfig.chat.reply_mode`):
    ``auto``  typed -> text reply on ``lk.transcription``, spoken -> voice (with its synced transcription);
    ``text``  every reply is text, the agent never synthesizes speech (a text-only call costs no TTS);
    ``voice`` every reply is spoken, typed ones too;
    ``both``  every reply is spoken, and a reply to a typed message is also posted whole on ``lk.chat``.
  With ``replies_on_chat`` (the deployment's ``WEBCALL_CHAT_REPLIES_ON_CHAT``) a text reply is also posted whole on
  ``lk.chat`` once it is complete, for frontends that show only that topic.
  A text turn runs with the session's audio output disabled: the framework then builds no TTS for the turn and the
  transcript synchronizer passes text straight through, so the reply streams as the LLM produces it instead of being
  paced to audio playout.
- **Limits and incidents** (`agent.chat_limits`): long messages are truncated, a token bucket batches a flood
  into a few turns, a full queue refuses, and every chat event is counted and logged once per burst.
  Text replies go out through the framework's transcript sinks, which strip TTS markup; the copy posted on
  ``lk.chat`` is stripped the same way.
- **Degradation**: when the STT or TTS fails unrecoverably the call goes on in text: audio in that direction is
  disabled, the agent says so in the chat (event ``chat_degraded``), and typed messages keep being answered.
- **Legacy chat**: a message sent with livekit-client's deprecated ``sendChatMessage()`` (a ``ChatMessage`` data
  packet, `agent.legacy_chat`) is answered like one on ``lk.chat``, and the reply is also sent back as a
  ``ChatMessage`` packet, which is what such a frontend shows.
- **Multi-party calls** (ScaiWave): messages from every participant are answered and attributed by speaker (the
  LLM sees ``"<name>: <text>"``); in two-party calls only the linked caller's messages are read, as RoomIO does. A
  scribe call passes `should_answer(text, speaker)`: every message goes into the transcript, only those it accepts
  are answered.

Known limit: a text turn turns the session's audio output off while it runs, so a reply the agent starts to a
spoken turn during that time (the caller talks while a typed message is being answered) is given in text too.

Events carry counts and codes, never message text. The message text is caller data: it goes to the transcript and
the LLM, never into a log message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from livekit import rtc
from livekit.agents import AgentSession, ErrorEvent, llm, stt, tts
from livekit.agents.voice.room_io import TextInputEvent, TextInputOptions

from agent import metrics
from agent.chat_limits import ChatEvent, ChatEventCode, ChatIncidents, ChatLimits, TokenBucket, clean_text
from agent.chat_order import ArrivalOrder
from agent.config.call_config import CallConfig
from agent.errors import LegacyChatError
from agent.framework import strip_markup
from agent.legacy_chat import LegacyChat, send_legacy_chat
from agent.log import get_logger
from agent.tasks import TaskSet
from agent.transcript import AGENT_SPEAKER, Transcript

logger = get_logger(__name__)

TOPIC_CHAT = "lk.chat"
TOPIC_TRANSCRIPTION = "lk.transcription"

Modality = Literal["text", "voice"]

DEGRADED_NOTICE = (
    "Sorry, voice isn't working on my side right now. Please type your messages here and I'll keep answering in "
    "the chat."
)
TEXT_TURN_INSTRUCTIONS = (
    "The user typed this message in the chat and your reply will be shown as text, not spoken: answer in plain "
    "text, with no speech markup or SSML tags."
)


@dataclass(frozen=True, kw_only=True)
class _Message:
    text: str
    speaker: str
    legacy: bool = False


class _TextTurnWarningFilter(logging.Filter):
    """Drops the framework's warning that audio was detached from the transcript synchronizer.

    A text turn detaches the audio output on purpose (that is how its text bypasses audio pacing); the framework
    reads that as a misconfiguration and warns once per turn, which would only be noise in the call's logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("TranscriptSynchronizer audio output was detached")


_TEXT_TURN_FILTER = _TextTurnWarningFilter()


class ChatChannel:
    """Typed chat of one call. Build it before `session.start`, pass `text_input_options()` to RoomIO.

    The channel keeps the call's transcript (`transcript`, spoken and typed turns), which the call's events read.
    Usage (`agent.call.Call`):
        chat = ChatChannel(session=session, config=config, should_answer=answer_filter)
        await session.start(agent, room=room, room_options=RoomOptions(text_input=chat.text_input_options(), ...))
        await chat.start(room)
        ...
        await chat.aclose()
    """

    def __init__(
        self,
        *,
        session: AgentSession[Any],
        config: CallConfig,
        limits: ChatLimits | None = None,
        multi_party: bool | None = None,
        should_answer: Callable[[str, str], bool] | None = None,
        replies_on_chat: bool = False,
    ) -> None:
        self._session = session
        self._config = config
        self._replies_on_chat = replies_on_chat
        self.transcript = Transcript()
        self._limits = limits if limits is not None else ChatLimits()
        self.incidents = ChatIncidents(self._limits)
        self._bucket = TokenBucket(self._limits)
        self.multi_party = config.dialect == "scaiwave" if multi_party is None else multi_party
        # scribe calls answer only messages that address the agent: the worker passes that test (text, speaker)
        self._should_answer = should_answer
        self._pending: deque[_Message] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room: rtc.Room | None = None
        self._caller_identity: str | None = None
        self._legacy: LegacyChat | None = None
        self._task: asyncio.Task[None] | None = None
        self._side_tasks = TaskSet()
        self._order = ArrivalOrder(deliver=self._on_room_message)
        self._closed = False
        self.degraded: set[Literal["stt", "tts"]] = set()
        self._session.on("error", self._on_session_error)
        if config.chat.reply_mode == "text":
            # before session.start, so that not even the welcome is synthesized
            self._session.output.set_audio_enabled(False)

    @property
    def events(self) -> tuple[ChatEvent, ...]:
        """The incidents kept whole (the first few of each code)."""
        return tuple(self.incidents.samples)

    @property
    def incident_counts(self) -> dict[str, int]:
        """How many incidents of each code the call had."""
        return dict(self.incidents.counts)

    # -- wiring -----------------------------------------------------------------------------------------------

    async def text_input_cb(self, session: AgentSession[Any], ev: TextInputEvent) -> None:
        """livekit `TextInputCallback`: queue the message and return at once (never interrupts, never raises)."""
        del session
        speaker = ev.participant.identity if ev.participant is not None else self.transcript.default_speaker
        self.submit(ev.text, speaker=speaker)

    def text_input_options(self) -> TextInputOptions:
        return TextInputOptions(text_input_cb=self.text_input_cb)

    async def start(self, room: rtc.Room | None = None, *, caller_identity: str | None = None) -> None:
        """Start answering. With a room: read `lk.chat` in place of RoomIO, every participant's in a multi-party
        call, else only the linked caller's (`caller_identity` until one is linked, as RoomIO does)."""
        self._room = room
        self._caller_identity = caller_identity
        logging.getLogger("livekit.agents").addFilter(_TEXT_TURN_FILTER)
        self.transcript.attach(self._session)
        if room is not None:
            # RoomIO hands a message on when its stream has been read, so a long one is answered after a short one
            # sent after it: take `lk.chat` over and answer in the order the streams began (`agent.chat_order`)
            with contextlib.suppress(ValueError, KeyError):
                room.unregister_text_stream_handler(TOPIC_CHAT)
            room.register_text_stream_handler(TOPIC_CHAT, self._order.read)
        if room is not None:
            self._legacy = LegacyChat.listen(room, on_message=self._on_legacy_message)
        self._task = asyncio.create_task(self._run(), name="webcall.chat.answer")

    async def aclose(self) -> None:
        if not self._closed:
            self.incidents.log_totals()
        self._closed = True
        self._session.off("error", self._on_session_error)
        self.transcript.detach(self._session)
        if self._room is not None:
            with contextlib.suppress(ValueError, KeyError):
                self._room.unregister_text_stream_handler(TOPIC_CHAT)
        await self._order.aclose()
        if self._legacy is not None:
            await self._legacy.aclose()
        await self._side_tasks.cancel(self._task)

    async def wait_idle(self) -> None:
        """Until every queued message has been answered."""
        await self._idle.wait()

    # -- input ------------------------------------------------------------------------------------------------

    def submit(self, text: str, *, speaker: str, legacy: bool = False) -> None:
        """Queue one typed message (truncated, cleaned) and record it in the transcript."""
        if self._closed:
            return
        if len(self._pending) >= self._limits.max_pending:
            self._emit("chat_queue_full", pending=len(self._pending))
            return
        limit = self._config.chat.max_message_chars
        text = clean_text(text)
        if len(text) > limit:
            self._emit("chat_message_truncated", length=len(text), limit=limit)
            text = text[:limit]
        if not text.strip():  # nothing to answer (or only control characters): not a turn, but counted
            self._emit("chat_message_empty", length=len(text))
            return
        self.transcript.add(channel="chat", role="user", speaker=speaker, text=text)
        if self._should_answer is not None and not self._should_answer(text, speaker):
            return
        self._pending.append(_Message(text=text, speaker=speaker, legacy=legacy))
        self._idle.clear()
        self._wakeup.set()

    def _on_room_message(self, text: str, identity: str) -> None:
        # as RoomIO does: a two-party call reads only the linked caller (anyone until one is linked)
        expected = self._linked_identity() or self._caller_identity
        if self.multi_party or expected is None or identity == expected:
            self.submit(text, speaker=identity)

    def _on_legacy_message(self, text: str, identity: str) -> None:
        # legacy messages follow lk.chat's rule, except that they wait for a linked caller in a two-party call
        if self.multi_party or identity == self._linked_identity():
            self.submit(text, speaker=identity, legacy=True)

    def _linked_identity(self) -> str | None:
        try:
            linked = self._session.room_io.linked_participant
        except RuntimeError:
            return None
        return linked.identity if linked is not None else None

    # -- answering --------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = await self._take_batch()
            await self._wait_for_speech_to_end()
            try:
                await self._answer(batch)
            except Exception:
                # a failed turn must not stop the queue: the next message is still answered
                logger.exception("chat reply failed")
                self._emit("chat_reply_failed", messages=len(batch))

    async def _take_batch(self) -> list[_Message]:
        if self._bucket.try_take():
            return [self._pending.popleft()]
        # over the rate: wait for the next token, then answer what piled up meanwhile in one bounded turn
        await asyncio.sleep(self._bucket.wait_s())
        self._bucket.take()
        batch = [self._pending.popleft()]
        chars = len(batch[0].text)
        while self._pending and len(batch) < self._limits.max_batch_messages:
            chars += len(self._pending[0].text) + 1
            if chars > self._limits.max_batch_chars:
                break
            batch.append(self._pending.popleft())
        self._emit("chat_throttled", messages=len(batch), waiting=len(self._pending))
        return batch

    async def _wait_for_speech_to_end(self) -> None:
        """Typed messages are answered after the speech in progress (e.g. a non-interruptible welcome)."""
        while True:
            speech = self._session.current_speech
            if speech is None:
                await asyncio.sleep(0)
                if self._session.current_speech is None:
                    return
                continue
            if speech.done():
                # played out, but the session has not moved on from it yet
                await asyncio.sleep(0.01)
            else:
                await speech.wait_for_playout()

    def _modality_for_typed(self) -> Modality:
        if "tts" in self.degraded:
            return "text"
        mode = self._config.chat.reply_mode
        return "text" if mode in ("auto", "text") else "voice"

    def _user_text(self, batch: list[_Message]) -> str:
        if self.multi_party:
            return "\n".join(f"{m.speaker}: {m.text}" for m in batch)
        return "\n".join(m.text for m in batch)

    async def _answer(self, batch: list[_Message]) -> None:
        modality = self._modality_for_typed()
        message = llm.ChatMessage(role="user", content=[self._user_text(batch)])
        self.transcript.skip_message(message.id)
        reply = await self._reply(modality=modality, user_input=message)
        if modality == "voice" and "tts" in self.degraded and not reply:
            # the voice reply died with the TTS: answer the same message again, in text
            modality = "text"
            reply = await self._reply(modality="text", user_input=None)
        if reply and self._posts_on_chat(modality):
            await self._post_chat(reply)
        if reply and any(m.legacy for m in batch):
            await self._send_legacy(reply)

    def _posts_on_chat(self, modality: Modality) -> bool:
        """Whether a reply to a typed message, given in `modality`, is also posted whole on ``lk.chat``."""
        both = self._config.chat.reply_mode == "both"
        return both if modality == "voice" else both or self._replies_on_chat

    async def _reply(self, *, modality: Modality, user_input: llm.ChatMessage | None) -> str:
        text_turn = modality == "text"
        audio_was_enabled = self._session.output.audio_enabled
        if text_turn:
            self._session.output.set_audio_enabled(False)
            self.transcript.mark_text_reply(True)
        try:
            if user_input is None:
                handle = self._session.generate_reply(instructions=TEXT_TURN_INSTRUCTIONS)
            elif text_turn:
                handle = self._session.generate_reply(user_input=user_input, instructions=TEXT_TURN_INSTRUCTIONS)
            else:
                handle = self._session.generate_reply(user_input=user_input)
            await handle
        finally:
            if text_turn:
                self.transcript.mark_text_reply(False)
                if audio_was_enabled and "tts" not in self.degraded:
                    self._session.output.set_audio_enabled(True)
        return strip_markup(
            "\n".join(
                item.text_content or ""
                for item in handle.chat_items
                if isinstance(item, llm.ChatMessage) and item.role == "assistant"
            )
        )

    # -- degradation --------------------------------------------------------------------------------------------

    def _on_session_error(self, ev: ErrorEvent) -> None:
        err = ev.error
        if isinstance(err, tts.TTSError) and not err.recoverable:
            self._degrade("tts")
        elif isinstance(err, stt.STTError) and not err.recoverable:
            self._degrade("stt")

    def _degrade(self, role: Literal["stt", "tts"]) -> None:
        if role in self.degraded or self._closed:
            return
        first = not self.degraded
        self.degraded.add(role)
        if role == "tts":
            self._session.output.set_audio_enabled(False)
        else:
            self._session.input.set_audio_enabled(False)
        logger.warning("call degraded to text", extra={"role": role})
        self._emit("chat_degraded", role=role)
        if first:
            self.transcript.add(channel="chat", role="assistant", speaker=AGENT_SPEAKER, text=DEGRADED_NOTICE)
            # Without an STT the agent can still speak: the caller hears the notice as well as reading it.
            self._side_tasks.spawn(
                self._speak_notice(DEGRADED_NOTICE) if role == "stt" else self._post_notice(DEGRADED_NOTICE)
            )

    async def _post_notice(self, text: str) -> None:
        if self._room is not None:
            await post_notice(self._room, text, segment="degraded")

    async def _speak_notice(self, text: str) -> None:
        """`text` on ``lk.chat`` and spoken with its ``lk.transcription`` (posted as a caption if it cannot be)."""
        try:
            self._session.say(text, add_to_chat_ctx=False)
        except RuntimeError:
            await self._post_notice(text)
            return
        await self._post_chat(text)

    async def _post_chat(self, text: str) -> None:
        room = self._room
        if room is None or not room.isconnected():
            return
        await room.local_participant.send_text(text, topic=TOPIC_CHAT)

    async def _send_legacy(self, text: str) -> None:
        room = self._room
        if room is None or not room.isconnected():
            return
        try:
            await send_legacy_chat(room, text)
        except (LegacyChatError, TimeoutError) as error:
            logger.warning("legacy chat reply not sent", extra={"reason": str(error) or type(error).__name__})

    # -- helpers ----------------------------------------------------------------------------------------------

    def _emit(self, code: ChatEventCode, **data: object) -> None:
        self.incidents.record(code, **data)
        metrics.chat_incident(code)


async def post_notice(room: rtc.Room, text: str, *, segment: str) -> None:
    """Tell the room something outside any turn: on ``lk.chat`` (chat widgets) and as a final ``lk.transcription``
    segment (caption views), the segment id ``SG_<segment>_<ms>``."""
    if not room.isconnected():
        return
    await room.local_participant.send_text(text, topic=TOPIC_CHAT)
    await room.local_participant.send_text(text, topic=TOPIC_TRANSCRIPTION, attributes=final_segment(segment))


def final_segment(segment: str) -> dict[str, str]:
    """The attributes of a whole, final ``lk.transcription`` segment sent outside any turn (``SG_<segment>_<ms>``)."""
    return {"lk.transcription_final": "true", "lk.segment_id": f"SG_{segment}_{int(time.time() * 1000)}"}
