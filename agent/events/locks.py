"""Job locks of the outbox: one ``<outbox>/.locks/<job id>.lock`` file per job, made with ``O_EXCL``.

A process (a job sending live, a redeliverer, the CLI) works on a job's files only while it holds the job's lock. A
lock untouched for `lease_s` belongs to a process that died and is broken; holders `refresh` theirs as they go.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.log import get_logger

logger = get_logger(__name__)

# Longer than any send by far (the live policy's budget is 10 s); the same in every process sharing the directory.
LEASE_S: Final = 300.0


@dataclass(frozen=True, kw_only=True)
class Lock:
    path: Path
    token: str


class JobLocks:
    """The lock files under `directory`; a lock untouched for `lease_s` is stale and is broken."""

    def __init__(self, directory: Path, *, lease_s: float = LEASE_S) -> None:
        self.directory = directory
        self.lease_s = lease_s

    def acquire(self, job: str, *, now: float) -> Lock | None:
        """Blocking: the job's lock, or None while another process holds it."""
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

    def break_if_held_by(self, job: str, *, pid: int) -> bool:
        """Blocking: break the job's lock when process `pid` holds it (the caller knows that process is gone, so
        the lock need not wait out its lease); whether it did."""
        path = self.directory / f"{job}.lock"
        try:
            holder = path.read_text()
        except OSError:
            return False
        if holder.split("-", 1)[0] != str(pid):
            return False
        path.unlink(missing_ok=True)
        logger.warning("outbox lock of an exited process broken", extra={"pid": pid})
        return True

    @staticmethod
    def refresh(lock: Lock) -> None:
        with contextlib.suppress(OSError):
            os.utime(lock.path)

    @staticmethod
    def release(lock: Lock) -> None:
        with contextlib.suppress(OSError):
            if lock.path.read_text() == lock.token:
                lock.path.unlink()
