"""livekit-client's deprecated chat: ``sendChatMessage()`` data packets in, replies sent back the same way.

``LocalParticipant.sendChatMessage(text)`` (livekit-client 2.x, deprecated for ``sendText(text, {topic: "lk.chat"})``)
sends a reliable ``DataPacket`` whose value is a ``ChatMessage`` {id, timestamp, message}; a frontend built on it
shows the messages it receives as ``RoomEvent.ChatMessage``. The Rust core under the Python SDK (livekit 1.1.21)
decodes that packet into a ``chat_message`` room event, which `rtc.Room` drops without a word, and the SDK has no
call to send one. This module fills both gaps over the SDK's FFI, which is what `rtc.Room` itself is built on:

- `LegacyChat.listen` subscribes to the FFI's event queue for one room's ``chat_message`` events (the filter runs
  on the FFI thread and lets nothing else through) and hands each new message to a callback; edits, deletions and
  messages generated from transcriptions are not new messages and are skipped.
- `send_legacy_chat` sends a ``ChatMessage`` packet from the room's local participant.

The FFI client, its event queue, ``_ffi_handle`` and the ``send_chat_message`` request are livekit-rtc private
names; `RTC_VERSION` is the release they were read in, and ``tests/chat/test_legacy_chat.py`` fails when another one
is installed or a name moved, so an upgrade of ``livekit`` re-reads them on purpose.

The older components-js chat, a user data packet on topic ``lk-chat-topic``, is not answered: current components-js
sends it only as a copy (flagged ``ignore``/``ignoreLegacy``) of a message it also sends on ``lk.chat`` or as a
``ChatMessage``. An unflagged one is logged once per call as ignored. Message text is caller data: never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Final

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2
from livekit.rtc._utils import Queue

from agent.errors import LegacyChatError
from agent.log import get_logger

logger = get_logger(__name__)

RTC_VERSION: Final = "1.1.21"
LEGACY_TOPIC: Final = "lk-chat-topic"
SEND_WITHIN_S: Final = 10.0


def _ffi_handle(obj: rtc.Room | rtc.LocalParticipant) -> int:
    # Neither `rtc.Room` nor `rtc.LocalParticipant` exposes its FFI handle; both keep it as `_ffi_handle`.
    handle = obj._ffi_handle
    if handle is None:
        raise LegacyChatError("room not connected")
    return handle.handle


class LegacyChat:
    """The ``sendChatMessage()`` messages of one room, each handed to `on_message(text, sender_identity)`."""

    def __init__(self, room: rtc.Room, *, on_message: Callable[[str, str], None]) -> None:
        self._room = room
        self._on_message = on_message
        self._topic_logged = False
        self._queue: Queue[ffi_pb2.FfiEvent] | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def listen(cls, room: rtc.Room, *, on_message: Callable[[str, str], None]) -> LegacyChat:
        """Start listening on `room` (connected); `aclose` stops."""
        chat = cls(room, on_message=on_message)
        handle = _ffi_handle(room)

        def ours(event: ffi_pb2.FfiEvent) -> bool:
            return (
                event.WhichOneof("message") == "room_event"
                and event.room_event.room_handle == handle
                and event.room_event.WhichOneof("message") == "chat_message"
            )

        queue = FfiClient.instance.queue.subscribe(asyncio.get_running_loop(), filter_fn=ours)
        chat._queue = queue
        chat._task = asyncio.create_task(chat._read(queue), name="webcall.chat.legacy")
        room.on("data_received", chat._on_data)
        return chat

    async def _read(self, queue: Queue[ffi_pb2.FfiEvent]) -> None:
        while True:
            received = (await queue.get()).room_event.chat_message
            message = received.message
            if message.HasField("edit_timestamp") or message.deleted or message.generated:
                continue
            self._on_message(message.message, received.participant_identity)

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if packet.topic != LEGACY_TOPIC or self._topic_logged or _is_copy(packet.data):
            return
        self._topic_logged = True
        sender = packet.participant.identity if packet.participant is not None else None
        logger.info("legacy chat data packet ignored", extra={"topic": LEGACY_TOPIC, "sender": sender})

    async def aclose(self) -> None:
        self._room.off("data_received", self._on_data)
        if self._queue is not None:
            FfiClient.instance.queue.unsubscribe(self._queue)
            self._queue = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _is_copy(data: bytes) -> bool:
    """Whether an ``lk-chat-topic`` payload is components-js's flagged copy of a message sent another way too."""
    try:
        payload = json.loads(data)
    except ValueError:
        return False
    return isinstance(payload, dict) and bool(payload.get("ignore") or payload.get("ignoreLegacy"))


async def send_legacy_chat(room: rtc.Room, text: str) -> None:
    """Send `text` as a ``ChatMessage`` packet from `room`'s local participant (what ``sendChatMessage`` sends).

    Raises:
        LegacyChatError: the room could not send it.
    """
    request = ffi_pb2.FfiRequest()
    request.send_chat_message.local_participant_handle = _ffi_handle(room.local_participant)
    request.send_chat_message.message = text
    # The request is `send_chat_message`; its callback event is `chat_message` (a ``SendChatMessageCallback``).
    queue = FfiClient.instance.queue.subscribe(
        asyncio.get_running_loop(), filter_fn=lambda e: e.WhichOneof("message") == "chat_message"
    )
    try:
        response = FfiClient.instance.request(request)
        async_id = response.send_chat_message.async_id
        async with asyncio.timeout(SEND_WITHIN_S):
            done = await queue.wait_for(lambda e: e.chat_message.async_id == async_id)
    finally:
        FfiClient.instance.queue.unsubscribe(queue)
    if done.chat_message.HasField("error"):
        raise LegacyChatError(done.chat_message.error)
