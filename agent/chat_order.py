"""Typed messages in the order their ``lk.chat`` streams began, not the order their reads ended.

Each typed message is a text stream of its own. The room hands streams over in the order their headers arrive (the
data channel is reliable and ordered), but each is then read to its end in a task of its own, so a long message, or
one a loaded worker reads late, can end after a message sent after it. The framework's RoomIO hands each message on
when its read ends; a caller who types "my order number is" and then "4711" could be answered about "4711" first.

`ArrivalOrder` keeps one slot per stream, in arrival order, and hands a message on only when every stream that began
before it has been read. A stream still unread after `hold_s` stops holding the ones behind it (they go on; it
follows when it ends), so a stalled sender cannot silence the chat. A stream that fails to read holds nothing.

Usage (`agent.chat.ChatChannel`):
    order = ArrivalOrder(deliver=lambda text, speaker: ...)
    room.register_text_stream_handler("lk.chat", order.read)
    ...
    await order.aclose()
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from agent.log import get_logger
from agent.tasks import TaskSet

logger = get_logger(__name__)

# How long a message waits for an earlier stream that has not ended: longer than any typed message takes to arrive.
HOLD_S: Final = 10.0


class TextStream(Protocol):
    """What `ArrivalOrder` needs of a ``livekit.rtc.TextStreamReader``."""

    async def read_all(self) -> str: ...


@dataclass(eq=False)
class _Slot:
    speaker: str
    text: str | None = None
    read: bool = False  # its read has ended (`text` is None if it failed)
    passed: bool = False  # unread after `hold_s`: those behind it no longer wait
    released: bool = False  # out of the queue: it is handed on as soon as it is read


class ArrivalOrder:
    """Hands each typed message to `deliver(text, speaker)` in the order its stream began."""

    def __init__(self, deliver: Callable[[str, str], None], *, hold_s: float = HOLD_S) -> None:
        self._deliver = deliver
        self._hold_s = hold_s
        self._queue: deque[_Slot] = deque()
        self._tasks = TaskSet()

    def read(self, reader: TextStream, participant_identity: str) -> None:
        """A ``register_text_stream_handler`` handler: called in the order the streams' headers arrive."""
        slot = _Slot(speaker=participant_identity)
        self._queue.append(slot)
        self._tasks.spawn(self._read(reader, slot), name="webcall.chat.read")

    async def aclose(self) -> None:
        """Stop reading; messages not yet handed on are dropped."""
        await self._tasks.cancel()
        self._queue.clear()

    async def _read(self, reader: TextStream, slot: _Slot) -> None:
        reading = asyncio.ensure_future(reader.read_all())
        try:
            done, _ = await asyncio.wait({reading}, timeout=self._hold_s)
            if not done:
                slot.passed = True
                self._release_ready()
                await asyncio.wait({reading})
            slot.text = reading.result()
        except asyncio.CancelledError:
            reading.cancel()
            raise
        except Exception as error:  # an aborted stream: nothing to hand on, and nothing held behind it
            logger.warning("typed message not read", extra={"error_type": type(error).__name__})
        slot.read = True
        if slot.released:
            self._hand_on(slot)
        else:
            self._release_ready()

    def _release_ready(self) -> None:
        while self._queue and (self._queue[0].read or self._queue[0].passed):
            slot = self._queue.popleft()
            slot.released = True
            if slot.read:
                self._hand_on(slot)

    def _hand_on(self, slot: _Slot) -> None:
        if slot.text is not None:
            self._deliver(slot.text, slot.speaker)
