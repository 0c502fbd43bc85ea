"""The webhook's outbox: a file store in which every call event waits until the receiver has taken it.

The store moves files and knows nothing of HTTP: what an answer means is `agent.events.policy`'s, and who sends is
`agent.events.delivery` (live, in the job process) and `agent.events.redelivery` (in the worker's main process).
Its operations on claimed (in-flight) files:

- `claim_new`: write a new event straight into ``.inflight`` under its job's lock (the write-ahead of a live send);
  None when the job has pending or claimed files, or another process holds it: the event then queues (`put`);
- `claim`: rename a pending file into ``.inflight`` (the redeliverer, under the job's lock);
- `settle`: finish a claim by its verdict: deleted (delivered), moved to ``dead/`` (refused), or pending again;
- `requeue`: put a claimed file back to pending, unchanged (its sender was cancelled or died) or updated.

Layout of the directory (``Settings.outbox_dir()``; names and records in `agent.events.record`)::

    <outbox>/<name>.json               pending, one file per event
    <outbox>/.inflight/<name>.json     claimed: being sent now (live or redelivered)
    <outbox>/.locks/<job id>.lock      a process is working on this job's files (`agent.events.locks`)
    <outbox>/dead/<name>.json          refused or expired: kept for operators (`replay_dead`), never re-sent
    <outbox>/corrupt/<name>            unreadable files, quarantined byte for byte

``dead/`` and ``corrupt/`` are pruned (`prune`): a file is deleted once it has been there longer than the retention
(``WEBCALL_EVENTS_OUTBOX_RETENTION_S``, 7 days by default). Files are written whole or not at all
(`agent.events.files`). Delivery is at least once: a process that dies between the receiver's 2xx and the delete
leaves the event to be sent again later, with the same ``Idempotency-Key``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.errors import CorruptRecord
from agent.events.files import TEMP_PREFIX, fsync_dir, write_atomically
from agent.events.locks import LEASE_S, JobLocks, Lock
from agent.events.payload import Event
from agent.events.policy import Verdict
from agent.events.record import NAME, DeadReason, Entry, Record, State, job_of
from agent.events.record import safe_event_id as _safe_id

INFLIGHT: Final = ".inflight"
LOCKS: Final = ".locks"
DEAD: Final = "dead"
CORRUPT: Final = "corrupt"


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A live send's claim: its file in ``.inflight``, its record and the job's lock it holds."""

    name: str
    record: Record
    lock: Lock


@dataclass(frozen=True, kw_only=True)
class Replayed:
    """What `Outbox.replay_dead` did: files sent back to pending, and jobs skipped because another process held them."""

    replayed: int
    busy: int


class Outbox:
    """The files of one outbox directory (created when first written). Every method blocks: call them off the loop
    (`agent.events.files.run_blocking`)."""

    def __init__(self, directory: Path, *, lease_s: float = LEASE_S) -> None:
        self.directory = directory
        self.locks = JobLocks(directory / LOCKS, lease_s=lease_s)

    @property
    def inflight_dir(self) -> Path:
        return self.directory / INFLIGHT

    @property
    def dead_dir(self) -> Path:
        return self.directory / DEAD

    @property
    def corrupt_dir(self) -> Path:
        return self.directory / CORRUPT

    def probe(self) -> str | None:
        """None when the directory can hold events (created if missing), else the error's type name."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX, suffix=".probe")
            os.close(fd)
            os.unlink(tmp)
        except OSError as error:
            return type(error).__name__
        return None

    def claim_new(self, event: Event, *, job_id: str, now: float) -> Claim | None:
        """Lock the job and write `event` into ``.inflight``; None when it must queue instead (see the docstring)."""
        record = Record.of(event, job_id=job_id, status=None, attempts=0, now=now)
        name = record.name()
        job = job_of(name)
        assert job is not None, "Record.name matches NAME"
        lock = self.locks.acquire(job, now=now)
        if lock is None:
            return None
        try:
            if self.job_files(job) or self.claimed(job):
                self.locks.release(lock)
                return None
            self.inflight_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self.inflight_dir / name, record.to_bytes())
        except BaseException:
            self.locks.release(lock)
            raise
        return Claim(name=name, record=record, lock=lock)

    def put(
        self,
        event: Event,
        *,
        job_id: str,
        status: int | None,
        attempts: int,
        dead_reason: DeadReason | None = None,
        now: float | None = None,
    ) -> Path:
        """Write `event` as pending, or under ``dead/`` with a `dead_reason`."""
        now = time.time() if now is None else now
        record = Record.of(event, job_id=job_id, status=status, attempts=attempts, now=now)
        record = record.model_copy(update={"dead_reason": dead_reason})
        directory = self.dead_dir if dead_reason is not None else self.directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / record.name()
        write_atomically(path, record.to_bytes())
        return path

    def claim(self, name: str) -> bool:
        """Rename a pending file into ``.inflight``; False when it is gone (claimed or finished by another)."""
        self.inflight_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.directory / name, self.inflight_dir / name)
        except FileNotFoundError:
            return False
        return True

    def settle(
        self, name: str, record: Record, *, verdict: Verdict, status: int | None, attempts: int, retry_at: float
    ) -> None:
        """Finish a claimed file by its verdict: deleted, moved to ``dead/``, or pending again, due at `retry_at`.
        `attempts` (HTTP attempts just made) are added to the record's."""
        updated = record.model_copy(update={"attempts": record.attempts + attempts, "last_status": status})
        match verdict:
            case "delivered":
                (self.inflight_dir / name).unlink(missing_ok=True)
            case "refused":
                dead = updated.model_copy(update={"dead_reason": "refused"})
                self.bury(name, dead, source=self.inflight_dir / name)
            case "retry":
                self.requeue(name, updated.model_copy(update={"next_attempt_at": retry_at}))

    def requeue(self, name: str, record: Record | None = None) -> None:
        """Put a claimed file back to pending: as it is (its sender was cancelled or died; a file already gone is
        left so), or rewritten as `record` first."""
        if record is None:
            with contextlib.suppress(OSError):
                os.rename(self.inflight_dir / name, self.directory / name)
            return
        write_atomically(self.inflight_dir / name, record.to_bytes())
        os.rename(self.inflight_dir / name, self.directory / name)
        fsync_dir(self.directory)

    def bury(self, name: str, record: Record, *, source: Path) -> None:
        """Move a record to ``dead/`` (written there first, then the source removed)."""
        self.dead_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.dead_dir / name, record.to_bytes())
        source.unlink(missing_ok=True)

    def quarantine(self, path: Path) -> None:
        """Move an unreadable file, as it is, to ``corrupt/``; its time there starts now (for `prune`)."""
        self.corrupt_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, self.corrupt_dir / path.name)
            os.utime(self.corrupt_dir / path.name)

    def prune(self, *, now: float, older_than_s: float) -> int:
        """Delete the files of ``dead/`` and ``corrupt/`` set aside more than `older_than_s` ago; how many."""
        pruned = 0
        for directory in (self.dead_dir, self.corrupt_dir):
            for name in self._names(directory):
                path = directory / name
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > older_than_s:
                        path.unlink()
                        pruned += 1
        return pruned

    def replay_dead(self, *, now: float, event_ids: Collection[str] = (), job: str | None = None) -> Replayed:
        """Send dead events back to pending, due now, their age limits counted from now: all of them, or those
        with one of `event_ids` and/or of `job`. Each job's files move under its lock."""
        chosen: dict[str, list[tuple[str, Record]]] = {}
        for name in sorted(self._names(self.dead_dir)):
            owner = job_of(name)
            if owner is None or (job is not None and owner != job):
                continue
            with contextlib.suppress(OSError, CorruptRecord, UnicodeDecodeError):
                record = self.read_record(self.dead_dir / name)
                if not event_ids or record.event.id in event_ids:
                    chosen.setdefault(owner, []).append((name, record))
        replayed = busy = 0
        for owner, files in chosen.items():
            lock = self.locks.acquire(owner, now=now)
            if lock is None:
                busy += 1
                continue
            try:
                for name, record in files:
                    fresh = {"dead_reason": None, "next_attempt_at": now, "redeliveries": 0, "replayed_at": now}
                    write_atomically(self.directory / name, record.model_copy(update=fresh).to_bytes())
                    (self.dead_dir / name).unlink(missing_ok=True)
                    replayed += 1
            finally:
                self.locks.release(lock)
        return Replayed(replayed=replayed, busy=busy)

    @staticmethod
    def read_record(path: Path) -> Record:
        """The record in `path`; `CorruptRecord` when it is not one (FileNotFoundError passes through)."""
        return Record.parse(path.read_bytes(), name=path.name)

    def pending_jobs(self) -> dict[str, list[str]]:
        """Pending and claimed file names by job (as the file names say), jobs oldest first, names oldest first.

        Claimed files count: a job whose only file was claimed by a redeliverer that died must still be visited.
        """
        jobs: dict[str, list[str]] = {}
        for name in sorted({*self._names(self.directory), *self._names(self.inflight_dir)}):
            job = job_of(name)
            if job is not None:
                jobs.setdefault(job, []).append(name)
        return jobs

    def job_files(self, job: str) -> list[str]:
        """The job's pending names in sending order: ``call.started`` first whatever the clocks said."""
        names = [name for name in self._names(self.directory) if job_of(name) == job]
        return sorted(names, key=lambda name: (name.split("-", 2)[1], name))

    def holds(self, event_id: str, *, job: str) -> bool:
        """Whether an event of `job` with this id is pending, claimed or dead here."""
        safe = _safe_id(event_id)
        for directory in (self.directory, self.inflight_dir, self.dead_dir):
            for name in self._names(directory):
                match = NAME.match(name)
                if match is not None and match.group(4) == job and match.group(3) == safe:
                    return True
        return False

    def claimed(self, job: str) -> list[str]:
        """The job's names in ``.inflight``."""
        return [name for name in self._names(self.inflight_dir) if job_of(name) == job]

    def strays(self, *, now: float, older_than_s: float) -> list[Path]:
        """Files in the outbox that no record name matches, and temporary files a crashed writer left behind."""
        found: list[Path] = []
        for name in self._names(self.directory):
            path = self.directory / name
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > older_than_s:
                        found.append(path)
            elif not name.startswith(".") and NAME.match(name) is None:
                found.append(path)
        return found

    def listing(self, *, now: float | None = None) -> list[Entry]:
        """Every file of the outbox with its state, oldest first within each state."""
        now = time.time() if now is None else now
        entries: list[Entry] = []
        states: tuple[tuple[State, Path], ...] = (
            ("pending", self.directory),
            ("inflight", self.inflight_dir),
            ("dead", self.dead_dir),
            ("corrupt", self.corrupt_dir),
        )
        for state, directory in states:
            for name in sorted(self._names(directory)):
                if name.startswith(".") or (state != "corrupt" and not name.endswith(".json")):
                    continue
                entries.append(self._entry(state, directory / name, now=now))
        return entries

    def depth(self) -> dict[State, int]:
        """How many events each state holds, counted by file name (nothing is read: cheap enough for a scrape)."""
        states: tuple[tuple[State, Path], ...] = (
            ("pending", self.directory),
            ("inflight", self.inflight_dir),
            ("dead", self.dead_dir),
            ("corrupt", self.corrupt_dir),
        )
        return {
            state: sum(1 for name in self._names(directory) if state == "corrupt" or NAME.match(name) is not None)
            for state, directory in states
        }

    def _entry(self, state: State, path: Path, *, now: float) -> Entry:
        if state == "corrupt":
            return Entry(state=state, name=path.name)
        try:
            record = self.read_record(path)
        except (OSError, CorruptRecord, UnicodeDecodeError):
            return Entry(state=state, name=path.name)
        return Entry(
            state=state,
            name=path.name,
            event_id=record.event.id,
            event_type=record.event.type,
            job_id=record.job_id,
            age_s=round(max(0.0, now - record.created_at), 1),
            attempts=record.attempts,
            last_status=record.last_status,
            dead_reason=record.dead_reason,
        )

    @staticmethod
    def _names(directory: Path) -> list[str]:
        try:
            with os.scandir(directory) as it:
                return [entry.name for entry in it if entry.is_file(follow_symlinks=False)]
        except FileNotFoundError:
            return []
