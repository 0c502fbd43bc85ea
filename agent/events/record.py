"""One outbox file: its JSON record and its name. Pure: no file is read or written here.

Name: ``<created ms, 13 digits>-<0: started | 1: ended>-<event id>-<job id>.json``, so a plain sort of a directory
is oldest first, and a job's events sort ``call.started`` before ``call.ended`` whatever the clocks said.

Record: ``{"format": "webcall.outbox/1", "job_id", "created_at" (unix s, the event's), "attempts" (HTTP attempts in
all), "redeliveries" (failed passes), "next_attempt_at", "last_status", "replayed_at" (when an operator sent it back
from ``dead/``, else null), "event": {"id", "type", "idempotency_key", "body"}}``, plus ``dead_reason``
(``refused`` | ``expired``) under ``dead/``.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.errors import CorruptRecord
from agent.events.payload import Event, EventType

FORMAT: Final = "webcall.outbox/1"
NAME: Final = re.compile(r"^(\d{13})-([01])-([A-Za-z0-9_]+)-([A-Za-z0-9_-]+)\.json$")

State = Literal["pending", "inflight", "dead", "corrupt"]
DeadReason = Literal["refused", "expired"]


class StoredEvent(BaseModel):
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
    replayed_at: float | None = None
    dead_reason: DeadReason | None = None
    event: StoredEvent

    def to_event(self) -> Event:
        stored = self.event
        return Event(id=stored.id, type=stored.type, idempotency_key=stored.idempotency_key, body=stored.body)

    def age_s(self, now: float) -> float:
        """Seconds since the event was made, or since an operator replayed it: what the age limits count."""
        return now - max(self.created_at, self.replayed_at or 0.0)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def parse(cls, data: bytes, *, name: str) -> Record:
        """The record in `data`; `CorruptRecord` (naming the file, never its content) when it is not one."""
        try:
            return cls.model_validate_json(data)
        except ValidationError:
            raise CorruptRecord(name) from None

    @classmethod
    def of(cls, event: Event, *, job_id: str, status: int | None, attempts: int, now: float) -> Record:
        """The record of `event` as first kept: due at once."""
        return cls(
            job_id=job_id,
            created_at=_created_at(event, default=now),
            attempts=attempts,
            next_attempt_at=now,
            last_status=status,
            event=StoredEvent(id=event.id, type=event.type, idempotency_key=event.idempotency_key, body=event.body),
        )

    def name(self) -> str:
        rank = 0 if self.event.type == "call.started" else 1
        millis = min(max(0, int(self.created_at * 1000)), 10**13 - 1)
        event_id = safe_event_id(self.event.id)
        return f"{millis:013d}-{rank}-{event_id}-{_safe(self.job_id, keep='-_')}.json"


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
    dead_reason: DeadReason | None = None


def job_of(name: str) -> str | None:
    """The job id a record's file name carries; None for a name no record has."""
    match = NAME.match(name)
    return match.group(4) if match is not None else None


def safe_event_id(event_id: str) -> str:
    """An event id as a file name carries it."""
    return _safe(event_id, keep="_")


def _safe(text: str, *, keep: str) -> str:
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in keep) else "_" for ch in text) or "_"


def _created_at(event: Event, *, default: float) -> float:
    value = event.body.get("created_at")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value).timestamp()
    return default
