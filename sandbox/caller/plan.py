"""What one scripted call does, decided before anything touches the network: `CallPlan`, its `Step`s, and the one
error a call that cannot be attempted raises (`CallerError`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

DEFAULT_URL = "ws://127.0.0.1:7880"
DEFAULT_API_KEY = "devkey"
DEFAULT_API_SECRET = "secret"
DEFAULT_AGENT_NAME = "webcall-agent"

# type: lk.chat; say: espeak-ng into the microphone once the agent has answered; barge_in: say it as soon as the
# agent is speaking; wait: stay silent for `seconds`; leave: disconnect (the script ends there).
Action = Literal["type", "say", "barge_in", "wait", "leave"]
SPOKEN: frozenset[Action] = frozenset({"say", "barge_in"})


class CallerError(Exception):
    """The call could not be attempted: a bad argument, an unreadable file, or a server that cannot be used.

    The message is one line meant for stderr; it never holds the API secret or a token.
    """


@dataclass(frozen=True)
class Step:
    """One scripted caller action after the welcome."""

    action: Action
    text: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Preset:
    """What a wrapper (a golden case, a QA scenario) fills in under the command line; the command line wins, and
    its attributes are added to these."""

    room: str | None = None
    room_metadata: str | None = None
    metadata: str = ""
    participant_metadata: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    expected_welcome: str | None = None
    example_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallPlan:
    """Everything one QA call does."""

    room: str
    url: str = DEFAULT_URL
    api_key: str = DEFAULT_API_KEY
    api_secret: str = field(default=DEFAULT_API_SECRET, repr=False)
    agent_name: str = DEFAULT_AGENT_NAME
    room_metadata: str | None = None
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    participant_metadata: str = ""
    identity: str = "qa-caller"
    name: str = "QA caller"
    steps: tuple[Step, ...] = ()
    listen_s: float = 5.0
    timeout_s: float = 30.0
    record: Path | None = None
    keep: bool = False
    expected_welcome: str | None = None
    # The deployment settings a golden case needs (its ``env``): the worker must run with them for the case to hold.
    example_env: dict[str, str] = field(default_factory=dict)
    log_level: int = logging.CRITICAL


def http_url(url: str) -> str:
    """The Twirp base URL of a LiveKit websocket URL (ws -> http, wss -> https)."""
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    return url


def shown_url(url: str) -> str:
    """The URL as it may appear in output: no user info, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
