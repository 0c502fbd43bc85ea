"""Small builders shared by the outbox tests: events with a given creation time, and a listing of an outbox."""

from __future__ import annotations

from pathlib import Path

from agent.events.outbox import Outbox
from agent.events.payload import Event, EventType, idempotency_key, iso
from agent.events.redelivery import REDELIVERY_POLICY, Redeliverer
from agent.events.webhook import WebhookSink

SECRET = "whsec_outbox_test"


def an_event(job_id: str, event_type: EventType, *, created_at: float, text: str = "hello") -> Event:
    event_id = f"evt_{job_id.lower()}_{event_type.split('.')[1]}"
    key = idempotency_key(job_id, event_type)
    body: dict[str, object] = {
        "id": event_id,
        "type": event_type,
        "idempotency_key": key,
        "created_at": iso(created_at),
        "job_id": job_id,
        "transcript": [{"text": text}],
    }
    return Event(id=event_id, type=event_type, idempotency_key=key, body=body)


def files(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def a_redeliverer(outbox_dir: Path, *, url: str, backoff_s: float = 0.0, max_age_s: float = 86_400.0) -> Redeliverer:
    webhook = WebhookSink(url=url, secret=SECRET, policy=REDELIVERY_POLICY)
    return Redeliverer(Outbox(outbox_dir), webhook=webhook, backoff_s=backoff_s, max_age_s=max_age_s)
