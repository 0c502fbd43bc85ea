"""One transcript of a call: typed chat and speech, in order, each item tagged with its channel and speaker.

`Transcript` owns the ordered record of what was said and typed in a call. Each item has `at`, the wall-clock time
it began (a typed message when it arrived, a reply when the agent started giving it) and `seq`, the order it was
recorded in (an agent's speech is recorded when it ends). `items` is ordered by `at`, ties by `seq`; listeners
(the call events) receive each item when it is recorded.

Where items come from:
    - typed messages: `agent.chat.ChatChannel` appends them when they arrive (channel ``chat``), before the agent
      answers, so a message typed during the welcome is in the transcript before the answer to it;
    - spoken user turns and the agent's replies: `Transcript.attach(session)` follows the session's
      ``conversation_item_added`` events. A reply is tagged ``chat`` when it was given in text (see
      `mark_text_reply`) and ``voice`` otherwise; user messages that the chat channel already recorded are skipped.

The text of an item is caller data: it goes to call events, never into log messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from livekit.agents import AgentSession, ConversationItemAddedEvent, llm

Channel = Literal["chat", "voice"]
Role = Literal["user", "assistant"]
AGENT_SPEAKER = "agent"


@dataclass(frozen=True, kw_only=True)
class TranscriptItem:
    """One utterance or message. `seq` orders items; `at` is the wall-clock time it was recorded."""

    seq: int
    at: float
    channel: Channel
    role: Role
    speaker: str
    text: str
    interrupted: bool = False


Listener = Callable[[TranscriptItem], None]


class Transcript:
    """The ordered transcript of one call."""

    def __init__(self, *, default_speaker: str = "caller") -> None:
        self._items: list[TranscriptItem] = []
        self._listeners: list[Listener] = []
        self._recorded_message_ids: set[str] = set()
        self._text_reply_depth = 0
        self.default_speaker = default_speaker

    @property
    def items(self) -> tuple[TranscriptItem, ...]:
        return tuple(sorted(self._items, key=lambda i: (i.at, i.seq)))

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every item appended from now on."""
        self._listeners.append(listener)

    def add(
        self,
        *,
        channel: Channel,
        role: Role,
        speaker: str,
        text: str,
        interrupted: bool = False,
        at: float | None = None,
    ) -> TranscriptItem:
        item = TranscriptItem(
            seq=len(self._items),
            at=time.time() if at is None else at,
            channel=channel,
            role=role,
            speaker=speaker,
            text=text,
            interrupted=interrupted,
        )
        self._items.append(item)
        for listener in self._listeners:
            listener(item)
        return item

    def skip_message(self, message_id: str) -> None:
        """The chat channel recorded this user message itself; don't record it again from the session."""
        self._recorded_message_ids.add(message_id)

    def mark_text_reply(self, active: bool) -> None:
        """While active, the agent's replies are given in text and tagged ``chat``."""
        self._text_reply_depth += 1 if active else -1

    def attach(self, session: AgentSession[Any]) -> None:
        """Follow the session's conversation: spoken user turns and every agent reply."""
        session.on("conversation_item_added", self._on_item_added)

    def detach(self, session: AgentSession[Any]) -> None:
        session.off("conversation_item_added", self._on_item_added)

    def _on_item_added(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        if item.id in self._recorded_message_ids:
            return
        text = item.text_content or ""
        if not text:
            return
        if item.role == "user":
            self.add(channel="voice", role="user", speaker=self.default_speaker, text=text, at=item.created_at)
            return
        channel: Channel = "chat" if self._text_reply_depth > 0 else "voice"
        self.add(
            channel=channel,
            role="assistant",
            speaker=AGENT_SPEAKER,
            text=text,
            interrupted=item.interrupted,
            at=item.created_at,
        )
