"""The call events the worker posts to the dev page, verified, kept and streamed to the page.

The worker's webhook (``WEBCALL_EVENTS_URL`` = this page's ``/webhook``, ``WEBCALL_EVENTS_SECRET`` shared with it)
posts each event signed per Standard Webhooks; `EventHub.receive` verifies it with the `standardwebhooks` library,
as any receiver should, and answers 401 for a request that does not verify. Verified events are kept in memory (the
last `KEPT_EVENTS`) and pushed to each page listening for their room (`EventHub.listen`, served as server-sent
events): a page that starts listening late gets its room's earlier events first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final

from standardwebhooks import Webhook, WebhookVerificationError

KEPT_EVENTS: Final = 500
QUEUED_PER_LISTENER: Final = 100


class UnverifiedEvent(Exception):
    """A webhook request whose signature does not verify (or no secret is configured here)."""


class EventHub:
    """Received events and the pages listening for them."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._verifiers = [Webhook(secret) for secret in secrets]
        self._events: deque[dict[str, object]] = deque(maxlen=KEPT_EVENTS)
        self._listeners: set[tuple[str, asyncio.Queue[dict[str, object]]]] = set()

    @property
    def enabled(self) -> bool:
        return bool(self._verifiers)

    def receive(self, body: bytes, headers: Mapping[str, str]) -> dict[str, object]:
        """Verify one webhook request and hand its event to the listeners of its room."""
        event = self._verified(body, dict(headers))
        self._events.append(event)
        for room, queue in self._listeners:
            if event.get("room") == room:
                with contextlib.suppress(asyncio.QueueFull):  # a page that stopped reading misses events
                    queue.put_nowait(event)
        return event

    def _verified(self, body: bytes, headers: dict[str, str]) -> dict[str, object]:
        for verifier in self._verifiers:
            try:
                event = verifier.verify(body, headers)
            except (WebhookVerificationError, ValueError):
                continue
            if isinstance(event, dict):
                return event
        raise UnverifiedEvent

    async def listen(self, room: str) -> AsyncIterator[dict[str, object]]:
        """The room's events so far, then each new one as it arrives (until the caller stops iterating)."""
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(maxsize=QUEUED_PER_LISTENER)
        entry = (room, queue)
        self._listeners.add(entry)
        try:
            for event in [event for event in self._events if event.get("room") == room]:
                yield event
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(entry)
