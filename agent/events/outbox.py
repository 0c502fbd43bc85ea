"""The webhook's outbox: every call event is on disk while the webhook has not taken it, and is re-sent until the
receiver takes it, refuses it, or it grows too old. No event is dropped silently: the one way to lose one is a disk
that refuses the write (logged as ``call event outbox unavailable``, then ``call event lost`` if the live send fails).

Live send (`Outbox.send`, used by `WebhookSink.send` in the job process): the event is written into ``.inflight``
under its job's lock, posted under the live retry policy, then settled: deleted (2xx), moved to ``dead/`` (a final
4xx) or made pending (anything else). A job process killed mid-send leaves the claim and a lock that goes stale
after `LEASE_S`; a redeliverer then takes the claim back. While one of a job's events is pending, or a redeliverer
holds the job, its next event is queued behind unsent: ``call.ended`` never overtakes ``call.started``.

Layout of the directory (``Settings.outbox_dir()``)::

    <outbox>/<created ms, 13 digits>-<0: started | 1: ended>-<event id>-<job id>.json    pending, one file per event
    <outbox>/.inflight/<same name>     claimed: being sent now (live or redelivered)
    <outbox>/.locks/<job id>.lock      a process is sending this job's events
    <outbox>/dead/<same name>          refused (4xx) or expired: kept for operators, never re-sent
    <outbox>/corrupt/<name>            unreadable files, quarantined byte for byte

Each file is a JSON record: ``{"format": "webcall.outbox/1", "job_id", "created_at" (unix s, the event's),
"attempts" (HTTP attempts in all), "redeliveries" (failed passes), "next_attempt_at", "last_status",
"event": {"id", "type", "idempotency_key", "body"}}``, plus ``dead_reason`` (``refused`` | ``expired``) under
``dead/``. Files are written like the spool's: a temporary file in the same directory, flushed and fsynced, renamed
into place, and the directory fsynced.

Redelivery of pending files is `agent.events.redelivery`'s: it works on a job under the same lock, claims each
file by renaming it into ``.inflight``, and settles it with `Outbox.settle` like a live send.

Delivery is at least once: a process (job or redeliverer) that dies between the receiver's 2xx and the delete
leaves the event to be sent again later, with the same ``Idempotency-Key``. Logs carry counts, codes and event ids,
never the URL or a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.errors import CorruptRecord
from agent.events.files import TEMP_PREFIX, fsync_dir, write_atomically
from agent.events.payload import Event, EventType
from agent.events.webhook import Delivery
from agent.log import get_logger

logger = get_logger("events.outbox")

FORMAT: Final = "webcall.outbox/1"
INFLIGHT: Final = ".inflight"
LOCKS: Final = ".locks"
DEAD: Final = "dead"
CORRUPT: Final = "corrupt"
# Statuses in the 4xx range that say "later", not "never".
RETRYABLE_4XX: Final = frozenset({408, 425, 429})

# A lock (and a live send's claim) untouched this long belongs to a process that died. Longer than any send
# (the live policy's budget is 10 s) by far; the same in every process that shares the directory.
LEASE_S: Final = 300.0

_NAME = re.compile(r"^(\d{13})-([01])-([A-Za-z0-9_]+)-([A-Za-z0-9_-]+)\.json$")


def _job_of(name: str) -> str:
    match = _NAME.match(name)
    assert match is not None, "names made by Outbox.name_for match _NAME"
    return match.group(4)


State = Literal["pending", "inflight", "dead", "corrupt"]
Verdict = Literal["delivered", "refused", "retry"]


def verdict(status: int | None) -> Verdict:
    """What an answer means for a kept event: taken, refused for good, or worth another try later."""
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
        return "refused"
    return "retry"


P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking file step in a thread, off the event loop. A caller cancelled meanwhile still waits for the
    step to finish (then re-raises), so a lock is never released while a step under it is still moving files."""
    step = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(step)
    except asyncio.CancelledError:
        await asyncio.wait([step])
        raise


class _StoredEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    type: EventType
    idempotency_key: str
    body: dict[str, object]


class Record(BaseModel):
    """One outbox file."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["webcall.outbox/1"] = FORMAT
    job_id: str
    created_at: float
    attempts: int = 0
    redeliveries: int = 0
    next_attempt_at: float = 0.0
    last_status: int | None = None
    dead_reason: Literal["refused", "expired"] | None = None
    event: _StoredEvent

    def to_event(self) -> Event:
        stored = self.event
        return Event(id=stored.id, type=stored.type, idempotency_key=stored.idempotency_key, body=stored.body)


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One file of the outbox as the CLI lists it: identity, age and delivery state, never content."""

    state: State
    name: str
    event_id: str | None = None
    event_type: str | None = None
    job_id: str | None = None
    age_s: float | None = None
    attempts: int | None = None
    last_status: int | None = None
    dead_reason: str | None = None


def _safe(text: str, *, keep: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in keep) else "_" for ch in text) or "_"


def _created_at(event: Event, *, default: float) -> float:
    value = event.body.get("created_at")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value).timestamp()
    return default


@dataclass(frozen=True, kw_only=True)
class Lock:
    path: Path
    token: str


class _JobLocks:
    """One lock file per job; a lock untouched for `lease_s` is stale (its holder died) and is broken."""

    def __init__(self, directory: Path, *, lease_s: float) -> None:
        self.directory = directory
        self.lease_s = lease_s

    def acquire(self, job: str, *, now: float) -> Lock | None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{job}.lock"
        token = f"{os.getpid()}-{uuid.uuid4().hex}"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    age = now - path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age <= self.lease_s:
                    return None
                logger.warning("outbox lock broken", extra={"age_s": round(age, 1)})
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as out:
                out.write(token)
            return Lock(path=path, token=token)
        return None

    @staticmethod
    def refresh(lock: Lock) -> None:
        with contextlib.suppress(OSError):
            os.utime(lock.path)

    @staticmethod
    def release(lock: Lock) -> None:
        with contextlib.suppress(OSError):
            if lock.path.read_text() == lock.token:
                lock.path.unlink()


class Outbox:
    """The files of one outbox directory (created when first written)."""

    def __init__(self, directory: Path, *, lease_s: float = LEASE_S) -> None:
        self.directory = directory
        self.locks = _JobLocks(directory / LOCKS, lease_s=lease_s)

    def probe(self) -> str | None:
        """Blocking: None when the directory can hold events (created if missing), else the error's type name."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=TEMP_PREFIX, suffix=".probe")
            os.close(fd)
            os.unlink(tmp)
        except OSError as error:
            return type(error).__name__
        return None

    @property
    def inflight_dir(self) -> Path:
        return self.directory / INFLIGHT

    @property
    def dead_dir(self) -> Path:
        return self.directory / DEAD

    @property
    def corrupt_dir(self) -> Path:
        return self.directory / CORRUPT

    async def send(self, event: Event, *, job_id: str, deliver: Callable[[Event], Awaitable[Delivery]]) -> Delivery:
        """Deliver `event` live with `deliver`, durably: written to ``.inflight`` under the job's lock first, then
        settled by the answer. Queued unsent behind the job's pending events, or while a redeliverer holds the job.
        Never raises (cancellation aside); without a usable disk the event is still delivered live, unprotected."""
        claiming = asyncio.ensure_future(asyncio.to_thread(self._claim_new, event, job_id=job_id))
        try:
            claim = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Cancelled while claiming: let the claim finish, then hand the event to the redeliverer.
            await asyncio.wait([claiming])
            if not claiming.cancelled() and claiming.exception() is None and (made := claiming.result()) is not None:
                self._abandon(made)
            raise
        except OSError as error:
            logger.error("call event outbox unavailable", extra={"event_id": event.id, "error": type(error).__name__})
            delivery = await deliver(event)
            if not delivery.delivered:
                logger.error("call event lost", extra={"event_type": event.type, "event_id": event.id})
            return delivery
        if claim is None:
            queued = await self.keep(event, job_id=job_id, status=None, attempts=0)
            return Delivery(delivered=False, status=None, attempts=0, kept=queued)
        name, record, lock = claim
        try:
            delivery = await deliver(event)
        except BaseException:
            # Cancelled mid-send: the event stays pending for the redeliverer.
            self._abandon(claim)
            raise
        try:
            outcome = await run_blocking(
                self._settle_and_unlock,
                name,
                record,
                lock=lock,
                delivery=delivery,
            )
        except OSError as error:
            # The claim stays in `.inflight`, where a redeliverer takes it back after the lease.
            logger.error("call event outbox unavailable", extra={"event_id": event.id, "error": type(error).__name__})
            return delivery
        if outcome == "delivered":
            return delivery
        kept: Literal["outbox", "dead"] = "dead" if outcome == "refused" else "outbox"
        logger.warning(
            "call event kept",
            extra={"event_type": event.type, "event_id": event.id, "status": delivery.status, "kept": kept},
        )
        return Delivery(delivered=False, status=delivery.status, attempts=delivery.attempts, kept=kept)

    def _claim_new(self, event: Event, *, job_id: str) -> tuple[str, Record, Lock] | None:
        """Blocking: lock the job and write `event` into ``.inflight``; None when it must queue instead."""
        record = self.record_for(event, job_id=job_id, status=None, attempts=0, now=time.time())
        name = self.name_for(record)
        job = _job_of(name)
        lock = self.locks.acquire(job, now=time.time())
        if lock is None:
            return None
        try:
            if self.job_files(job) or self._job_inflight(job):
                self.locks.release(lock)
                return None
            self.inflight_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(self.inflight_dir / name, record.model_dump_json().encode("utf-8"))
        except BaseException:
            self.locks.release(lock)
            raise
        return name, record, lock

    def _abandon(self, claim: tuple[str, Record, Lock]) -> None:
        name, _, lock = claim
        self.unclaim(name)
        self.locks.release(lock)

    def _settle_and_unlock(self, name: str, record: Record, *, lock: Lock, delivery: Delivery) -> Verdict:
        try:
            return self.settle(name, record, status=delivery.status, attempts=delivery.attempts, retry_at=time.time())
        finally:
            self.locks.release(lock)

    def settle(self, name: str, record: Record, *, status: int | None, attempts: int, retry_at: float) -> Verdict:
        """Blocking: finish a claimed file by its answer: deleted, moved to ``dead/``, or pending again, due at
        `retry_at`. `attempts` (HTTP attempts just made) are added to the record's."""
        updated = record.model_copy(update={"attempts": record.attempts + attempts, "last_status": status})
        outcome = verdict(status)
        match outcome:
            case "delivered":
                (self.inflight_dir / name).unlink(missing_ok=True)
            case "refused":
                dead = updated.model_copy(update={"dead_reason": "refused"})
                self.bury(name, dead, source=self.inflight_dir / name)
            case "retry":
                self.release(name, updated.model_copy(update={"next_attempt_at": retry_at}))
        return outcome

    async def keep(
        self, event: Event, *, job_id: str, status: int | None, attempts: int
    ) -> Literal["outbox", "dead"] | None:
        """Keep an event the webhook did not deliver: where it went, or None (logged) when the disk refused it."""
        try:
            path = await run_blocking(self.put, event, job_id=job_id, status=status, attempts=attempts)
        except OSError as error:
            logger.error(
                "call event lost",
                extra={"event_type": event.type, "event_id": event.id, "error": type(error).__name__},
            )
            return None
        kept: Literal["outbox", "dead"] = "dead" if path.parent == self.dead_dir else "outbox"
        logger.warning(
            "call event kept", extra={"event_type": event.type, "event_id": event.id, "status": status, "kept": kept}
        )
        return kept

    def put(self, event: Event, *, job_id: str, status: int | None, attempts: int, now: float | None = None) -> Path:
        """Blocking: write `event` as pending, or under ``dead/`` when `status` refused it for good."""
        now = time.time() if now is None else now
        record = self.record_for(event, job_id=job_id, status=status, attempts=attempts, now=now)
        refused = record.dead_reason is not None
        directory = self.dead_dir if refused else self.directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.name_for(record)
        write_atomically(path, record.model_dump_json().encode("utf-8"))
        return path

    @staticmethod
    def record_for(event: Event, *, job_id: str, status: int | None, attempts: int, now: float) -> Record:
        """The record of `event` as first kept: due at once, or dead when `status` refused it for good."""
        return Record(
            job_id=job_id,
            created_at=_created_at(event, default=now),
            attempts=attempts,
            next_attempt_at=now,
            last_status=status,
            dead_reason="refused" if verdict(status) == "refused" else None,
            event=_StoredEvent(id=event.id, type=event.type, idempotency_key=event.idempotency_key, body=event.body),
        )

    @staticmethod
    def name_for(record: Record) -> str:
        rank = 0 if record.event.type == "call.started" else 1
        millis = min(max(0, int(record.created_at * 1000)), 10**13 - 1)
        event_id = _safe(record.event.id, keep="_")
        return f"{millis:013d}-{rank}-{event_id}-{_safe(record.job_id, keep='-_')}.json"

    @staticmethod
    def read_record(path: Path) -> Record:
        """The record in `path`; `CorruptRecord` when it is not one (FileNotFoundError passes through)."""
        data = path.read_bytes()
        try:
            return Record.model_validate_json(data)
        except ValidationError:
            raise CorruptRecord(path.name) from None

    def pending_jobs(self) -> dict[str, list[str]]:
        """Pending and claimed file names by job (as the file names say), jobs oldest first, names oldest first.

        Claimed files count: a job whose only file was claimed by a redeliverer that died must still be visited.
        """
        jobs: dict[str, list[str]] = {}
        for name in sorted({*self._names(self.directory), *self._names(self.inflight_dir)}):
            match = _NAME.match(name)
            if match is not None:
                jobs.setdefault(match.group(4), []).append(name)
        return jobs

    def job_files(self, job: str) -> list[str]:
        """The job's pending names in sending order: ``call.started`` first whatever the clocks said."""
        names = [name for name in self._names(self.directory) if (m := _NAME.match(name)) and m.group(4) == job]
        return sorted(names, key=lambda name: (name.split("-", 2)[1], name))

    def _job_inflight(self, job: str) -> list[str]:
        return [name for name in self._names(self.inflight_dir) if (m := _NAME.match(name)) and m.group(4) == job]

    def take_back(self, job: str) -> int:
        """Return the job's claimed files to pending (their claimer died); called under the job's lock."""
        count = 0
        for name in self._job_inflight(job):
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.inflight_dir / name, self.directory / name)
                count += 1
        return count

    def unclaim(self, name: str) -> None:
        """Return a claimed file, unchanged, to pending (its send was cancelled)."""
        with contextlib.suppress(OSError):
            os.rename(self.inflight_dir / name, self.directory / name)

    def claim(self, name: str) -> bool:
        """Rename a pending file into ``.inflight``; False when it is gone (claimed or finished by another)."""
        self.inflight_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.directory / name, self.inflight_dir / name)
        except FileNotFoundError:
            return False
        return True

    def release(self, name: str, record: Record) -> None:
        """A claimed file stays pending, updated with its latest attempt."""
        write_atomically(self.inflight_dir / name, record.model_dump_json().encode("utf-8"))
        os.rename(self.inflight_dir / name, self.directory / name)
        fsync_dir(self.directory)

    def bury(self, name: str, record: Record, *, source: Path) -> None:
        """Move a record to ``dead/`` (written there first, then the source removed)."""
        self.dead_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self.dead_dir / name, record.model_dump_json().encode("utf-8"))
        source.unlink(missing_ok=True)

    def quarantine(self, path: Path) -> None:
        """Move an unreadable file, as it is, to ``corrupt/``."""
        self.corrupt_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, self.corrupt_dir / path.name)

    def strays(self, *, now: float, older_than_s: float) -> list[Path]:
        """Files in the outbox that no record name matches, and temporary files a crashed writer left behind."""
        found: list[Path] = []
        for name in self._names(self.directory):
            path = self.directory / name
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > older_than_s:
                        found.append(path)
            elif not name.startswith(".") and _NAME.match(name) is None:
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

    def _entry(self, state: State, path: Path, *, now: float) -> Entry:
        if state == "corrupt":
            return Entry(state=state, name=path.name)
        try:
            record = self.read_record(path)
        except (OSError, CorruptRecord):
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
