"""What a QA run reads back from the stack besides the caller's report: the fake providers' recorded requests
(``GET /sandbox/requests?since=N`` on each) and the call events the worker spooled (``<WEBCALL_EVENTS_DIR>/*.jsonl``).

Either may be unobservable (a real provider, a worker without a spool): the reader then says why, and the checks
that need it fail with that reason rather than pass unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

REQUESTS_PATH = "/sandbox/requests"
HTTP_TIMEOUT_S = 5.0
LLM_PATH = "/v1/chat/completions"
TTS_PATHS = ("/v1/audio/speech", "/v1/speak")


def origin(base_url: str) -> str:
    """``scheme://host:port`` of a provider base URL (``http://127.0.0.1:7890/v1`` -> ``http://127.0.0.1:7890``)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class ProviderRequests:
    """The requests the providers received during one call, or why they could not be read."""

    requests: tuple[Mapping[str, Any], ...] = ()
    unobservable: str | None = None

    def llm(self) -> list[Mapping[str, Any]]:
        """The chat-completion request bodies, in order."""
        return [r["json"] for r in self.requests if r.get("path") == LLM_PATH and isinstance(r.get("json"), dict)]

    def tts(self) -> list[Mapping[str, Any]]:
        """The TTS requests (OpenAI speech, Deepgram speak), in order."""
        return [r for r in self.requests if r.get("path") in TTS_PATHS]

    def system_prompt(self) -> str | None:
        """The first LLM request's system (or developer) message."""
        for body in self.llm():
            for message in body.get("messages") or ():
                if isinstance(message, dict) and message.get("role") in ("system", "developer"):
                    return str(message.get("content"))
        return None


class Providers:
    """The fake providers at ``base_urls`` (OpenAI's and Deepgram's), read over HTTP."""

    def __init__(self, base_urls: Sequence[str]) -> None:
        self.origins = sorted({origin(url) for url in base_urls if url})

    async def marks(self) -> dict[str, int]:
        """Where each fake's record ends now: a call's requests are those after it."""
        marks: dict[str, int] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as http:
            for where in self.origins:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                    marks[where] = int((await _get(http, where, since=0))["next"])
        return marks

    async def since(self, marks: Mapping[str, int]) -> ProviderRequests:
        if not self.origins:
            return ProviderRequests(unobservable="no provider base URL (OPENAI_BASE_URL, DEEPGRAM_BASE_URL)")
        found: list[Mapping[str, Any]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as http:
            for where in self.origins:
                if where not in marks:
                    return ProviderRequests(
                        unobservable=f"{where} does not answer {REQUESTS_PATH} (not a sandbox fake)"
                    )
                try:
                    listed = await _get(http, where, since=marks[where])
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    return ProviderRequests(unobservable=f"{where} stopped answering {REQUESTS_PATH}")
                found.extend(r for r in listed.get("requests", ()) if isinstance(r, dict))
        found.sort(key=lambda r: float(r.get("started") or 0.0))
        return ProviderRequests(requests=tuple(found))


async def _get(http: aiohttp.ClientSession, where: str, *, since: int) -> dict[str, Any]:
    async with http.get(f"{where}{REQUESTS_PATH}", params={"since": str(since)}) as answer:
        answer.raise_for_status()
        body = await answer.json()
    if not isinstance(body, dict):
        raise ValueError("not an object")
    return body


@dataclass(frozen=True)
class CallEvents:
    """The events spooled for one room, in the order written, or why they could not be read."""

    events: tuple[Mapping[str, Any], ...] = ()
    unobservable: str | None = None

    def of_type(self, event_type: str) -> list[Mapping[str, Any]]:
        return [event for event in self.events if event.get("type") == event_type]


@dataclass
class EventSpool:
    """The worker's events spool (``WEBCALL_EVENTS_DIR``), shared with it through the file system."""

    directory: Path | None

    def read(self, room: str) -> CallEvents:
        if self.directory is None:
            return CallEvents(unobservable="no events directory (--events-dir or WEBCALL_EVENTS_DIR)")
        events: list[Mapping[str, Any]] = []
        for path in sorted(self.directory.glob("*.jsonl")):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                for line in path.read_text(encoding="utf-8").splitlines():
                    with contextlib.suppress(ValueError):
                        event = json.loads(line)
                        if isinstance(event, dict) and event.get("room") == room:
                            events.append(event)
        return CallEvents(events=tuple(events))

    async def wait_for(self, room: str, *, types: Collection[str], within_s: float) -> CallEvents:
        """The room's events once every type in ``types`` is among them, or what there is after ``within_s``."""
        deadline = time.monotonic() + within_s
        while True:
            found = self.read(room)
            have = {str(event.get("type")) for event in found.events}
            if found.unobservable or set(types) <= have or time.monotonic() >= deadline:
                return found
            # The spool is a directory of files the worker rewrites: there is nothing to await but time.
            await asyncio.sleep(0.2)
