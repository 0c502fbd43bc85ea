"""What the fake LLM answers: scripted replies (text and tool calls) first, then a policy (echo by default).

The default policy echoes the last user message as ``"You said: <text>"`` (a request with no user message gets
``"Hello."``), so a test or QA run can see its own words come back through the whole pipeline.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

ECHO_PREFIX = "You said: "
NO_USER_REPLY = "Hello."


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake LLM makes; ``arguments`` is sent as JSON text, streamed in pieces."""

    name: str
    arguments: Mapping[str, object] = field(default_factory=dict)
    call_id: str | None = None

    def arguments_json(self) -> str:
        return json.dumps(dict(self.arguments), separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """One assistant turn: text, tool calls, or both (text first, as OpenAI streams them)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


ReplyPolicy = Callable[[Mapping[str, object]], Reply]


def message_text(message: object) -> str:
    """The text of one chat message (string content, or the text parts of a content list)."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [part.get("text") for part in content if isinstance(part, Mapping)]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def last_user_text(body: Mapping[str, object]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, Sequence):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return None


def echo_policy(body: Mapping[str, object]) -> Reply:
    """Echo the last user message."""
    text = last_user_text(body)
    return Reply(text=NO_USER_REPLY if not text else ECHO_PREFIX + text)


class ReplyBook:
    """Scripted replies consumed in order; when they run out, ``policy`` decides."""

    def __init__(self) -> None:
        self._script: deque[Reply] = deque()
        self.policy: ReplyPolicy = echo_policy

    def script(self, *replies: Reply | str) -> None:
        """Queue replies for the next chat requests (a plain string is a text reply)."""
        self._script.extend(Reply(text=reply) if isinstance(reply, str) else reply for reply in replies)

    def next_reply(self, body: Mapping[str, object]) -> Reply:
        return self._script.popleft() if self._script else self.policy(body)

    def reset(self) -> None:
        self._script.clear()
        self.policy = echo_policy


def estimate_tokens(text: str) -> int:
    """OpenAI's rule of thumb (about four characters a token); the fake has no tokenizer."""
    return max(1, (len(text) + 3) // 4) if text else 0


def prompt_tokens(body: Mapping[str, object]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, Sequence):
        return 0
    # every message costs a few tokens of framing on top of its text
    return sum(estimate_tokens(message_text(message)) + 4 for message in messages)


def split_tokens(text: str) -> list[str]:
    """Split a reply into word-sized deltas that concatenate back to ``text``."""
    pieces: list[str] = []
    current = ""
    for char in text:
        if char == " " and current.strip():
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces
