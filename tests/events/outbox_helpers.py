"""Small builders shared by the events tests: events with a given creation time, the webhook's parts as the tests
assemble them, and a listing of an outbox."""

from __future__ import annotations

from pathlib import Path

from agent.events.delivery import WebhookSink
from agent.events.outbox import Outbox
from agent.events.payload import Event, EventType, idempotency_key, iso
from agent.events.policy import DeliveryPolicy
from agent.events.redelivery import Redeliverer
from agent.events.signing import Signer
from agent.events.webhook import WebhookSender
from tests.events.receiver import secret_for

SECRET = secret_for("outbox")
FAST = DeliveryPolicy(attempts=3, budget_s=10.0, attempt_timeout_s=2.0, retry_pause_s=0.01)


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


def a_sender(url: str, *, secrets: tuple[str, ...] = (SECRET,), legacy: bool = False) -> WebhookSender:
    return WebhookSender(url=url, signer=Signer(secrets, legacy=legacy))


def a_sink(
    url: str, outbox_dir: Path | None = None, *, secret: str = SECRET, policy: DeliveryPolicy = FAST
) -> WebhookSink:
    outbox = Outbox(outbox_dir) if outbox_dir is not None else None
    return WebhookSink(sender=a_sender(url, secrets=(secret,)), policy=policy, outbox=outbox)


def a_redeliverer(
    outbox_dir: Path,
    *,
    url: str,
    backoff_s: float = 0.0,
    max_age_s: float = 86_400.0,
    auth_retry_s: float = 3600.0,
    retention_s: float = 7 * 86_400.0,
) -> Redeliverer:
    policy = DeliveryPolicy(backoff_s=backoff_s, max_age_s=max_age_s, auth_retry_s=auth_retry_s)
    return Redeliverer(Outbox(outbox_dir), sender=a_sender(url), policy=policy, retention_s=retention_s)
