"""The events spool: every event of a call as one JSON line in ``<WEBCALL_EVENTS_DIR>/<job id>.jsonl``.

Each event is written atomically: the call's file is rewritten whole (its previous lines plus the new one) into a
temporary file in the same directory, flushed to disk, then renamed over the old one. A reader (a shipper, an
operator with ``jq``) therefore sees either the file before the event or after it, never a torn line. One file per
call keeps concurrent calls (one job process each) from ever writing the same file; the events of one call are
written one at a time by its emitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from agent.events.files import write_atomically
from agent.events.payload import Event
from agent.log import get_logger

logger = get_logger(__name__)


class SpoolSink:
    """Writes events of calls under `directory` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, job_id: str) -> Path:
        # Job ids are server-made (``AJ_...``); anything else is reduced to a safe file name.
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in job_id).lstrip(".") or "job"
        return self.directory / f"{safe}.jsonl"

    async def send(self, event: Event, *, job_id: str) -> bool:
        """Append `event` to the call's file; False (logged) when the disk refused it. Never raises."""
        try:
            await asyncio.to_thread(self.append, event, job_id=job_id)
        except OSError as error:
            logger.error(
                "call event not spooled",
                extra={"event_type": event.type, "event_id": event.id, "error": type(error).__name__},
            )
            return False
        return True

    def holds(self, event_id: str, *, job_id: str) -> bool:
        """Blocking: whether the call's file has an event with this id."""
        try:
            lines = self.path_for(job_id).read_bytes().splitlines()
        except FileNotFoundError:
            return False
        for line in lines:
            with contextlib.suppress(ValueError):
                if json.loads(line).get("id") == event_id:
                    return True
        return False

    def append(self, event: Event, *, job_id: str) -> Path:
        """Blocking: rewrite the call's file with `event` as its last line, atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(job_id)
        previous = path.read_bytes() if path.exists() else b""
        write_atomically(path, previous + event.to_json() + b"\n")
        return path
