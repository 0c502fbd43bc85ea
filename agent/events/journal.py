"""The call journal: which of a call's ``call.started`` and ``call.ended`` its job process has handed to the sinks,
so that the worker's main process can complete the pair when the job process dies (`agent.events.orphans`).

One file per job, ``<Settings.journal_dir()>/<job id>.json``, written whole (`agent.events.files`, mode 0600: it
holds the event as sent, caller data included when events carry content)::

    {"format": "webcall.journal/1", "job_id": "AJ_...",
     "owner": {"host", "pid", "started_at"},        # the job process that writes it
     "events": [{"state": "sending" | "sent", "event": {"id", "type", "idempotency_key", "body"}}]}

The job process writes an event as ``sending`` before it hands it to the sinks and marks it ``sent`` once every sink
has it (written to the spool, and delivered or kept in the outbox). A job whose process died therefore left either
no file (it died before ``call.started``), an event ``sending`` (it died while handing it over: the same event, same
id, is handed over again where it is not yet), or ``call.started`` ``sent`` with no ``call.ended`` (it died mid-call).
Beside it, ``<job id>.transcript.jsonl`` (mode 0600) gets one line per transcript item as the call records it, in
the form ``call.ended`` gives it (``payload.transcript_entry``: no text and pseudonymous speakers with content off),
so that a ``call.ended`` the main process builds for a killed call carries the transcript up to the kill
(`Journal.transcript`; a last line half-written when the process died is skipped). Each line is appended with one
``write`` on a file opened ``O_APPEND``, not fsynced: a killed process loses nothing the kernel has, a power cut may
lose the last lines.
The main process removes the files once the job's process has exited, whatever happened (`Journal.remove`). A file
left by the job processes of a main process that died with them is found by the next worker started on this host
(`Journal.abandoned`): its job process and the forkserver that forked it are both gone (no process with that pid
started at that time).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Final, Literal

import psutil
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.events.files import write_atomically
from agent.events.payload import Event, EventType
from agent.events.record import StoredEvent
from agent.log import get_logger

logger = get_logger("events.journal")

FORMAT: Final = "webcall.journal/1"
JOURNALED: Final[frozenset[EventType]] = frozenset({"call.started", "call.ended"})

State = Literal["sending", "sent"]


class Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    state: State
    event: StoredEvent

    def to_event(self) -> Event:
        stored = self.event
        return Event(id=stored.id, type=stored.type, idempotency_key=stored.idempotency_key, body=stored.body)


class Owner(BaseModel):
    """The job process that writes a journal and the process that forked it (the worker's forkserver, which lives as
    long as its main process): host, pids and start times (a pid is reused, with a new start time)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    host: str
    pid: int
    started_at: float
    parent_pid: int
    parent_started_at: float

    @classmethod
    def this_process(cls) -> Owner:
        me = psutil.Process()
        parent = me.parent()
        return cls(
            host=socket.gethostname(),
            pid=me.pid,
            started_at=me.create_time(),
            parent_pid=parent.pid if parent is not None else 0,
            parent_started_at=parent.create_time() if parent is not None else 0.0,
        )

    def gone(self) -> bool:
        """Whether the owner and its parent, processes of this host, both no longer run: no live worker will
        complete the job's events then."""
        return not _runs(self.pid, self.started_at) and not _runs(self.parent_pid, self.parent_started_at)


def _runs(pid: int, started_at: float) -> bool:
    try:
        return bool(psutil.Process(pid).create_time() == started_at)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


class JobJournal(BaseModel):
    """One job's file."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["webcall.journal/1"] = FORMAT
    job_id: str
    owner: Owner | None = None
    events: tuple[Entry, ...] = ()

    def entry(self, event_type: EventType) -> Entry | None:
        return next((e for e in self.events if e.event.type == event_type), None)

    def with_entry(self, event: Event, state: State) -> JobJournal:
        stored = StoredEvent(id=event.id, type=event.type, idempotency_key=event.idempotency_key, body=event.body)
        kept = tuple(e for e in self.events if e.event.type != event.type)
        return self.model_copy(update={"events": (*kept, Entry(state=state, event=stored))})


class Journal:
    """The journal files under `directory` (created when first written). Every method blocks: call them off the loop
    (`agent.events.files.run_blocking`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, job_id: str) -> Path:
        # Job ids are server-made (``AJ_...``); anything else is reduced to a safe file name.
        safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in job_id) or "job"
        return self.directory / f"{safe}.json"

    def transcript_path_for(self, job_id: str) -> Path:
        return self.path_for(job_id).with_suffix(".transcript.jsonl")

    def append_transcript(self, entries: list[dict[str, object]], *, job_id: str) -> None:
        """Append `entries` (rendered transcript items) to the job's transcript file, one JSON line each."""
        if not entries:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n" for entry in entries)
        fd = os.open(self.transcript_path_for(job_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data.encode("utf-8"))
        finally:
            os.close(fd)

    def transcript(self, job_id: str) -> list[dict[str, object]]:
        """The job's journaled transcript items, in the order written; a line that is not a whole JSON object (the
        last one, when the process died writing it) is skipped."""
        try:
            lines = self.transcript_path_for(job_id).read_bytes().splitlines()
        except FileNotFoundError:
            return []
        except OSError as error:
            logger.error("call transcript journal unreadable", extra={"error": type(error).__name__})
            return []
        entries: list[dict[str, object]] = []
        for line in lines:
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def note(self, event: Event, *, job_id: str, state: State) -> None:
        """Record `event` (``call.started`` or ``call.ended``; others are not journaled) in `state`."""
        if event.type not in JOURNALED:
            return
        current = self.read(job_id) or JobJournal(job_id=job_id, owner=Owner.this_process())
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path_for(job_id), current.with_entry(event, state).model_dump_json().encode("utf-8"))

    def read(self, job_id: str) -> JobJournal | None:
        """The job's journal; None when there is none, or when it cannot be read (logged)."""
        path = self.path_for(job_id)
        try:
            return JobJournal.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, UnicodeDecodeError) as error:
            logger.error("call journal unreadable", extra={"file": path.name, "error": type(error).__name__})
            return None

    def abandoned(self) -> list[JobJournal]:
        """The journals of this host whose owner process is gone (a file that cannot be read is left out)."""
        host = socket.gethostname()
        found: list[JobJournal] = []
        for path in sorted(self.directory.glob("*.json")):
            journal = self.read(path.stem)
            if (
                journal is not None
                and journal.owner is not None
                and journal.owner.host == host
                and journal.owner.gone()
            ):
                found.append(journal)
        return found

    def remove(self, job_id: str) -> None:
        for path in (self.path_for(job_id), self.transcript_path_for(job_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
