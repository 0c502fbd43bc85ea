"""Bounds on typed chat: the chat events of a call, the limits on messages and the token bucket that paces turns.

- **Limits** (`ChatLimits`): a message longer than `chat.max_message_chars` is truncated (event
  ``chat_message_truncated``); a token bucket (`TokenBucket`) bounds the turns a flood can cause: over the rate, the
  messages waiting are answered together in one turn (event ``chat_throttled``) of at most
  `ChatLimits.max_batch_messages` messages and `ChatLimits.max_batch_chars` characters (the rest wait for the next
  turn), and past `ChatLimits.max_pending` waiting messages new ones are refused (event ``chat_queue_full``). So
  1,000 messages in a second queue at most ``max_pending`` and cost a handful of turns. Any unicode is accepted;
  `clean_text` removes control characters other than newline and tab; a message left empty or blank is no turn
  (event ``chat_message_empty``).
- **Incidents** (`ChatIncidents`): every event is counted by code (``incident_counts`` in ``call.ended``), only the
  first `ChatLimits.incident_samples` of each code are kept whole (``incidents``), and a run of the same code with
  less than `ChatLimits.burst_gap_s` between events is logged once, when it starts; the counts are logged once more
  when the channel closes.

Events carry counts and codes, never message text. `agent.chat.ChatChannel` applies all of this.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from agent.log import get_logger

logger = get_logger(__name__)

ChatEventCode = Literal[
    "chat_message_truncated",
    "chat_throttled",
    "chat_queue_full",
    "chat_degraded",
    "chat_reply_failed",
    "chat_message_empty",
]


@dataclass(frozen=True, kw_only=True)
class ChatEvent:
    """Something the chat channel did that the call events should record. `data` never holds message text."""

    code: ChatEventCode
    data: dict[str, object] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class ChatLimits:
    """Bounds on typed messages: a token bucket of `burst` turns refilled at `refill_per_s`, the messages waiting,
    the size of one throttled turn, and how much of a flood of incidents is kept and logged."""

    burst: int = 5
    refill_per_s: float = 1.0
    max_pending: int = 50
    max_batch_messages: int = 20
    max_batch_chars: int = 8000
    incident_samples: int = 5
    burst_gap_s: float = 2.0


class ChatIncidents:
    """The chat events of one call, bounded: a count per code, the first `limits.incident_samples` of each code,
    one log line per burst of a code (a burst ends after `limits.burst_gap_s` without that code)."""

    def __init__(self, limits: ChatLimits) -> None:
        self._limits = limits
        self.samples: list[ChatEvent] = []
        self.counts: dict[str, int] = {}
        self._last_at: dict[str, float] = {}

    def record(self, code: ChatEventCode, **data: object) -> None:
        event = ChatEvent(code=code, data=data)
        count = self.counts.get(code, 0) + 1
        self.counts[code] = count
        if count <= self._limits.incident_samples:
            self.samples.append(event)
        now = time.monotonic()
        last = self._last_at.get(code)
        self._last_at[code] = now
        if last is None or now - last > self._limits.burst_gap_s:
            logger.info("chat event", extra={"code": code, "count": count, **{f"chat_{k}": v for k, v in data.items()}})

    def log_totals(self) -> None:
        """One line with every count, when any event was suppressed from the log by bursting."""
        if any(count > 1 for count in self.counts.values()):
            logger.info("chat events", extra={"counts": dict(self.counts)})


class TokenBucket:
    """`burst` turns at once, refilled at `refill_per_s`."""

    def __init__(self, limits: ChatLimits) -> None:
        self._capacity = float(limits.burst)
        self._rate = limits.refill_per_s
        self._tokens = float(limits.burst)
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def take(self) -> None:
        self._refill()
        self._tokens -= 1.0

    def wait_s(self) -> float:
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self._rate)


def clean_text(text: str) -> str:
    """Remove control characters (keeping newline and tab); everything else in unicode is kept as typed."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
